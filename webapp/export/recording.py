"""Reading a JSON-lines recording: one frame a line, checked, with the line number of the
first thing wrong.

The line shape is shared with POST /api/video and the pages' Record button:
`{"frame": int, "time_ms": float, "landmarks": {...}, "rig": {...}?, "fitness": {...}?}`,
landmarks as POST /predict shapes them; `image` ({"width", "height"}) is optional; a last
line `{"summary": {...}}` is skipped, and so are a frame POST /api/video could not track
(`{"frame", "time_ms", "error", "detail"}`, no landmarks) and its `{"waiting": {...}}`
lines. Fields not listed here are ignored, as the protocol's clients ignore fields they
do not know.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from webapp.engine.blendshapes import NAMES
from webapp.errors import shown

# Points per part and numbers per point (the pose's fourth is visibility).
PARTS: dict[str, tuple[int, int]] = {
    "pose": (33, 4),
    "face": (468, 3),
    "left_hand": (21, 3),
    "right_hand": (21, 3),
}
# Without an `image` size, normalized points are taken as a 4:3 frame (a webcam's usual).
DEFAULT_SIZE = (640, 480)
# Every number a line carries is within this, and an image side at most MAX_SIDE: a JSON
# integer may have any number of digits (float() of 10**400 overflows), and points of 1e300
# pass as finite but square to inf in the rig solver, which wrote inf and nan into the BVH.
# Real values are far inside: normalized points near 0-1, unit quaternions, metres, weights
# 0-1, a recording's milliseconds (1e9 ms is 11 days). MAX_SIDE is above any frame
# /api/video takes by default (--video-max-pixels, 8.3 million, even as one row).
MAX_MAGNITUDE = 1e9
MAX_SIDE = 10_000_000
_WITHIN = f"within ±{MAX_MAGNITUDE:,.0f}"
# An exercise's name, as the server writes it (exercises.toml's keys), with room to spare.
MAX_NAME = 100
# The blendshapes a rig may carry: each is a CSV column (table.py).
ARKIT_NAMES = frozenset(NAMES)

# Kept as arrays: as JSON's lists of floats, 32 MB of holistic lines held 450 MB more.
Points = npt.NDArray[np.float64]


class RecordingError(ValueError):
    """What is wrong with a recording; `line` is 1-based, 0 for the recording as a whole."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}" if line else reason)
        self.line = line
        self.reason = reason


class TooManyFramesError(RecordingError):
    """The recording goes on past `max_frames`: valid, but more than this export converts."""


@dataclass(frozen=True)
class Frame:
    frame: int
    time_ms: float
    landmarks: dict[str, Points | None]
    rig: Mapping[str, Any] | None
    fitness: Mapping[str, Any] | None
    size: tuple[int, int]


@dataclass(frozen=True)
class Recording:
    frames: list[Frame]
    summary: Mapping[str, Any] | None

    @property
    def duration_ms(self) -> float:
        return self.frames[-1].time_ms - self.frames[0].time_ms


def _number(value: object) -> bool:
    # Compared, never converted: int and float compare exactly at any size, and NaN fails.
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE
    )


def _points(part: str, value: object) -> Points | None:
    if value is None:
        return None
    count, width = PARTS[part]
    if not isinstance(value, list) or len(value) != count:
        raise ValueError(f"landmarks.{part} must be null or a list of {count} points")
    # numpy checks the shape and the types in C: a recording holds millions of numbers.
    try:
        array = np.array(value)
    except ValueError:
        array = np.array(0)
    if array.shape != (count, width):
        raise ValueError(f"landmarks.{part}: each point must be a list of {width} numbers")
    # Both sides compared, not abs(): abs(-2**63) is itself in int64, and negative.
    if (
        array.dtype.kind not in "fiu"
        or not ((array >= -MAX_MAGNITUDE) & (array <= MAX_MAGNITUDE)).all()
    ):
        raise ValueError(f"landmarks.{part} holds something that is not a finite number {_WITHIN}")
    return array.astype(np.float64)


def _landmarks(value: object) -> dict[str, Points | None]:
    if not isinstance(value, dict):
        raise ValueError("landmarks must be an object (the shape POST /predict returns)")
    return {part: _points(part, value.get(part)) for part in PARTS}


def _key(name: str) -> str:
    """A name from the line, as its error quotes it: plain when it is plain."""
    return name if name.isascii() and name.isprintable() and len(name) <= 40 else shown(name)


def _rig(value: object) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("bones"), dict):
        raise ValueError('rig must be an object with "bones"')
    for name, q in value["bones"].items():
        if not isinstance(q, list) or len(q) != 4 or not all(_number(v) for v in q):
            raise ValueError(
                f"rig.bones.{_key(name)} must be a quaternion [x, y, z, w] of numbers {_WITHIN}"
            )
    hips = value.get("hips_position")
    if hips is not None and (
        not isinstance(hips, list) or len(hips) != 3 or not all(_number(v) for v in hips)
    ):
        raise ValueError(f"rig.hips_position must be [x, y, z], numbers {_WITHIN}")
    # A replay sends these to a VMC receiver as floats, one message each.
    for part in ("expressions", "blendshapes"):
        weights = value.get(part, {})
        if not isinstance(weights, dict) or not all(_number(v) for v in weights.values()):
            raise ValueError(f"rig.{part} must be an object of names and numbers {_WITHIN}")
    # A replay sends each expression by its name, an OSC string: a lone surrogate (valid in
    # JSON) stopped `--to vmc` with a traceback, a NUL ends the string early at the
    # receiver, and a name past a datagram's size was "sent" and never arrived.
    for name in value.get("expressions", {}):
        if not _sendable(name):
            raise ValueError(
                f"rig.expressions.{_key(name)} is not a name: 1 to {MAX_NAME} characters of "
                "text, without NUL"
            )
    # Each name is a CSV column on every row: names of any making would grow the table by
    # frames times names, far past what the frame limit bounds.
    unknown = value.get("blendshapes", {}).keys() - ARKIT_NAMES
    if unknown:
        name = _key(min(unknown))
        raise ValueError(
            f"rig.blendshapes.{name} is not one of the 51 blendshapes the server gives "
            "(ARKit's 52 but tongueOut)"
        )
    return value


def _sendable(name: str) -> bool:
    if not 0 < len(name) <= MAX_NAME or "\x00" in name:
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _fitness(value: object) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("fitness must be an object")
    reps = value.get("reps")
    if reps is not None and (not isinstance(reps, int) or not _number(reps)):
        raise ValueError(f"fitness.reps must be an integer {_WITHIN}")
    # A CSV cell: a list was written as Python prints one (['squat']).
    exercise = value.get("exercise")
    if exercise is not None and (not isinstance(exercise, str) or len(exercise) > MAX_NAME):
        raise ValueError(
            f"fitness.exercise must be a name, a string of at most {MAX_NAME} characters"
        )
    return value


_BAD_SIZE = f'image must be {{"width": int, "height": int}}, each 1 to {MAX_SIDE}'


def _side(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIDE:
        raise ValueError(_BAD_SIZE)
    return value


def _size(value: object) -> tuple[int, int]:
    if value is None:
        return DEFAULT_SIZE
    if not isinstance(value, dict):
        raise ValueError(_BAD_SIZE)
    return _side(value.get("width")), _side(value.get("height"))


def parse_line(message: Mapping[str, Any]) -> Frame:
    frame = message.get("frame")
    if isinstance(frame, bool) or not isinstance(frame, int) or not 0 <= frame <= MAX_MAGNITUDE:
        raise ValueError(f"frame must be an integer from 0 to {MAX_MAGNITUDE:,.0f}")
    time_ms = message.get("time_ms")
    if not _number(time_ms) or not isinstance(time_ms, int | float):
        raise ValueError(f"time_ms must be a finite number {_WITHIN}")
    return Frame(
        frame=frame,
        time_ms=float(time_ms),
        landmarks=_landmarks(message.get("landmarks")),
        rig=_rig(message.get("rig")),
        fitness=_fitness(message.get("fitness")),
        size=_size(message.get("image")),
    )


def _no_constant(name: str) -> None:
    # NaN and Infinity are not JSON, though Python's json reads them by default.
    raise ValueError(f"{name} is not a JSON number")


_LINES = " (a recording is JSON lines: one whole frame object on each line)"


def _spread(text: str) -> str:
    """Words for a line that only opens an object or array: a recording pretty-printed to
    be read (json.dumps(indent=2), jq without -c) was refused at its "{" as if it were not
    JSON at all."""
    return f"; it spreads over several lines{_LINES}" if text.strip() in ("{", "[") else ""


def parse(lines: Iterable[str], max_frames: int = 0) -> Recording:
    """The recording in `lines` (text split at newlines); RecordingError names the first bad
    line. Blank lines are skipped; time must not go backwards; max_frames 0: no limit."""
    frames: list[Frame] = []
    summary: Mapping[str, Any] | None = None
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        if summary is not None:
            raise RecordingError(number, "a frame after the summary line, which must be last")
        try:
            message = json.loads(text, parse_constant=_no_constant)
        except ValueError as exc:
            raise RecordingError(number, f"not valid JSON ({exc}){_spread(text)}") from None
        except RecursionError:
            raise RecordingError(number, "not valid JSON (nested too deep)") from None
        if isinstance(message, list):
            raise RecordingError(number, f"each line must be a JSON object, not an array{_LINES}")
        if not isinstance(message, dict):
            raise RecordingError(number, "each line must be a JSON object")
        if "summary" in message and "frame" not in message:
            summary = message["summary"] if isinstance(message["summary"], dict) else {}
            continue
        if "error" in message and "landmarks" not in message:
            continue
        if "waiting" in message and "frame" not in message:
            continue
        try:
            frame = parse_line(message)
        except ValueError as exc:
            raise RecordingError(number, str(exc)) from None
        if frames and frame.time_ms < frames[-1].time_ms:
            raise RecordingError(number, "time_ms goes backwards")
        frames.append(frame)
        if max_frames and len(frames) > max_frames:
            raise TooManyFramesError(number, f"more than {max_frames} frames")
    if not frames:
        raise RecordingError(0, "the recording has no frames")
    return Recording(frames, summary)


UTF16_MARKS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def decoded(data: bytes) -> str:
    """A recording file's text: UTF-8, after a byte order mark as some editors write one; or
    UTF-16 after its mark, as Windows PowerShell 5's `>` writes what it redirects (`curl.exe
    ... /api/video > take.jsonl`), which was refused as "not UTF-8 text". Raises
    UnicodeDecodeError."""
    if data.startswith(UTF16_MARKS):
        return data.decode("utf-16")
    return data.decode("utf-8-sig")


def lines_of(text: str) -> Iterator[str]:
    """The lines of `text` one at a time: split() made a list of every line first, 860 000
    of them for 32 MB of one-frame lines, before max_frames could stop at the first 18 001."""
    start = 0
    while (end := text.find("\n", start)) != -1:
        yield text[start:end]
        start = end + 1
    yield text[start:]


def parse_text(text: str, max_frames: int = 0) -> Recording:
    return parse(lines_of(text), max_frames)
