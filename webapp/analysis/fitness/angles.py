"""Joint angles and other measures from one frame's pose landmarks, in the image's own units.

MediaPipe gives x and y as fractions of the image's width and height, so a 640x360 frame
would squash every angle; multiplying back by the image size undoes that. z is "roughly the
same scale as x" but overstates depth: with depth, z is scaled by the width times the
exercise's `depth` factor (0 = the image plane only).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

# MediaPipe Pose's 33 landmarks, in the model's order.
LANDMARKS = (
    "nose",
    "left_eye_inner", "left_eye", "left_eye_outer",
    "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_pinky", "right_pinky",
    "left_index", "right_index", "left_thumb", "right_thumb",
    "left_hip", "right_hip", "left_knee", "right_knee",
    "left_ankle", "right_ankle", "left_heel", "right_heel",
    "left_foot_index", "right_foot_index",
)  # fmt: skip
INDEX = {name: i for i, name in enumerate(LANDMARKS)}
SIDES = ("left", "right")
# The torso's ends, shoulders then hips: a body length the camera sees from any side, the unit
# of a measure's `apart` rules (exercises.toml).
TORSO = tuple(INDEX[f"{s}_{p}"] for p in ("shoulder", "hip") for s in SIDES)
# A landmark this far outside the image is MediaPipe's guess, whatever its visibility says.
_EDGE = 0.02

Point = tuple[float, float, float]


def to_points(
    pose: Sequence[Sequence[float]],
    image_size: tuple[int, int],
    depth: float,
    indices: Iterable[int],
) -> dict[int, Point]:
    """The landmarks `indices` in pixels, z times the width times `depth`."""
    width, height = image_size
    zscale = width * depth
    out = {}
    for i in indices:
        p = pose[i]
        out[i] = (p[0] * width, p[1] * height, p[2] * zscale)
    return out


def seen(
    pose: Sequence[Sequence[float]], min_visibility: float, indices: Iterable[int]
) -> set[int]:
    """Those of `indices` that are visible enough and inside the image."""
    lo, hi = -_EDGE, 1.0 + _EDGE
    return {
        i
        for i in indices
        if pose[i][3] >= min_visibility and lo <= pose[i][0] <= hi and lo <= pose[i][1] <= hi
    }


def angle(a: Point, b: Point, c: Point) -> float:
    """The angle at b, in degrees (180 = straight)."""
    u = (a[0] - b[0], a[1] - b[1], a[2] - b[2])
    v = (c[0] - b[0], c[1] - b[1], c[2] - b[2])
    nu = math.sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2])
    nv = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    if nu == 0.0 or nv == 0.0:
        return math.nan
    cos = (u[0] * v[0] + u[1] * v[1] + u[2] * v[2]) / (nu * nv)
    if not math.isfinite(cos):
        # A coordinate that is not a number: clamping would read it as a full bend.
        return math.nan
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def incline(a: Point, b: Point) -> float:
    """The direction from a to b in the image, in degrees from straight up (0 to 180)."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    if dx == 0.0 and dy == 0.0:
        return math.nan
    # Image y grows downward, so "up" is -y.
    return math.degrees(math.atan2(abs(dx), -dy))


def ratio(a: Point, b: Point, c: Point, d: Point) -> float:
    """distance(a, b) / distance(c, d), in the image plane."""
    den = math.hypot(c[0] - d[0], c[1] - d[1])
    return math.nan if den == 0.0 else math.hypot(a[0] - b[0], a[1] - b[1]) / den


def torso(points: Mapping[int, Point]) -> float:
    """The torso's length in the image: shoulder-mid to hip-mid (all four in `points`)."""
    ls, rs, lh, rh = (points[i] for i in TORSO)
    return math.hypot((ls[0] + rs[0] - lh[0] - rh[0]) / 2, (ls[1] + rs[1] - lh[1] - rh[1]) / 2)


def gap(a: Point, b: Point) -> float:
    """distance(a, b) in the image plane."""
    return math.hypot(a[0] - b[0], a[1] - b[1])


def measure(kind: str, points: Sequence[Point]) -> float:
    if kind == "angle":
        return angle(points[0], points[1], points[2])
    if kind == "incline":
        return incline(points[0], points[1])
    return ratio(points[0], points[1], points[2], points[3])
