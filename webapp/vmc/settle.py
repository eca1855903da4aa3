"""What a VMC receiver was sent and a frame no longer carries, eased back to rest.

A receiver holds the last value it was sent. The rig leaves out what this frame did not
see: the legs out of the picture, a hand's fingers while the hand model does not find it,
the face's blendshapes while the face is not found (its hand over it, turned away). Sent
nothing, VSeeFace kept a bent knee, a fist or a half-closed eye for as long as they stayed
out of view. The avatar page eases such bones back to rest (static/avatar/avatar.js,
REST_S); this does the same for its receivers, from the value last sent, and once at rest
sends each once more and forgets it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from webapp.analysis.rig.quat import IDENTITY, Quat, angle, slerp

# The avatar page's: a flicker in detection does not snap the limb.
REST_S = 0.3
# Nearer rest than this (radians, or a weight) is at rest: sent as rest, then forgotten.
AT_REST = 1e-3
# The rig's weights by name that a receiver holds, each to be eased to 0.
WEIGHTS = ("expressions", "blendshapes")


class Settle:
    """The bones and weights last sent to one set of receivers, and when."""

    def __init__(self) -> None:
        self._bones: dict[str, Quat] = {}
        self._weights: dict[str, dict[str, float]] = {kind: {} for kind in WEIGHTS}
        self._seconds: float | None = None

    def inherit(self, older: Settle) -> None:
        """What `older` sent the same receivers, as last sent, under what this one sent."""
        self._bones = {**older._bones, **self._bones}
        for kind in WEIGHTS:
            self._weights[kind] = {**older._weights[kind], **self._weights[kind]}

    def fill(self, rig: Mapping[str, Any], seconds: float) -> Mapping[str, Any]:
        """`rig`, with what it leaves out that was sent before (at `seconds`, on the clock
        of the frames so far) one step nearer rest."""
        # A clock that goes back (a client's, started again) starts the steps afresh.
        step = 0.0 if self._seconds is None else max(0.0, seconds - self._seconds)
        self._seconds = seconds
        toward = 1.0 - math.exp(-step / REST_S)
        filled = dict(rig)
        bones: Mapping[str, Sequence[float]] = rig.get("bones") or {}
        eased_bones = self._ease_bones(bones, toward)
        if eased_bones:
            filled["bones"] = {**bones, **eased_bones}
        for kind in WEIGHTS:
            weights: Mapping[str, float] = rig.get(kind) or {}
            eased = self._ease_weights(self._weights[kind], weights, toward)
            if eased:
                filled[kind] = {**weights, **eased}
        return filled

    def _ease_bones(
        self, bones: Mapping[str, Sequence[float]], toward: float
    ) -> dict[str, list[float]]:
        eased: dict[str, list[float]] = {}
        for name in [name for name in self._bones if name not in bones]:
            nearer = slerp(self._bones[name], IDENTITY, toward)
            if angle(nearer) < AT_REST:
                nearer = IDENTITY
                del self._bones[name]
            else:
                self._bones[name] = nearer
            eased[name] = list(nearer)
        for name, q in bones.items():
            self._bones[name] = (float(q[0]), float(q[1]), float(q[2]), float(q[3]))
        return eased

    @staticmethod
    def _ease_weights(
        sent: dict[str, float], weights: Mapping[str, float], toward: float
    ) -> dict[str, float]:
        eased: dict[str, float] = {}
        for name in [name for name in sent if name not in weights]:
            nearer = sent[name] * (1.0 - toward)
            if abs(nearer) < AT_REST:
                nearer = 0.0
                del sent[name]
            else:
                sent[name] = nearer
            eased[name] = nearer
        sent.update((name, float(value)) for name, value in weights.items())
        return eased
