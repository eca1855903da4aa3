"""Pose landmarks of the test videos from the real model, the way a live session gets them.

`record()` feeds a video's frames (all of them, or the chosen indices) to the server's own
`webapp.engine.inference.TrackEngine` in video mode, with each frame's real capture time, and keeps
what a result message would carry: 33 pose points [x, y, z, visibility] or None. Recordings
are kept in bench/out/ (git-ignored), so tests and reruns skip the model.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from swarm.config import media_dir
from webapp.engine.inference import TrackEngine
from webapp.protocol import Track

OUT = Path(__file__).resolve().parent / "out"
PUSHUPS = media_dir() / "pushups_tacofleur_320x240_30fps.mp4"
SQUATS = media_dir() / "squat_everkinetic_640x360_30fps.mp4"
ASL = media_dir() / "asl_signer_intel_640x480_30fps.mp4"
GESTURE = media_dir() / "gesture_mpsamples_640x360_25fps.mp4"
# A bump here invalidates every stored recording.
_FORMAT = 1


@dataclass(frozen=True)
class Clip:
    """One feeding of one video: pose[i] is NaN everywhere when the model found nobody."""

    name: str
    width: int
    height: int
    fps: float
    frames: NDArray[np.int64]  # which frames of the video were fed
    capture_ms: NDArray[np.float64]
    pose: NDArray[np.float64]  # (n, 33, 4)
    model_ms: NDArray[np.float64]

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.width, self.height)

    def poses(self) -> Iterator[tuple[float, list[list[float]] | None]]:
        """(capture_ms, pose or None) per fed frame, as Workout.update() takes them."""
        for ms, pose in zip(self.capture_ms, self.pose, strict=True):
            yield float(ms), None if np.isnan(pose[0, 0]) else pose.tolist()


def video_info(path: Path) -> tuple[int, float]:
    cap = cv2.VideoCapture(str(path))
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), float(cap.get(cv2.CAP_PROP_FPS))
    finally:
        cap.release()


def record(path: Path, track: Track, keep: Sequence[int] | None = None) -> Clip:
    """Runs the model over the video's frames `keep` (default all) at their real times."""
    cap = cv2.VideoCapture(str(path))
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    wanted = None if keep is None else set(keep)
    engine = TrackEngine(track)
    engine.prime()
    frames: list[int] = []
    stamps: list[float] = []
    poses: list[NDArray[np.float64]] = []
    costs: list[float] = []
    width = height = 0
    index = -1
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            index += 1
            if wanted is not None and index not in wanted:
                continue
            rgb = np.ascontiguousarray(bgr[:, :, ::-1])
            height, width = rgb.shape[:2]
            capture_ms = index * 1000.0 / fps
            t0 = time.perf_counter()
            pose = engine.process(rgb, capture_ms).pose
            costs.append((time.perf_counter() - t0) * 1000.0)
            frames.append(index)
            stamps.append(capture_ms)
            poses.append(
                np.full((33, 4), np.nan) if pose is None else np.asarray(pose, dtype=np.float64)
            )
    finally:
        cap.release()
        engine.close()
    return Clip(
        name=path.stem,
        width=width,
        height=height,
        fps=fps,
        frames=np.asarray(frames, dtype=np.int64),
        capture_ms=np.asarray(stamps, dtype=np.float64),
        pose=np.asarray(poses, dtype=np.float64).reshape(-1, 33, 4),
        model_ms=np.asarray(costs, dtype=np.float64),
    )


def cached(
    path: Path, track: Track, feeding: str = "all", keep: Sequence[int] | None = None
) -> Clip:
    """record(), kept in bench/out/ under the feeding's name (which must name `keep`)."""
    store = OUT / f"fitness_{path.stem}_{track.value}_{feeding}_v{_FORMAT}.npz"
    if store.exists():
        data = np.load(store)
        return Clip(
            name=path.stem,
            width=int(data["size"][0]),
            height=int(data["size"][1]),
            fps=float(data["fps"]),
            frames=data["frames"],
            capture_ms=data["capture_ms"],
            pose=data["pose"],
            model_ms=data["model_ms"],
        )
    clip = record(path, track, keep)
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        store,
        size=np.array([clip.width, clip.height]),
        fps=np.array(clip.fps),
        frames=clip.frames,
        capture_ms=clip.capture_ms,
        pose=clip.pose,
        model_ms=clip.model_ms,
    )
    return clip


def half_rate(n_frames: int) -> list[int]:
    return list(range(0, n_frames, 2))


def drop_one_in_three(n_frames: int, seed: int) -> list[int]:
    """Each run of three frames loses one chosen at random: a server shedding load."""
    rng = np.random.default_rng(seed)
    kept = []
    for start in range(0, n_frames, 3):
        dropped = start + int(rng.integers(3))
        kept += [i for i in range(start, min(start + 3, n_frames)) if i != dropped]
    return kept
