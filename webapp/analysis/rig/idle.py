"""The rig at rest, for an avatar with nobody in front of its camera.

VRM's own rest is a T-pose, arms held out: an avatar left in it (or frozen mid-gesture)
when its person steps away looks, on a stream, like broken tracking. At rest the upper arms
hang 70 degrees down and the elbows bend a little; the face is neutral. The avatar page
rests in the same pose (static/avatar/avatar.js, IDLE_RIG), so the page, the OBS view and a
VMC app show the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from webapp.analysis.rig.bones import PARENT
from webapp.analysis.rig.face import EXPRESSIONS
from webapp.analysis.rig.quat import IDENTITY, from_axis_angle

# In VRM 1.0's normalized axes the left arm points along +X: a turn about Z toward -Y
# lowers it.
ARM_DOWN_DEGREES = 70.0
ELBOW_DEGREES = 10.0
# Nobody seen for this long (no rig in the results, or no results at all) is nobody there:
# results come at 5 fps or more, so this is many missed, not one late.
UNSEEN_SECONDS = 2.0

_Z = (0.0, 0.0, 1.0)
_Y = (0.0, 1.0, 0.0)


def _round(q: tuple[float, ...]) -> list[float]:
    return [round(c, 6) for c in q]


IDLE_BONES: dict[str, list[float]] = {
    "leftUpperArm": _round(from_axis_angle(_Z, -math.radians(ARM_DOWN_DEGREES))),
    "rightUpperArm": _round(from_axis_angle(_Z, math.radians(ARM_DOWN_DEGREES))),
    "leftLowerArm": _round(from_axis_angle(_Y, -math.radians(ELBOW_DEGREES))),
    "rightLowerArm": _round(from_axis_angle(_Y, math.radians(ELBOW_DEGREES))),
}


def idle_rig(blendshapes: Iterable[str] = (), expressions: Iterable[str] = ()) -> dict[str, Any]:
    """A rig as solve() makes one (docs/protocol.md): the rest pose, every expression, the
    named ones beyond the face's own (a held emotion's) and the named blendshapes 0. It
    names every bone, VRM's rest where not above: a VMC receiver keeps a bone it is not
    sent where it was (a head turned, a fist), and an expression likewise (a smile)."""
    rig: dict[str, Any] = {
        "bones": {name: list(IDLE_BONES.get(name, IDENTITY)) for name in PARENT},
        "hips_position": [0.0, 0.0, 0.0],
        "expressions": dict.fromkeys((*EXPRESSIONS, *expressions), 0.0),
    }
    shapes = dict.fromkeys(blendshapes, 0.0)
    if shapes:
        rig["blendshapes"] = shapes
    return rig
