"""Hips, spine, chest and head: world rotations from the shoulders, hips and face."""

from __future__ import annotations

import math
from collections.abc import Sequence

from webapp.analysis.rig import quat
from webapp.analysis.rig.bones import Pose
from webapp.analysis.rig.quat import Points, Quat, Vec

X = (1.0, 0.0, 0.0)
Y = (0.0, 1.0, 0.0)
# Face mesh: outer eye corners (the person's right, then left), forehead top, chin.
FACE_RIGHT_EYE_OUTER = 33
FACE_LEFT_EYE_OUTER = 263
FACE_FOREHEAD = 10
FACE_CHIN = 152
HEAD_FACE_POINTS = (FACE_FOREHEAD, FACE_RIGHT_EYE_OUTER, FACE_CHIN, FACE_LEFT_EYE_OUTER)
# A neck turns a head about 80 degrees to a side, and nods less: real heads read at most 68
# degrees from the chest over the shared media. A face mesh further round is no face of the
# person's (the model found one on the back of the head of media/squat, seen from behind,
# 158 degrees from the chest: the avatar looked over its back for a frame).
HEAD_TURN_LIMIT_DEG = 110.0


def torso(points: Sequence[Vec], visible: Sequence[bool]) -> dict[str, Quat]:
    """hips, spine, chest and upperChest in the world.

    The hips take the lean (the spine's direction) and the hips' own turn; spine and chest
    share the twist between hips and shoulders. With the hips out of view (a webcam framing
    the upper body) the hips stay at rest and the shoulders alone turn the chest.
    """
    ls, rs = points[Pose.SHOULDER["left"]], points[Pose.SHOULDER["right"]]
    lh, rh = points[Pose.HIP["left"]], points[Pose.HIP["right"]]
    shoulder_axis = quat.sub(ls, rs)
    if visible[Pose.HIP["left"]] and visible[Pose.HIP["right"]]:
        up = quat.sub(quat.mid(ls, rs), quat.mid(lh, rh))
        hips = quat.from_frames(Y, X, up, quat.sub(lh, rh))
        chest = quat.from_frames(Y, X, up, shoulder_axis)
    else:
        hips = quat.IDENTITY
        chest = quat.from_frames(X, Y, shoulder_axis, Y)
    spine = quat.slerp(hips, chest, 0.5)
    return {"hips": hips, "spine": spine, "chest": chest, "upperChest": chest}


def face_head(face: Points) -> Quat:
    """The head in the world as the face mesh shows it."""
    across = quat.sub(face[FACE_LEFT_EYE_OUTER], face[FACE_RIGHT_EYE_OUTER])
    return quat.from_frames(X, Y, across, quat.sub(face[FACE_FOREHEAD], face[FACE_CHIN]))


def within_neck(head_world: Quat, chest: Quat) -> bool:
    """Whether a neck can turn a head this far from the chest."""
    turn = quat.multiply(quat.inverse(chest), head_world)
    return math.degrees(quat.angle(turn)) <= HEAD_TURN_LIMIT_DEG


def head(points: Sequence[Vec], face: Points | None, chest: Quat) -> dict[str, Quat]:
    """neck and head in the world: the head from the face mesh when there is one, else from
    the pose's ears, eyes and mouth; the neck takes half of the head's turn from the chest.
    A head further round than a neck turns keeps in line with the chest."""
    if face is not None:
        head_world = face_head(face)
    else:
        across = quat.sub(points[Pose.LEFT_EAR], points[Pose.RIGHT_EAR])
        eyes = quat.mid(points[Pose.LEFT_EYE], points[Pose.RIGHT_EYE])
        up = quat.sub(eyes, quat.mid(points[Pose.MOUTH_LEFT], points[Pose.MOUTH_RIGHT]))
        head_world = quat.from_frames(X, Y, across, up)
    if not within_neck(head_world, chest):
        head_world = chest
    return {"neck": quat.slerp(chest, head_world, 0.5), "head": head_world}
