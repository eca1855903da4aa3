"""Which way is straight ahead for the head and the eyes: a person's own, taken when they
ask.

A streamer looks at a screen, not at the webcam above or beside it, and every face holds
its head a little differently: without calibration the avatar looks down or aside all
stream, with its head and with its eyes. Calibrating takes the head's rotation in the
chest at that moment as the head's rest; later rotations are measured from it, in the
chest's axes (a turn of the head is about the neck's upright axis whatever the rest was).
Neck and head then share the turn as solve() shares it: the neck half of it, from the
chest, the head the rest. The irises' offset at that moment becomes the gaze's rest,
taken off later offsets before they become look expressions (solve()'s gaze_rest).

Rotations and gazes here are the person's own; a mirrored rig mirrors the rest it applies,
so one calibration serves both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from webapp.analysis.rig import quat
from webapp.analysis.rig.face import Gaze
from webapp.analysis.rig.quat import Quat


@dataclass(frozen=True)
class Rest:
    """Straight ahead: the head's turn in the chest, and the irises' gaze (None: the face
    had no irises, and the gaze keeps no rest)."""

    head: Quat
    gaze: Gaze | None = None


def head_in_chest(bones: Mapping[str, Quat], mirror: bool = False) -> Quat | None:
    """The head's rotation relative to the chest (upperChest), the person's own; None
    when the rig has no head."""
    neck, head = bones.get("neck"), bones.get("head")
    if neck is None or head is None:
        return None
    turn = quat.normalize(quat.multiply(neck, head))
    return quat.canonical(quat.mirror(turn) if mirror else turn)


def from_rest(bones: Mapping[str, Quat], rest: Quat, mirror: bool = False) -> dict[str, Quat]:
    """The bones with neck and head turned as measured from `rest` (the person's own)."""
    turn = head_in_chest(bones)
    if turn is None:
        return dict(bones)
    undo = quat.inverse(quat.mirror(rest) if mirror else rest)
    head_turn = quat.normalize(quat.multiply(turn, undo))
    neck = quat.slerp(quat.IDENTITY, head_turn, 0.5)
    head = quat.multiply(quat.inverse(neck), head_turn)
    out = dict(bones)
    out["neck"] = quat.canonical(quat.normalize(neck))
    out["head"] = quat.canonical(quat.normalize(head))
    return out
