"""Hands and fingers: world rotations from the hand landmarks, or from the pose's own
wrist, index and pinky points when the hand model found nothing."""

from __future__ import annotations

from collections.abc import Sequence

from webapp.analysis.rig import quat
from webapp.analysis.rig.bones import FINGER_JOINTS, FINGER_POINTS, Pose
from webapp.analysis.rig.quat import Quat, Vec

ALONG = {"left": (1.0, 0.0, 0.0), "right": (-1.0, 0.0, 0.0)}
# Palms face -Y, so the index side of either hand faces +Z; thumbs point half way to it.
THUMB_SIDE = (0.0, 0.0, 1.0)
THUMB_REST = {side: quat.unit(quat.add(along, THUMB_SIDE)) for side, along in ALONG.items()}
WRIST, INDEX_BASE, MIDDLE_BASE, LITTLE_BASE = 0, 5, 9, 17


def hand(
    points: Sequence[Vec],
    visible: Sequence[bool],
    hand_points: Sequence[Vec] | None,
    side: str,
    lower_arm: Quat,
) -> Quat:
    """The hand in the world; in line with the forearm when neither source sees it."""
    if hand_points is not None:
        along = quat.sub(hand_points[MIDDLE_BASE], hand_points[WRIST])
        across = quat.sub(hand_points[INDEX_BASE], hand_points[LITTLE_BASE])
    elif visible[Pose.WRIST[side]] and visible[Pose.INDEX[side]] and visible[Pose.PINKY[side]]:
        index, pinky = points[Pose.INDEX[side]], points[Pose.PINKY[side]]
        along = quat.sub(quat.mid(index, pinky), points[Pose.WRIST[side]])
        across = quat.sub(index, pinky)
    else:
        return lower_arm
    return quat.from_frames(ALONG[side], THUMB_SIDE, along, across)


def fingers(hand_points: Sequence[Vec], side: str, hand_world: Quat) -> dict[str, Quat]:
    """Each finger bone's local rotation, relative to its parent: a swing from its rest
    direction onto the segment between two hand landmarks, seen from the parent. (Local,
    not world: the solver would only undo a world rotation into this swing again.)"""
    out: dict[str, Quat] = {}
    for finger, chain in FINGER_POINTS.items():
        rest = THUMB_REST[side] if finger == "Thumb" else ALONG[side]
        parent = hand_world
        for joint, a, b in zip(FINGER_JOINTS[finger], chain, chain[1:], strict=False):
            segment = quat.sub(hand_points[b], hand_points[a])
            swing = quat.between(rest, quat.rotate(quat.inverse(parent), segment))
            parent = quat.multiply(parent, swing)
            out[f"{side}{finger}{joint}"] = swing
    return out
