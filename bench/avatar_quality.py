"""Avatar quality (issue 12): smoothing, rig and expressions measured on the shared videos.

    .venv/bin/python -m bench.avatar_quality            # ~3 min on 2 cores, first run
    .venv/bin/python -m bench.avatar_quality --tune     # also a grid of smoothing settings

Landmarks come from the real model over media/ (bench/recordings.py, cached in
bench/out/*.npz). It prints and writes to bench/out/avatar_quality.json:

1. Jitter on a still person: one real frame repeated with camera-like noise (Gaussian
   sensor noise, sigma 4 levels, and a 1% flicker of the exposure), the standard deviation
   over time in pixels of shoulders, elbows, wrists (pose) and the face mesh, smoothing off
   (the model's own output) against the default. Target: default/off <= 0.5. Also a
   second person (the gesture video's first frame), not used to choose the defaults, over
   all six joints and over those in view; and the rig's four arm bones as a session
   solves them from the world points (degrees), for information.
2. Lag on moving footage: the peak of the cross-correlation of the wrists' trajectories,
   default against off, in frames at 30 fps. Target: <= 1.
3. The rig against the landmarks: the rotation angle of leftLowerArm and rightLowerArm,
   solved from the image points and from pose_world_landmarks, against 180 degrees minus
   the elbow angle from the world landmarks (3D) and from the image alone (2D): Pearson
   correlations over the frames where the arm is seen. Target: >= 0.9. Blinks against eye
   openings and aa against the mouth opening, also on the videos with real blinks, as a
   live session sends them: bench/expressions.py. The hand bones as a live rig session
   sends them, on these videos and the squat's: turns of more than 60 degrees between
   two frames and frames folded 150 degrees or more from the forearm, for information.
4. Cost, one run over the same frames: the model alone against what smoothing + rig +
   expressions add to the live path, per frame: the result message a session with
   {"rig": true} sends (live.analysis.result_text on the worker's answer, from the
   worker's arrays to the JSON text) minus the one a session without analysis sends; and
   refine_face_landmarks on against off, two graphs interleaved frame by frame.
   Target: the analysis <= 3% of the model's time.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from mediapipe.python.solutions import holistic as mp_holistic

from bench.common import loadavg
from bench.expressions import (
    BLINK_VIDEOS,
    expression_figures,
    fixed_level_bound,
    mediapipe_blinks,
    print_bound,
    print_mediapipe_rows,
)
from bench.expressions import print_rows as print_expression_rows
from bench.recordings import OUT, FloatArray, Recording, cached, frames
from swarm.config import media_dir
from webapp.analysis import AvatarOptions, AvatarSession, LandmarkSmoother, SmoothingSettings
from webapp.analysis.rig import quat, solve
from webapp.analysis.rig.bones import Pose
from webapp.engine.blendshapes import BlendshapeModel
from webapp.engine.inference import extract
from webapp.engine.jobs import Frame
from webapp.engine.wire import FrameResult
from webapp.live.analysis import SessionAnalysis, result_text
from webapp.live.options import SessionOptions

VIDEOS = (
    media_dir() / "asl_signer_intel_640x480_30fps.mp4",
    media_dir() / "gesture_mpsamples_640x360_25fps.mp4",
    media_dir() / "pushups_tacofleur_320x240_30fps.mp4",
)
# The hands' figure adds a bar grip seen from behind, where the hand model swaps sides.
SQUAT = media_dir() / "squat_everkinetic_640x360_30fps.mp4"
HAND_STEP_DEG = 60.0  # a turn between two frames no hand makes in a 30th of a second
TWISTED_DEG = 150.0  # a hand this far from its forearm's line is folded back on it


def smoothed(rec: Recording, settings: SmoothingSettings | None) -> Recording:
    """The recording as a session with these settings would send it (None: unsmoothed)."""
    if settings is None:
        return rec
    smoother = LandmarkSmoother(settings)
    parts: dict[str, list[FloatArray]] = {"pose": [], "face": [], "left_hand": [], "right_hand": []}
    for i in range(len(rec)):
        out = smoother(rec.frame(i), float(rec.capture_ms[i]), rec.width, rec.height)
        for part, rows in parts.items():
            value = out[part]
            rows.append(np.full_like(getattr(rec, part)[i], np.nan) if value is None else value)
    arrays = {k: np.asarray(v) for k, v in parts.items()}
    return Recording(
        name=rec.name,
        width=rec.width,
        height=rec.height,
        capture_ms=rec.capture_ms,
        model_ms=rec.model_ms,
        pose_world=rec.pose_world,
        **arrays,
    )


def pixels(points: FloatArray, rec: Recording) -> FloatArray:
    out: FloatArray = points[..., :2] * np.array([rec.width, rec.height])
    return out


JITTER_POSE = [Pose.SHOULDER[s] for s in ("left", "right")] + [
    idx[s] for idx in (Pose.ELBOW, Pose.WRIST) for s in ("left", "right")
]
SETTLE = 30  # frames the tracker and the filter get before jitter is measured


def jitter(rec: Recording) -> dict[str, float]:
    """Mean over landmarks of the spread over time (px, the root of x and y variances);
    visible_pose_px: over the joints among them the model sees (mean visibility >= 0.5)."""

    def spread(points: FloatArray) -> float:
        p = pixels(points[SETTLE:], rec)
        p = p[~np.isnan(p[:, 0, 0])]
        return float(np.mean(np.sqrt(np.var(p[..., 0], axis=0) + np.var(p[..., 1], axis=0))))

    body = spread(rec.pose[:, JITTER_POSE])
    face = spread(rec.face[:, :468])
    seen = [j for j in JITTER_POSE if np.nanmean(rec.pose[SETTLE:, j, 3]) >= 0.5]
    return {
        "pose_px": body,
        "face_px": face,
        "all_px": (body * 6 + face) / 7,
        "visible_pose_px": spread(rec.pose[:, seen]),
    }


ARM_BONES = ("leftUpperArm", "leftLowerArm", "rightUpperArm", "rightLowerArm")


def arm_jitter(rec: Recording, settings: SmoothingSettings | None) -> float:
    """The rig's arms as a session with these settings solves them (from pose_world, as
    the server does): each bone's rms angle from its mean rotation over time, in degrees,
    summed over the arms' four bones."""
    session = AvatarSession(AvatarOptions(smoothing=settings, rig=True))
    bones: dict[str, list[list[float]]] = {b: [] for b in ARM_BONES}
    for i in range(len(rec)):
        t = float(rec.capture_ms[i])
        _, rig = session.process(rec.frame(i), t, rec.width, rec.height, rec.world(i))
        if i >= SETTLE and rig is not None:
            for b in ARM_BONES:
                bones[b].append(rig["bones"][b])
    total = 0.0
    for rotations in bones.values():
        q = np.asarray(rotations)
        mean = q.mean(axis=0) / np.linalg.norm(q.mean(axis=0))
        apart = np.degrees(2.0 * np.arccos(np.clip(np.abs(q @ mean), 0.0, 1.0)))
        total += float(np.sqrt(np.mean(apart**2)))
    return total


WRISTS = [Pose.WRIST["left"], Pose.WRIST["right"]]
SHOULDERS = [Pose.SHOULDER["left"], Pose.SHOULDER["right"]]


def lag_frames(off: Recording, on: Recording, idx: list[int] = WRISTS, max_lag: int = 8) -> float:
    """Where the cross-correlation of the points' trajectories (off against on, each mean
    removed) peaks, in the clip's frames, refined by a parabola; positive: on lags."""
    a = pixels(off.pose[:, idx], off).reshape(len(off), -1)
    b = pixels(on.pose[:, idx], on).reshape(len(on), -1)
    ok = ~np.isnan(a).any(axis=1) & ~np.isnan(b).any(axis=1)
    a, b = a[ok] - a[ok].mean(axis=0), b[ok] - b[ok].mean(axis=0)
    lags = np.arange(-max_lag, max_lag + 1)
    n = len(a)
    corr = np.array(
        [np.sum(a[max(0, -k) : n - max(0, k)] * b[max(0, k) : n - max(0, -k)]) for k in lags]
    )
    k = int(np.argmax(corr))
    if 0 < k < len(lags) - 1:
        y0, y1, y2 = corr[k - 1 : k + 2]
        return float(lags[k] + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2))
    return float(lags[k])


def fps(rec: Recording) -> float:
    return 1000.0 / float(np.median(np.diff(rec.capture_ms)))


def smoothing_figures(
    still: Recording,
    moving: list[Recording],
    settings: SmoothingSettings,
    slow: Recording | None = None,
) -> dict[str, Any]:
    off, on = jitter(still), jitter(smoothed(still, settings))
    lags = {}
    for rec in moving:
        lag = lag_frames(rec, smoothed(rec, settings))
        lags[f"wrists, {rec.name}"] = lag * 30.0 / fps(rec)  # in frames at 30 fps
    if slow is not None:
        lags[f"shoulders, {slow.name}"] = lag_frames(slow, smoothed(slow, settings), SHOULDERS)
    return {
        "settings": {
            "min_cutoff": settings.min_cutoff,
            "beta": settings.beta,
            "d_cutoff": settings.d_cutoff,
            "min_speed": settings.min_speed,
        },
        "jitter_off": off,
        "jitter_on": on,
        "jitter_ratio": {k: on[k] / off[k] for k in off},
        "arm_jitter_deg": {"off": arm_jitter(still, None), "on": arm_jitter(still, settings)},
        "lag_frames_30fps": lags,
        "lag_worst": max(lags.values()),
    }


def elbow_angle(a: FloatArray, b: FloatArray, c: FloatArray) -> float:
    u, v = a - b, c - b
    cos = float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


ELBOW_PAIRS = (
    "image rig / world angle",
    "image rig / 2d angle",
    "world rig / world angle",
    "world rig / 2d angle",
)


def rig_figures(recs: list[Recording]) -> dict[str, Any]:
    """Correlations of the rig's values with the same quantities measured on the landmarks.

    lowerArm: the rig solved from the image points (what the server has today) and from
    pose_world_landmarks, each against 180 - the elbow angle from the world landmarks (3D)
    and from the image alone (2D, x and y in pixels); frames with the arm in view.
    """
    keys = [f"{side}LowerArm: {pair}" for side in ("left", "right") for pair in ELBOW_PAIRS]
    pairs: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in keys}
    frames_with_rig = faces_without_rig = 0
    for rec in recs:
        for i in range(len(rec)):
            lm = rec.frame(i)
            rig = solve(lm, rec.width, rec.height)
            pose, world = lm["pose"], rec.world(i)
            if rig is None or pose is None or world is None:
                faces_without_rig += lm["face"] is not None
                continue
            frames_with_rig += 1
            world_rig = solve(lm, rec.width, rec.height, pose_world=world)
            assert world_rig is not None
            flat = pose[:, :2] * np.array([rec.width, rec.height])
            for side in ("left", "right"):
                j = [Pose.SHOULDER[side], Pose.ELBOW[side], Pose.WRIST[side]]
                if np.min(pose[j, 3]) < 0.5:
                    continue
                bend = {
                    "world angle": 180.0 - elbow_angle(*world[j, :3]),
                    "2d angle": 180.0 - elbow_angle(*flat[j]),
                }
                for source, r in (("image rig", rig), ("world rig", world_rig)):
                    got = math.degrees(quat.angle(r.bones[f"{side}LowerArm"]))
                    for angle, want in bend.items():
                        pairs[f"{side}LowerArm: {source} / {angle}"][0].append(want)
                        pairs[f"{side}LowerArm: {source} / {angle}"][1].append(got)
    # Expressions come with a rig, which needs the pose: faces seen without one are not
    # counted by bench.expressions (none on these videos; this figure says so).
    out: dict[str, Any] = {"frames": frames_with_rig, "faces_without_rig": faces_without_rig}
    for k, (wanted, gotten) in pairs.items():
        w, g = np.asarray(wanted), np.asarray(gotten)
        ok = len(w) > 2 and np.std(g) > 0
        out[k] = {
            "r": float(np.corrcoef(w, g)[0, 1]) if ok else float("nan"),
            "frames": len(w),
            "rms_deg": float(np.sqrt(np.mean((w - g) ** 2))) if ok else None,
        }
    return out


def hand_figures(recs: list[Recording]) -> dict[str, Any]:
    """Each hand bone as a live rig session sends it (default smoothing, the world points):
    how often it turns more than HAND_STEP_DEG between consecutive frames, and on how many
    frames its local rotation is TWISTED_DEG or more."""
    out: dict[str, Any] = {}
    for rec in recs:
        session = AvatarSession(AvatarOptions(rig=True))
        last: dict[str, quat.Quat | None] = {"left": None, "right": None}
        counts = {side: {"steps": 0, "twisted": 0, "frames": 0} for side in last}
        for i in range(len(rec)):
            _, rig = session.process(
                rec.frame(i), float(rec.capture_ms[i]), rec.width, rec.height, rec.world(i)
            )
            for side, count in counts.items():
                if rig is None:
                    last[side] = None
                    continue
                x, y, z, w = rig["bones"][f"{side}Hand"]
                bone = (x, y, z, w)
                count["frames"] += 1
                count["twisted"] += math.degrees(quat.angle(bone)) >= TWISTED_DEG
                before = last[side]
                if before is not None:
                    step = quat.angle(quat.multiply(quat.inverse(before), bone))
                    count["steps"] += math.degrees(step) > HAND_STEP_DEG
                last[side] = bone
        out[rec.name] = counts
    return out


def cost_figures(path: Path, count: int) -> dict[str, Any]:
    """One run over the same frames: per frame, the refined graph (timed), then the live
    path's result message built from the worker's answer (inference.extract) with a rig
    session's analysis and without any (both timed, in alternating order), then the
    unrefined graph (timed); the graphs also in alternating order. Apart: ARKit's
    blendshapes, which only sessions that ask for them pay: the worker's model run on the
    face, and the result message of a session with them against the rig session's."""
    analysis = SessionAnalysis(SessionOptions(avatar=AvatarOptions(rig=True)), {})
    shaped = SessionAnalysis(SessionOptions(avatar=AvatarOptions(rig=True, blendshapes=True)), {})
    face_model = BlendshapeModel()
    model: list[float] = []
    with_analysis: list[float] = []
    without: list[float] = []
    plain: list[float] = []
    shapes_model: list[float] = []
    shapes_analysis: list[float] = []
    graphs = {
        refine: mp_holistic.Holistic(model_complexity=1, refine_face_landmarks=refine)
        for refine in (True, False)
    }
    try:
        for n, (capture_ms, rgb) in enumerate(frames(path, limit=count)):
            h, w = rgb.shape[:2]
            for refine in (True, False) if n % 2 == 0 else (False, True):
                graph = graphs[refine]
                graph._simulated_timestamp = int(capture_ms * 1000) - 33333
                t0 = time.perf_counter()
                res = graph.process(rgb)
                (model if refine else plain).append((time.perf_counter() - t0) * 1000.0)
                if refine:
                    frame = Frame(seq=n, capture_ms=capture_ms, data=b"")
                    result = FrameResult(1, w, h, extract(res), 0.0, 0.0)
                    for session in (analysis, None) if n % 2 == 0 else (None, analysis):
                        t1 = time.perf_counter()
                        result_text(session, frame, result, "bench")
                        spent = (time.perf_counter() - t1) * 1000.0
                        (without if session is None else with_analysis).append(spent)
                    found = result.landmarks
                    if found.face is not None:
                        t2 = time.perf_counter()
                        shapes = face_model(found.face, w, h)
                        shapes_model.append((time.perf_counter() - t2) * 1000.0)
                        t3 = time.perf_counter()
                        result_text(shaped, frame, replace(result, blendshapes=shapes), "bench")
                        extra = (time.perf_counter() - t3) * 1000.0 - with_analysis[-1]
                        shapes_analysis.append(extra)
    finally:
        for g in graphs.values():
            g.close()
    skip = 5  # the first frames load models
    m, a, b, p = (float(np.mean(x[skip:])) for x in (model, with_analysis, without, plain))
    return {
        "frames": len(model) - skip,
        "model_ms": m,
        "result_with_analysis_ms": a,
        "result_without_ms": b,
        "analysis_ms": a - b,
        "analysis_share": (a - b) / m,
        "model_no_refine_ms": p,
        "refine_extra_ms": m - p,
        "refine_extra_share": (m - p) / p,
        "blendshapes_model_ms": float(np.mean(shapes_model[skip:])),
        "blendshapes_analysis_ms": float(np.mean(shapes_analysis[skip:])),
        "blendshapes_share": float(np.mean(shapes_model[skip:]) + np.mean(shapes_analysis[skip:]))
        / m,
    }


TUNE_MIN_CUTOFF = (0.01, 0.02, 0.05, 0.1)
TUNE_BETA = (1.0, 3.0, 10.0)
TUNE_D_CUTOFF = (2.0, 4.0)
TUNE_MIN_SPEED = (0.0, 0.05, 0.1, 0.2)
STILL_FRAME = 0  # the ASL signer, arms down, before the first sign


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.avatar_quality", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--tune", action="store_true", help="also print a grid of settings")
    parser.add_argument("--cost-frames", type=int, default=150, help="frames for the cost run")
    parser.add_argument("--out", type=Path, default=OUT / "avatar_quality.json")
    args = parser.parse_args()
    load_before = loadavg()
    videos = [cached(v) for v in VIDEOS]
    still = cached(VIDEOS[0], still=STILL_FRAME)
    moving = videos[:2]  # people moving their arms; the push-ups are slow
    report: dict[str, Any] = {"load_before": load_before, "cpus": os.cpu_count()}

    if args.tune:
        grid = []
        print("min_cutoff beta d_cutoff min_speed  jitter ratio (pose, face)  lag (asl, gesture)")
        for mc, beta, dc, ms in itertools.product(
            TUNE_MIN_CUTOFF, TUNE_BETA, TUNE_D_CUTOFF, TUNE_MIN_SPEED
        ):
            f = smoothing_figures(still, moving, SmoothingSettings(mc, beta, dc, ms))
            grid.append(f)
            r, lags = f["jitter_ratio"], list(f["lag_frames_30fps"].values())
            print(
                f"{mc:10.3f} {beta:4.1f} {dc:8.1f} {ms:9.2f}  "
                f"{r['pose_px']:.2f}, {r['face_px']:.2f}            {lags[0]:.2f}, {lags[1]:.2f}"
            )
        report["tune"] = grid

    sm = smoothing_figures(still, moving, SmoothingSettings(), slow=videos[2])
    # A second person held still, not used to choose the defaults: does the figure carry?
    other = cached(VIDEOS[1], still=0)
    off, on = jitter(other), jitter(smoothed(other, SmoothingSettings()))
    sm["other_still"] = {
        "name": other.name,
        "jitter_off": off,
        "jitter_on": on,
        "jitter_ratio": {k: on[k] / off[k] for k in off},
    }
    report["smoothing"] = sm
    report["rig"] = rig_figures([smoothed(v, SmoothingSettings()) for v in videos])
    report["rig_unsmoothed"] = rig_figures(videos)
    report["hands"] = hand_figures([*videos, cached(SQUAT)])
    faces = [*videos[:2], *(cached(v) for v in BLINK_VIDEOS)]  # the push-ups have no face
    report["expressions"] = expression_figures(faces, AvatarOptions(rig=True))
    report["expressions_unsmoothed"] = expression_figures(
        faces, AvatarOptions(rig=True, smoothing=None)
    )
    report["expressions_bound"] = fixed_level_bound(faces, AvatarOptions(rig=True))
    report["expressions_mediapipe"] = mediapipe_blinks(faces, AvatarOptions(rig=True))
    report["cost"] = cost_figures(VIDEOS[0], args.cost_frames)
    report["load_after"] = loadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print_report(report)


def print_report(r: dict[str, Any]) -> None:
    sm, rig, cost = r["smoothing"], r["rig"], r["cost"]
    s = sm["settings"]
    print(
        f"\nsmoothing default: min_cutoff {s['min_cutoff']} Hz, beta {s['beta']}, "
        f"d_cutoff {s['d_cutoff']} Hz, min_speed {s['min_speed']} part sizes/s"
    )
    print("| figure | off | default | ratio or value | target |")
    print("|---|---|---|---|---|")
    for k, label in (
        ("pose_px", "jitter, shoulders/elbows/wrists (px)"),
        ("face_px", "jitter, face mesh (px)"),
    ):
        print(
            f"| {label} | {sm['jitter_off'][k]:.2f} | {sm['jitter_on'][k]:.2f} | "
            f"{sm['jitter_ratio'][k]:.2f} | <= 0.5 |"
        )
    arms = sm["arm_jitter_deg"]
    print(
        f"| jitter, the rig's four arm bones (deg) | {arms['off']:.2f} | {arms['on']:.2f} | "
        f"{arms['on'] / arms['off']:.2f} | |"
    )
    o = sm["other_still"]
    for k, label in (
        ("pose_px", "shoulders/elbows/wrists"),
        ("visible_pose_px", "those of them in view"),
        ("face_px", "face mesh"),
    ):
        print(
            f"| jitter, {label}, {o['name']} still (px) | {o['jitter_off'][k]:.2f} | "
            f"{o['jitter_on'][k]:.2f} | {o['jitter_ratio'][k]:.2f} | <= 0.5 |"
        )
    for name, lag in sm["lag_frames_30fps"].items():
        print(f"| lag, {name} (frames at 30 fps) | | | {lag:.2f} | <= 1 |")
    for k in [f"{s}LowerArm: {p}" for s in ("left", "right") for p in ELBOW_PAIRS]:
        v = rig[k]
        label = f"r({k}), {v['frames']} frames"
        print(f"| {label} | | | {v['r']:.3f} ({v['rms_deg']:.0f} deg rms) | >= 0.9 |")
    for name, sides in r["hands"].items():
        left, right = sides["left"], sides["right"]
        print(
            f"| hand bones, {name}: steps over {HAND_STEP_DEG:.0f} deg / frames at "
            f"{TWISTED_DEG:.0f} deg or more (left; right; of {left['frames']}) | | | "
            f"{left['steps']} / {left['twisted']}; {right['steps']} / {right['twisted']} | |"
        )
    print_expression_rows(r["expressions"])
    print_bound(r["expressions_bound"])
    print_mediapipe_rows(r["expressions_mediapipe"])
    print(
        f"| faces seen in frames without a rig (not counted) | | | {rig['faces_without_rig']} | |"
    )
    print(f"| model, refine on (ms/frame) | | | {cost['model_ms']:.1f} | |")
    print(
        f"| result message without / with the analysis (ms/frame) | "
        f"{cost['result_without_ms']:.2f} | {cost['result_with_analysis_ms']:.2f} | | |"
    )
    print(
        f"| smoothing + rig + expressions (ms/frame) | | | {cost['analysis_ms']:.2f} "
        f"({cost['analysis_share']:.1%}) | <= 3% |"
    )
    print(
        f"| refine_face_landmarks cost (ms/frame) | {cost['model_no_refine_ms']:.1f} | "
        f"{cost['model_ms']:.1f} | +{cost['refine_extra_ms']:.1f} "
        f"({cost['refine_extra_share']:+.1%}) | |"
    )
    print(
        f"| ARKit blendshapes, for sessions that ask (ms/frame): the worker's model + the "
        f"session's analysis | | | {cost['blendshapes_model_ms']:.2f} + "
        f"{cost['blendshapes_analysis_ms']:.2f} ({cost['blendshapes_share']:.1%}) | |"
    )
    print(f"load average before {r['load_before']}, after {r['load_after']}, {r['cpus']} cpus")


if __name__ == "__main__":
    main()
