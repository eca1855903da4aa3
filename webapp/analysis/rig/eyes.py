"""The rig's gaze as eye bones, for receivers that turn a model's eyes by bone.

The rig carries the gaze as the look expressions, which move a model whose lookAt is made
of blend shapes. Most VRoid models look with two eye bones instead, and their look
expressions move nothing. The page hands such a model the gaze through its own lookAt
(static/avatar/gaze.js); a VMC receiver applies the bones it is sent, so VMC carries the
gaze both ways and each model moves by the half it has (webapp/vmc/encode.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from webapp.analysis.rig import quat
from webapp.analysis.rig.quat import Quat
from webapp.analysis.skeleton import Vec3

LOOKS = frozenset({"lookUp", "lookDown", "lookLeft", "lookRight"})

# A full look (1.0) turns the eyes as far as UniVRM's default lookAt range lets a model's
# eye bones turn, as a full look expression is its blend shape's whole movement.
FULL_TURN_DEGREES = 10.0

# Where eyes sit on the skeleton's head (VRM's normalized axes, metres). Not part of the
# skeleton itself, whose bones the rig turns: VMC and BVH add them.
EYE_OFFSET: dict[str, Vec3] = {"leftEye": (0.03, 0.06, 0.08), "rightEye": (-0.03, 0.06, 0.08)}

_UP: Vec3 = (0.0, 1.0, 0.0)
_SIDEWAYS: Vec3 = (1.0, 0.0, 0.0)


def eye_rotation(
    expressions: Mapping[str, float], full_turn_degrees: float = FULL_TURN_DEGREES
) -> Quat | None:
    """Both eyes' local rotation (VRM's normalized axes) for a rig's look expressions, or
    None when they name no look (a rig's always do: 0 without irises or a face). Yaw about
    +Y turns the gaze toward the model's own left (+X), pitch about +X turns it down; yaw
    is applied after pitch, as in three-vrm's lookAt."""
    if not LOOKS & expressions.keys():
        return None

    def weight(name: str) -> float:
        return float(expressions.get(name, 0.0))

    yaw = math.radians(full_turn_degrees * (weight("lookLeft") - weight("lookRight")))
    pitch = math.radians(full_turn_degrees * (weight("lookDown") - weight("lookUp")))
    return quat.multiply(quat.from_axis_angle(_UP, yaw), quat.from_axis_angle(_SIDEWAYS, pitch))
