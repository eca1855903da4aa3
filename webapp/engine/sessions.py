"""The live sessions pinned to one lane: their one-slot mailboxes, the line of those with a
frame waiting (round-robin: a session served goes to the back), and their turns."""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Callable

from webapp.engine.grant import GrantSteer, fair_share
from webapp.engine.jobs import Frame
from webapp.engine.pacing import Invitations, ServiceTimes, next_due
from webapp.engine.slot import Slot, SlotState
from webapp.errors import HolotrackError


class LaneSessions:
    def __init__(self, times: ServiceTimes, wake: Callable[[], None]) -> None:
        self.slots: dict[str, Slot] = {}  # every open session here, graph built or not
        self.invitations = Invitations(self._next_served)
        self.steer = GrantSteer()
        self._ready: collections.deque[Slot] = collections.deque()
        self._times = times
        self._wake = wake  # tells the lane a frame is waiting

    def __len__(self) -> int:
        return len(self.slots)

    @property
    def waiting(self) -> bool:
        return bool(self._ready)

    def _next_served(self) -> float:
        """When the session whose waiting frame runs next last started one."""
        return min((slot.last_started for slot in self._ready), default=math.inf)

    def load_ms(self) -> float:
        """Wall time of one round-robin turn over these sessions."""
        return sum(self._times[slot.kind] for slot in self.slots.values())

    def share(
        self, newcomer: tuple[float, float] | None = None, factor: float | None = None
    ) -> float:
        """The fair rate of these sessions (and of `newcomer`, cost and rate, if given) on
        the lane's steered share of its worker, or on `factor` of it."""
        demands = [(self._times[slot.kind], 1.0 / slot.interval) for slot in self.slots.values()]
        if newcomer is not None:
            demands.append(newcomer)
        return fair_share(demands, 1000.0 * (self.steer.factor if factor is None else factor))

    def add(self, slot: Slot) -> None:
        self.slots[slot.id] = slot

    def graph_ready(self, slot: Slot) -> None:
        slot.sink.graph_built()
        self.invitations.add(slot)
        if slot.pending is not None:
            # Answered even though it waited for the graph: a client may be waiting on it.
            self._queue(slot)
        else:
            slot.state = SlotState.IDLE
            self.invitations.now()

    def offer(self, slot: Slot, frame: Frame) -> Frame | None:
        """Makes `frame` the slot's waiting frame; returns the one it replaced, if any."""
        if slot.closed:
            return frame
        slot.next_due = next_due(slot.next_due, frame.received, slot.interval)
        self.invitations.answered(slot)
        displaced, slot.pending = slot.pending, frame
        if displaced is not None:
            self.steer.meter.replaced(frame.received - displaced.received, slot.granted)
        if slot.state is SlotState.IDLE:
            self._line_up(slot)
        elif slot.state is SlotState.RUNNING:
            self._wake()  # it may join the running frame (overlap.py)
        return displaced

    def take(self) -> tuple[Slot, Frame]:
        """The next session in line and its newest frame, which is now running."""
        slot = min(self._ready, key=lambda waiting: waiting.last_started)
        self._ready.remove(slot)
        frame = self.take_more(slot)
        slot.last_started = frame.started
        self.steer.meter.took(frame.started - max(frame.received, slot.released))
        slot.state = SlotState.RUNNING
        # Invite the next frame to arrive just before this one is done, even past frames
        # already in line: a session whose frame always waits (a video, a client sending
        # at the rate it asked) would otherwise have every other turn, those that follow
        # turns sharing the rest.
        self.invitations.later(self._times.lead_time(slot.kind))
        return slot, frame

    def take_more(self, slot: Slot) -> Frame:
        """The slot's newest frame, which now runs: after take()'s turn in line, or beside
        its running one (overlap.py)."""
        frame, slot.pending = slot.pending, None
        assert frame is not None
        frame.started = time.perf_counter()
        if slot.allowance is not None:
            slot.allowance.spend(frame.started)
        return frame

    def settle(self, slot: Slot) -> None:
        """After its frame: back in line if a newer frame came meanwhile."""
        if slot.closed:
            return
        if slot.pending is not None:
            self._line_up(slot)
        else:
            slot.state = SlotState.IDLE

    def close(self, slot: Slot) -> Frame | None:
        """Frees the slot; returns the frame still waiting, if any."""
        slot.state = SlotState.CLOSED
        _unhold(slot)
        self.slots.pop(slot.id, None)
        if slot in self._ready:
            self._ready.remove(slot)
        self.invitations.remove(slot)
        waiting, slot.pending = slot.pending, None
        return waiting

    def lose_all(self, error: HolotrackError) -> None:
        """Their worker died with their graphs: every session ends."""
        self._ready.clear()
        self.invitations.clear()
        lost, self.slots = list(self.slots.values()), {}
        for slot in lost:
            slot.state = SlotState.CLOSED
            _unhold(slot)
            slot.sink.lost(error)

    def _line_up(self, slot: Slot) -> None:
        """Into the ready line with its frame, unless others share the worker and it sends
        faster than it asked (allowance.py): then held until it may start one."""
        allowance = slot.allowance if len(self.slots) > 1 else None
        wait = allowance.wait(time.perf_counter()) if allowance is not None else 0.0
        if wait <= 0.0:
            self._queue(slot)
            return
        slot.state = SlotState.HELD
        slot.hold = asyncio.get_running_loop().call_later(wait, self._release, slot)

    def _release(self, slot: Slot) -> None:
        slot.hold = None
        if slot.state is SlotState.HELD:
            slot.released = time.perf_counter()
            self._queue(slot)

    def _queue(self, slot: Slot) -> None:
        slot.state = SlotState.QUEUED
        self._ready.append(slot)
        self._wake()


def _unhold(slot: Slot) -> None:
    if slot.hold is not None:
        slot.hold.cancel()
        slot.hold = None
