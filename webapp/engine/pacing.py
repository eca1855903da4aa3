"""When frames are asked for: service-time estimates, granted rates and turn invitations.

To keep latency low when sessions outnumber what the model can do, a lane invites frames:
while its worker runs one frame it sends a `turn` to the next session in its rotation that
is due one, so that session's freshest frame arrives just as the worker frees up, instead
of a stale frame waiting a whole round.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Callable

from webapp.engine.slot import WITH_BLENDSHAPES, Slot, SlotState

STILL = "still"
# First guesses of the wall time one job takes, corrected by measurement as jobs run.
INITIAL_SERVICE_MS = {"holistic": 45.0, "pose": 15.0, STILL: 75.0}
EWMA_WEIGHT = 0.1
# Until a session with blendshapes has run a frame, its frames are guessed at its track's
# time times this: the face model's share of a holistic frame, measured (slot.py).
BLENDSHAPES_GUESS = 1.03
# An invited frame that has not arrived by then is given up on, and the next one invited.
INVITE_PATIENCE = 0.5
# How long before a worker frees up the next frame is invited: the client's time to grab,
# encode and send it.
INVITE_LEAD_MS = 20.0


class ServiceTimes:
    """Wall time of one job of each kind (slot.service_kind(), or STILL), as a moving
    average."""

    def __init__(self) -> None:
        self._ms = dict(INITIAL_SERVICE_MS)

    def __getitem__(self, kind: str) -> float:
        if kind in self._ms:
            return self._ms[kind]
        # A track with blendshapes not yet measured: its track's time, as measured so far.
        return self._ms[kind.removesuffix(WITH_BLENDSHAPES)] * BLENDSHAPES_GUESS

    def measure(self, kind: str, started: float) -> None:
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        old = self[kind]
        self._ms[kind] = old + EWMA_WEIGHT * (elapsed_ms - old)

    def lead_time(self, kind: str) -> float:
        """Seconds from a frame's start to the moment the next one should be invited."""
        return max(0.0, self[kind] - INVITE_LEAD_MS) / 1000.0


def granted_fps(share: float, wanted: float, max_fps: float) -> float:
    """The rate a session is told to send at, given its lane's fair share (grant.py)."""
    return round(max(0.5, min(wanted, max_fps, share)), 1)


def next_due(due: float, arrived: float, interval: float) -> float:
    """One interval on from the previous due time, so lateness is caught up, but never
    more than one interval behind (no burst after a stall) nor ahead of the arrival."""
    base = max(due, arrived - interval) if due else arrived
    return min(base, arrived) + interval


class Invitations:
    """One lane's rotation of ready sessions and the one turn it has outstanding."""

    def __init__(self, next_served: Callable[[], float] = lambda: math.inf) -> None:
        """`next_served`: the last start of the session whose waiting frame runs next."""
        self.rotation: collections.deque[Slot] = collections.deque()
        self._next_served = next_served
        self.invited: Slot | None = None
        self._invited_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self.stopped = False

    def add(self, slot: Slot) -> None:
        self.rotation.append(slot)

    def remove(self, slot: Slot) -> None:
        if slot in self.rotation:
            self.rotation.remove(slot)
        if self.invited is slot:
            self.invited = None
            self.now()

    def answered(self, slot: Slot) -> None:
        """A frame arrived from `slot`, invited or not."""
        if slot.state is SlotState.INVITED:
            slot.state = SlotState.IDLE
        if self.invited is slot:
            self.invited = None

    def clear(self) -> None:
        self.rotation.clear()
        self.invited = None

    def stop(self) -> None:
        self.stopped = True
        self._cancel()

    def later(self, delay: float) -> None:
        self._cancel()
        self._timer = asyncio.get_running_loop().call_later(delay, self.now)

    def now(self) -> None:
        """Asks the next session in the rotation that is due a frame to send one now."""
        self._cancel()
        now = time.perf_counter()
        if self.invited is not None and now - self._invited_at < INVITE_PATIENCE:
            self.later(self._invited_at + INVITE_PATIENCE - now)
            return
        if self.invited is not None:
            if self.invited.state is SlotState.INVITED:
                self.invited.state = SlotState.IDLE
            self.invited = None
        soonest = float("inf")
        next_served = self._next_served()
        for slot in self.rotation:
            if slot.state is not SlotState.IDLE:
                continue  # a frame waits or runs, or it already has a turn
            if slot.last_started >= next_served:
                # Its frame would wait behind one already in line, as stale as a frame
                # sent unasked: it is invited when its place comes next (a later take).
                continue
            if slot.next_due > now:
                soonest = min(soonest, slot.next_due)
                continue
            break
        else:
            if soonest < float("inf") and not self.stopped:
                self.later(soonest - now)
            return
        # Only the invited session goes to the back. One passed over keeps its place: a
        # session that paces itself at its share of the worker, about one rotation, could
        # otherwise be busy each time its place came and never hear a turn.
        self.rotation.remove(slot)
        self.rotation.append(slot)
        slot.state = SlotState.INVITED
        self.invited, self._invited_at = slot, now
        slot.sink.turn()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
