"""The model's output over a clip, frame by frame, as the benchmarks and tests read it.

Landmarks come from the real model (Holistic, video mode, model_complexity=1,
refine_face_landmarks=True as the rig wants) over a video of media/ or one real frame
repeated with camera-like noise, cached in bench/out/*.npz so reruns skip the model.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from mediapipe.python.solutions import holistic as mp_holistic
from numpy.typing import NDArray

STILL_FRAMES = 150
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Recording:
    """The model's output over a clip, one row per frame; NaN where a part was not found."""

    name: str
    width: int
    height: int
    capture_ms: FloatArray  # (T,)
    model_ms: FloatArray  # (T,) wall time of graph.process, per frame
    pose: FloatArray  # (T, 33, 4): x, y, z, visibility
    pose_world: FloatArray  # (T, 33, 4): metres, hips-centred
    face: FloatArray  # (T, 478 or 468, 3)
    left_hand: FloatArray  # (T, 21, 3)
    right_hand: FloatArray  # (T, 21, 3)

    def __len__(self) -> int:
        return len(self.capture_ms)

    def frame(self, i: int) -> dict[str, FloatArray | None]:
        """Frame i in the result's shape: each part an array, or None when not found."""
        parts = {
            "pose": self.pose[i],
            "face": self.face[i],
            "left_hand": self.left_hand[i],
            "right_hand": self.right_hand[i],
        }
        return {k: (None if np.isnan(v[0, 0]) else v) for k, v in parts.items()}

    def world(self, i: int) -> FloatArray | None:
        w = self.pose_world[i]
        return None if np.isnan(w[0, 0]) else w


def frames(path: Path, every: int = 1, limit: int | None = None) -> Iterator[tuple[float, Any]]:
    """(capture_ms, RGB frame) from a video file, at the file's own frame rate."""
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    i = kept = 0
    try:
        while limit is None or kept < limit:
            ok, bgr = cap.read()
            if not ok:
                break
            if i % every == 0:
                kept += 1
                yield i * 1000.0 / fps, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            i += 1
    finally:
        cap.release()


def _array(landmark_list: Any, n: int, width: int) -> FloatArray:
    out = np.full((n, width), np.nan)
    if landmark_list is not None:
        pts = landmark_list.landmark
        out[: len(pts), :3] = [(p.x, p.y, p.z) for p in pts]
        if width == 4:
            out[: len(pts), 3] = [p.visibility for p in pts]
    return out


def record(
    name: str,
    clip: Iterator[tuple[float, Any]],
    refine: bool = True,
    static: bool = False,
    mp_smoothing: bool = True,
) -> Recording:
    """Runs Holistic (model_complexity=1, as the server does) over a clip, frame by frame."""
    n_face = 478 if refine else 468
    rows: dict[str, list[Any]] = {k: [] for k in Recording.__dataclass_fields__}
    width = height = 0
    with mp_holistic.Holistic(
        static_image_mode=static,
        model_complexity=1,
        refine_face_landmarks=refine,
        smooth_landmarks=mp_smoothing,
    ) as graph:
        for capture_ms, rgb in clip:
            height, width = rgb.shape[:2]
            graph._simulated_timestamp = int(capture_ms * 1000) - 33333
            t0 = time.perf_counter()
            res = graph.process(rgb)
            rows["model_ms"].append((time.perf_counter() - t0) * 1000.0)
            rows["capture_ms"].append(capture_ms)
            rows["pose"].append(_array(res.pose_landmarks, 33, 4))
            rows["pose_world"].append(_array(res.pose_world_landmarks, 33, 4))
            rows["face"].append(_array(res.face_landmarks, n_face, 3))
            rows["left_hand"].append(_array(res.left_hand_landmarks, 21, 3))
            rows["right_hand"].append(_array(res.right_hand_landmarks, 21, 3))
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in rows.items() if v}
    return Recording(name=name, width=width, height=height, **arrays)


def still_clip(path: Path, index: int, count: int, seed: int = 12) -> Iterator[tuple[float, Any]]:
    """One real frame repeated at 30 fps with camera-like noise, fresh for every frame:
    sensor noise (Gaussian, sigma 4 levels), a 1% flicker of the exposure, and the JPEG
    encoding (quality 80) a browser applies before sending."""
    frame = list(frames(path, limit=index + 1))[-1][1]
    rng = np.random.default_rng(seed)
    base = frame.astype(np.float32)
    for i in range(count):
        noisy = np.clip(base * rng.normal(1.0, 0.01) + rng.normal(0.0, 4.0, base.shape), 0, 255)
        _, jpeg = cv2.imencode(".jpg", noisy.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 80])
        yield i * 1000.0 / 30.0, cv2.imdecode(jpeg, cv2.IMREAD_UNCHANGED)


def cached(
    path: Path, refine: bool = True, still: int | None = None, mp_smoothing: bool = True
) -> Recording:
    """record() over a whole video (or over still_clip(path, still, STILL_FRAMES)), kept in
    bench/out/ so reruns skip the model."""
    tag = ("" if still is None else f"_still{still}jpeg") + ("" if mp_smoothing else "_mpraw")
    store = OUT / f"landmarks_{path.stem}{tag}_refine{int(refine)}.npz"
    if store.exists():
        data = np.load(store)
        return Recording(
            name=path.stem,
            width=int(data["size"][0]),
            height=int(data["size"][1]),
            **{k: data[k] for k in Recording.__dataclass_fields__ if k in data.files},
        )
    clip = frames(path) if still is None else still_clip(path, still, STILL_FRAMES)
    rec = record(path.stem, clip, refine=refine, mp_smoothing=mp_smoothing)
    OUT.mkdir(parents=True, exist_ok=True)
    fields = {k: getattr(rec, k) for k in Recording.__dataclass_fields__}
    fields = {k: v for k, v in fields.items() if isinstance(v, np.ndarray)}
    np.savez_compressed(store, size=np.array([rec.width, rec.height]), **fields)
    return rec
