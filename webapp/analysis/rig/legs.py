"""Upper legs, lower legs and feet: world rotations, only for legs in view."""

from __future__ import annotations

from collections.abc import Sequence

from webapp.analysis.rig import quat
from webapp.analysis.rig.arms import limb
from webapp.analysis.rig.bones import Pose
from webapp.analysis.rig.quat import Quat, Vec

DOWN = (0.0, -1.0, 0.0)
BACKWARD = (0.0, 0.0, -1.0)  # a bending knee moves the shin backward
TOES = (0.0, 0.0, 1.0)


def leg(points: Sequence[Vec], visible: Sequence[bool], side: str) -> dict[str, Quat]:
    """UpperLeg and LowerLeg (and Foot, when heel and toes are seen) in the world; nothing
    when the hip, knee or ankle is out of view: absent legs, not guessed ones."""
    hip, knee, ankle = Pose.HIP[side], Pose.KNEE[side], Pose.ANKLE[side]
    if not (visible[hip] and visible[knee] and visible[ankle]):
        return {}
    upper, lower = limb(
        quat.sub(points[knee], points[hip]), quat.sub(points[ankle], points[knee]), DOWN, BACKWARD
    )
    out = {f"{side}UpperLeg": upper, f"{side}LowerLeg": lower}
    heel, toes = Pose.HEEL[side], Pose.FOOT_INDEX[side]
    if visible[heel] and visible[toes]:
        local_dir = quat.rotate(quat.inverse(lower), quat.sub(points[toes], points[heel]))
        out[f"{side}Foot"] = quat.multiply(lower, quat.between(TOES, local_dir))
    return out
