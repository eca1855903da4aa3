"""VRM expressions from the face mesh: blinks, five mouth shapes and the gaze.

Every measure is a ratio of distances inside the face (rig space, so the image's aspect
ratio is already undone), divided by the distance between the outer eye corners where it
needs a scale: it does not change with the face's size in the image. Each is mapped to
0..1 linearly between two calibration points, clamped (see docs/rig.md); a live session
replaces the eyes' fixed points with its own running ones (calibration.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from webapp.analysis.rig import quat
from webapp.analysis.rig.quat import Points

EXPRESSIONS = (
    "blinkLeft",
    "blinkRight",
    "aa",
    "ih",
    "ou",
    "ee",
    "oh",
    "lookUp",
    "lookDown",
    "lookLeft",
    "lookRight",
)
IRIS_POINTS = 478

# Eyes, the person's own left and right: corners (toward the person's right, then left),
# and three upper and lower eyelid points facing each other.
EYE_CORNERS = {"right": (33, 133), "left": (362, 263)}
EYE_UPPER = {"right": (160, 159, 158), "left": (385, 386, 387)}
EYE_LOWER = {"right": (144, 145, 153), "left": (380, 374, 373)}
IRIS = {"right": 468, "left": 473}
OUTER_CORNERS = (33, 263)
LIPS_INNER = (13, 14)  # upper, lower
MOUTH_CORNERS = (61, 291)
FOREHEAD, CHIN = 10, 152

# Calibration: eyelid gap / eye width from shut to open; mouth gap and mouth width / outer
# eye corner distance; iris offset from the eye's centre / eye width, full scale. A shut eye
# measures 0.03 to 0.07 in the blinks of media/blinks_*, a fifth of an open one or less: shut
# at 0.12 (0.43 of open) read a half-closed eye as a whole blink and doubled the flicker of
# an open one.
EYE_SHUT, EYE_OPEN = 0.056, 0.28
MOUTH_SHUT, MOUTH_OPEN = 0.02, 0.35
MOUTH_NARROW, MOUTH_WIDE = 0.40, 0.70
GAZE_SIDE = 0.10
GAZE_UP, GAZE_DOWN = 0.06, 0.06
GAZE_DEAD = 0.015
# (toward the person's left, up): see gaze().
Gaze = tuple[float, float]


def ramp(value: float, lo: float, hi: float) -> float:
    """0 at lo, 1 at hi, linear between and clamped outside."""
    return min(1.0, max(0.0, (value - lo) / (hi - lo)))


def _distance(face: Points, a: int, b: int) -> float:
    return quat.norm(quat.sub(face[a], face[b]))


def eye_opening(face: Points, side: str) -> float:
    """Mean eyelid gap over the eye's width: about 0.3 open, under 0.1 shut."""
    width = max(_distance(face, *EYE_CORNERS[side]), 1e-9)
    gaps = [_distance(face, a, b) for a, b in zip(EYE_UPPER[side], EYE_LOWER[side], strict=True)]
    return sum(gaps) / len(gaps) / width


def mouth(face: Points) -> tuple[float, float]:
    """(gap between the inner lips, width between the corners), over the eye corners' span."""
    span = max(_distance(face, *OUTER_CORNERS), 1e-9)
    return _distance(face, *LIPS_INNER) / span, _distance(face, *MOUTH_CORNERS) / span


def gaze(face: Points) -> Gaze:
    """(toward the person's left, up): the irises' mean offset from their eyes' centres over
    the eyes' width, on the face's own axes."""
    up = quat.sub(face[FOREHEAD], face[CHIN])
    side_sum = up_sum = 0.0
    for side, (a, b) in EYE_CORNERS.items():
        across = quat.sub(face[b], face[a])
        width = max(quat.norm(across), 1e-9)
        across = quat.scale(across, 1.0 / width)
        eye_up = quat.unit(quat.sub(up, quat.scale(across, quat.dot(up, across))))
        offset = quat.sub(face[IRIS[side]], quat.mid(face[a], face[b]))
        side_sum += quat.dot(offset, across) / width
        up_sum += quat.dot(offset, eye_up) / width
    return side_sum / 2.0, up_sum / 2.0


def blink_of(opening: float, shut: float = EYE_SHUT, open_: float = EYE_OPEN) -> float:
    """1 with the eye shut, 0 open, linear between the eye's shut and open levels."""
    return 1.0 - ramp(opening, shut, open_)


@cache
def points_read(irises: bool) -> tuple[int, ...]:
    """The face mesh's points that expressions() reads (worked out once, read per frame)."""
    eyes = [*EYE_CORNERS.values(), *EYE_UPPER.values(), *EYE_LOWER.values()]
    points = {i for group in eyes for i in group}
    points |= {*OUTER_CORNERS, *LIPS_INNER, *MOUTH_CORNERS, FOREHEAD, CHIN}
    if irises:
        points |= set(IRIS.values())
    return tuple(sorted(points))


def expressions(
    face: Points,
    eyes: Mapping[str, tuple[float, float]] | None = None,
    gaze: Gaze | None = None,
) -> dict[str, float]:
    """The eleven VRM presets from one face mesh in rig space (the points_read(irises)).
    eyes: each eye's (shut, open) levels, a session's calibration; the fixed ones without.
    gaze: the look to show, gaze() less any calibrated rest; None (a mesh without irises,
    468 points not 478): no look."""
    levels, fixed = eyes or {}, (EYE_SHUT, EYE_OPEN)
    gap, width = mouth(face)
    o = ramp(gap, MOUTH_SHUT, MOUTH_OPEN)
    w = ramp(width, MOUTH_NARROW, MOUTH_WIDE)
    parted = ramp(gap, MOUTH_SHUT, MOUTH_SHUT + 0.08)
    narrow = ramp(0.5 - w, 0.0, 0.5)
    wide = ramp(w - 0.5, 0.0, 0.5)
    out = {
        "blinkLeft": blink_of(eye_opening(face, "left"), *levels.get("left", fixed)),
        "blinkRight": blink_of(eye_opening(face, "right"), *levels.get("right", fixed)),
        "aa": o,
        "ih": parted * (1.0 - o) * (1.0 - narrow) * (1.0 - wide),
        "ou": parted * (1.0 - o) * narrow,
        "ee": parted * wide,
        "oh": o * narrow,
        "lookUp": 0.0,
        "lookDown": 0.0,
        "lookLeft": 0.0,
        "lookRight": 0.0,
    }
    if gaze is not None:
        h, v = gaze
        out["lookLeft"] = ramp(h, GAZE_DEAD, GAZE_SIDE)
        out["lookRight"] = ramp(-h, GAZE_DEAD, GAZE_SIDE)
        out["lookUp"] = ramp(v, GAZE_DEAD, GAZE_UP)
        out["lookDown"] = ramp(-v, GAZE_DEAD, GAZE_DOWN)
    return out
