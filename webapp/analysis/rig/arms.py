"""Upper and lower arms: world rotations from the shoulder, elbow and wrist."""

from __future__ import annotations

import math
from collections.abc import Sequence

from webapp.analysis.rig import quat
from webapp.analysis.rig.bones import Pose
from webapp.analysis.rig.quat import Quat, Vec

# Rest direction of each side's arm; a bending elbow moves the forearm forward.
ALONG = {"left": (1.0, 0.0, 0.0), "right": (-1.0, 0.0, 0.0)}
FORWARD = (0.0, 0.0, 1.0)
# An arm out of view hangs 70 degrees down from the T-pose (relative to the chest).
RELAXED = {
    "left": quat.from_axis_angle((0.0, 0.0, 1.0), math.radians(-70.0)),
    "right": quat.from_axis_angle((0.0, 0.0, 1.0), math.radians(70.0)),
}
# Under this bend the forearm's plane is noise, so the upper bone's twist fades out.
TWIST_FROM_DEG, TWIST_FULL_DEG = 10.0, 30.0


def bend(upper_dir: Vec, lower_dir: Vec) -> float:
    """The angle between two bones' directions (radians): 0 straight, pi folded."""
    c = quat.dot(quat.unit(upper_dir), quat.unit(lower_dir))
    return math.acos(max(-1.0, min(1.0, c)))


def twist_weight(upper_dir: Vec, lower_dir: Vec) -> float:
    """How much of the upper bone's twist the bend's plane sets: 0 under TWIST_FROM_DEG of
    bend, 1 from TWIST_FULL_DEG on."""
    weight = (math.degrees(bend(upper_dir, lower_dir)) - TWIST_FROM_DEG) / (
        TWIST_FULL_DEG - TWIST_FROM_DEG
    )
    return min(1.0, max(0.0, weight))


def limb(upper_dir: Vec, lower_dir: Vec, along: Vec, bend_toward: Vec) -> tuple[Quat, Quat]:
    """World rotations of a two-bone limb whose rest pose points along `along`.

    The upper bone turns from rest onto upper_dir, twisted so that the lower bone bends
    toward rest's `bend_toward`; the lower bone then only swings relative to the upper one,
    so its local rotation angle is exactly the bend (180 degrees minus the joint's angle).
    """
    weight = twist_weight(upper_dir, lower_dir)
    swing = quat.between(along, upper_dir)
    if weight <= 0.0:
        upper = swing
    else:
        full = quat.from_frames(along, bend_toward, upper_dir, lower_dir)
        upper = full if weight >= 1.0 else quat.slerp(swing, full, weight)
    local_dir = quat.rotate(quat.inverse(upper), lower_dir)
    return upper, quat.multiply(upper, quat.between(along, local_dir))


def arm(
    points: Sequence[Vec], visible: Sequence[bool], side: str, chest: Quat
) -> tuple[Quat, Quat]:
    """(upperArm, lowerArm) in the world: hanging relaxed when the arm is out of view,
    straight when only the wrist is."""
    shoulder, elbow, wrist = Pose.SHOULDER[side], Pose.ELBOW[side], Pose.WRIST[side]
    if not (visible[shoulder] and visible[elbow]):
        relaxed = quat.multiply(chest, RELAXED[side])
        return relaxed, relaxed
    upper_dir = quat.sub(points[elbow], points[shoulder])
    if not visible[wrist]:
        upper = quat.between(ALONG[side], upper_dir)
        return upper, upper
    return limb(upper_dir, quat.sub(points[wrist], points[elbow]), ALONG[side], FORWARD)
