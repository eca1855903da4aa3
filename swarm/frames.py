"""Frames cut from a real video or image folder, encoded once up front as the page sends them."""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import cv2
from cv2.typing import MatLike

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
BGRImage = MatLike


class SourceError(Exception):
    """The source could not give a single frame."""


@dataclass(frozen=True)
class FrameSet:
    jpegs: tuple[bytes, ...]
    # The rate the source was filmed at, so a session at 15 fps steps two video frames
    # per send and the tracker sees real motion, not slow motion.
    source_fps: float
    width: int
    height: int

    def __len__(self) -> int:
        return len(self.jpegs)

    def at(self, start: int, elapsed: float, tick: int) -> int:
        """The frame a camera started at `start` shows after `elapsed` seconds, `tick` sends."""
        step = round(elapsed * self.source_fps) if self.source_fps > 0 else tick
        return (start + step) % len(self.jpegs)

    @property
    def mean_bytes(self) -> float:
        return sum(len(j) for j in self.jpegs) / len(self.jpegs)


def _video_frames(path: Path) -> tuple[Generator[BGRImage, None, None], float]:
    capture = cv2.VideoCapture(str(path))
    # A phone's portrait video is stored lying on its side: send it upright, as a browser
    # shows it (OpenCV's FFmpeg backend leaves the rotation unapplied unless asked).
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    if not capture.isOpened():
        raise SourceError(f"cannot open {path} as a video")
    fps = float(capture.get(cv2.CAP_PROP_FPS)) or 30.0

    def frames() -> Generator[BGRImage, None, None]:
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    return
                yield frame
        finally:
            capture.release()

    return frames(), fps


def _folder_frames(path: Path) -> Generator[BGRImage, None, None]:
    for item in sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        image = cv2.imread(str(item), cv2.IMREAD_COLOR)
        if image is not None:
            yield image


def encode(image: BGRImage, width: int, quality: int) -> bytes:
    height, source_width = image.shape[:2]
    if source_width != width:
        new_height = max(1, round(height * width / source_width))
        # INTER_AREA for shrinking is what a browser canvas downscale looks like;
        # INTER_LINEAR only when an image is smaller than the page would send.
        interp = cv2.INTER_AREA if width < source_width else cv2.INTER_LINEAR
        image = cv2.resize(image, (width, new_height), interpolation=interp)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise SourceError("JPEG encoding failed")
    return data.tobytes()


def load_frames(source: str | Path, width: int, quality: int, max_frames: int) -> FrameSet:
    """Every frame is encoded here, once, so sending costs the swarm no encoding at all."""
    path = Path(source)
    if path.is_dir():
        images, fps = _folder_frames(path), 0.0
    elif path.is_file():
        images, fps = _video_frames(path)
    else:
        raise SourceError(f"{path} is neither a video file nor a folder of images")
    jpegs: list[bytes] = []
    size = (0, 0)
    with contextlib.closing(images):
        for image in images:
            jpegs.append(encode(image, width, quality))
            if len(jpegs) == 1:
                size = (width, max(1, round(image.shape[0] * width / image.shape[1])))
            if len(jpegs) >= max_frames:
                break
    if not jpegs:
        raise SourceError(f"{path} gave no frames")
    # A folder has no frame rate: each send takes the next image.
    return FrameSet(tuple(jpegs), fps, size[0], size[1])
