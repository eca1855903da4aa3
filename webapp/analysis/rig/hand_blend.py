"""A hand bone eased across a change of where it comes from.

The hand model drops in and out (a hand side-on at floor level, a fist seen from behind)
and the pose's wrist, index and pinky points, or the forearm's line, stand in for a frame
or ten; the sources seldom agree, often by a third of a turn or more, so each change made
the avatar's hand jump as no wrist can (bench/README.md, "Hands"). Eased over BLEND_MS of
capture time, the hand turns there instead; a hand one source follows moves as it says.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from webapp.analysis.rig import quat
from webapp.analysis.rig.hands import Source
from webapp.analysis.rig.quat import Quat
from webapp.analysis.rig.solve import Rig

# Long enough to read as a turn (three frames at 15 fps, five at 30), short enough that a
# hand the model finds again follows it within a fifth of a second.
BLEND_MS = 150.0


@dataclass
class _Hand:
    source: Source
    sent: Quat  # the local rotation last sent
    at_ms: float  # its capture time
    start: Quat | None = None  # where the easing began; None: not easing
    start_ms: float = 0.0
    # The last target eased to, its sign kept continuous: a turned-back hand is half a
    # turn from the hand before it, and the short way round from `start` flips sides as
    # the target moves about there (a step of up to half a turn mid-easing).
    toward: Quat | None = None


class HandBlend:
    """One session's two hand bones (local rotations, as the rig sends them)."""

    def __init__(self) -> None:
        self._hands: dict[str, _Hand] = {}

    def reset(self) -> None:
        self._hands.clear()

    def __call__(self, rig: Rig, capture_ms: float) -> Rig:
        bones = dict(rig.bones)
        for side, source in rig.hand_sources.items():
            bone = f"{side}Hand"
            target = bones.get(bone)
            if target is None:
                continue
            last = self._hands.get(side)
            if last is None or not 0.0 <= capture_ms - last.at_ms <= BLEND_MS:
                # Nothing recent to turn from (or a clock that ran back): as it is.
                self._hands[side] = _Hand(source, target, capture_ms)
                continue
            if source is not last.source:
                # From what was shown, over the time since: the first frame moves already.
                last.source, last.start, last.start_ms = source, last.sent, last.at_ms
                last.toward = _near(target, last.sent)
            if last.start is not None and last.toward is not None:
                share = (capture_ms - last.start_ms) / BLEND_MS
                if share >= 1.0:
                    last.start = last.toward = None
                else:
                    last.toward = _near(target, last.toward)
                    eased = quat.slerp(last.start, last.toward, share, shortest=False)
                    target = quat.canonical(eased)
                    bones[bone] = target
            last.sent, last.at_ms = target, capture_ms
        return replace(rig, bones=bones)


def _near(q: Quat, to: Quat) -> Quat:
    """q or -q (the same rotation), whichever is nearer `to` as a quaternion."""
    if q[0] * to[0] + q[1] * to[1] + q[2] * to[2] + q[3] * to[3] >= 0.0:
        return q
    return (-q[0], -q[1], -q[2], -q[3])
