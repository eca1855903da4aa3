"""Hands and fingers: world rotations from the hand landmarks, or from the pose's own
wrist, index and pinky points when the hand model found nothing."""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence

from webapp.analysis.rig import arms, quat
from webapp.analysis.rig.bones import FINGER_JOINTS, FINGER_POINTS, Pose
from webapp.analysis.rig.quat import Quat, Vec

ALONG = {"left": (1.0, 0.0, 0.0), "right": (-1.0, 0.0, 0.0)}
# Palms face -Y, so the index side of either hand faces +Z; thumbs point half way to it.
THUMB_SIDE = (0.0, 0.0, 1.0)
THUMB_REST = {side: quat.unit(quat.add(along, THUMB_SIDE)) for side, along in ALONG.items()}
WRIST, INDEX_BASE, MIDDLE_BASE, LITTLE_BASE = 0, 5, 9, 17
# The T-pose's palm-down is the forearm's mid turn: it pronates and supinates about 90
# degrees either way. A hand seen turned further than this about its own axis, relative to
# a bent forearm, has its index and little sides swapped (the hand model's guess at a
# fist seen from behind, the pose's points edge-on), docs/rig.md.
TWIST_LIMIT_DEG = 110.0


class Source(enum.StrEnum):
    """Where a frame's hand bone came from. Two sources seldom agree, so a change of source
    is a jump no hand made (hand_blend.py eases it)."""

    MODEL = "model"  # the hand model's landmarks
    MODEL_TURNED = "model turned"  # the same, index and little sides swapped back
    POSE = "pose"  # the pose's wrist, index and pinky points
    POSE_TURNED = "pose turned"
    FOREARM = "forearm"  # in line with it: nothing sees the hand, or the arm is a guess


def seen(hand_points: Sequence[Vec], side: str) -> Quat:
    """The hand as its landmarks show it: wrist to middle base along the rest's arm, little
    base to index base toward +Z."""
    along = quat.sub(hand_points[MIDDLE_BASE], hand_points[WRIST])
    across = quat.sub(hand_points[INDEX_BASE], hand_points[LITTLE_BASE])
    return quat.from_frames(ALONG[side], THUMB_SIDE, along, across)


def twist(local: Quat, axis: Vec) -> float:
    """The signed angle (radians, -pi..pi) a local rotation turns about `axis` (a unit
    vector): its twist, in a swing-twist split."""
    t = 2.0 * math.atan2(quat.dot(local[:3], axis), local[3])
    return (t + math.pi) % (2.0 * math.pi) - math.pi


def hand(
    points: Sequence[Vec],
    visible: Sequence[bool],
    shown: Quat | None,
    side: str,
    lower_arm: Quat,
) -> tuple[Quat, Source]:
    """The hand in the world and where it came from: `shown`, the hand model's (seen()),
    else the pose's points; in line with the forearm when neither source sees it, or when
    the arm is not seen (the forearm is then a guess, and a hand turned against it folds
    the wrist back on itself)."""
    shoulder, elbow, wrist = Pose.SHOULDER[side], Pose.ELBOW[side], Pose.WRIST[side]
    if not (visible[shoulder] and visible[elbow] and visible[wrist]):
        return lower_arm, Source.FOREARM
    if shown is not None:
        world, source = shown, Source.MODEL
    elif visible[Pose.INDEX[side]] and visible[Pose.PINKY[side]]:
        index, pinky = points[Pose.INDEX[side]], points[Pose.PINKY[side]]
        along = quat.sub(quat.mid(index, pinky), points[wrist])
        world = quat.from_frames(ALONG[side], THUMB_SIDE, along, quat.sub(index, pinky))
        source = Source.POSE
    else:
        return lower_arm, Source.FOREARM
    weight = arms.twist_weight(
        quat.sub(points[elbow], points[shoulder]), quat.sub(points[wrist], points[elbow])
    )
    kept = plausible(world, lower_arm, side, weight)
    if kept is world:
        return world, source
    return kept, Source.MODEL_TURNED if source is Source.MODEL else Source.POSE_TURNED


def plausible(world: Quat, lower_arm: Quat, side: str, weight: float) -> Quat:
    """world, or world turned half way round the hand's own axis (index and little sides
    swapped back) when it is twisted relative to the forearm by more than TWIST_LIMIT_DEG.
    weight: arms.twist_weight of the arm; as the elbow straightens the forearm's roll
    becomes the unseen shoulder's, and the limit widens to 180 degrees (nothing swapped)."""
    axis = ALONG[side]
    local = quat.multiply(quat.inverse(lower_arm), world)
    limit = math.radians(180.0 - (180.0 - TWIST_LIMIT_DEG) * weight)
    if abs(twist(local, axis)) <= limit:
        return world
    return quat.multiply(world, (axis[0], axis[1], axis[2], 0.0))


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
