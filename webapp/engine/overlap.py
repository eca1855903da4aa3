"""Two frames of one session in its worker at once, when the lane serves that session alone.

A video-mode graph pipelines across its calculators (pose of frame N+1 while face and hands
of frame N run), and the worker decodes the next frame while the graph works, so a lone
session's next frame goes in beside the running one (`--overlap-frames`, issue 16). Frames
still enter its graph in order, one graph per session; results are delivered in the order
the frames were sent. With a second session or a still waiting the lane runs one job at a
time, as the round-robin and the alternation with stills expect.
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from typing import Any

from webapp.engine.calls import LaneJob
from webapp.engine.jobs import StillJob
from webapp.engine.pacing import INVITE_PATIENCE, ServiceTimes
from webapp.engine.sessions import LaneSessions
from webapp.engine.slot import Slot


@dataclass(eq=False)
class Flight:
    """A job the lane handed to its worker (every job, not only overlapped frames); `task`
    ends with its outcome (a result or an error)."""

    job: LaneJob
    kind: str  # what ServiceTimes measures it as: slot.service_kind, or pacing.STILL
    task: asyncio.Future[Any]
    # When the worker began on it: when sent, or for one sent beside another, when that
    # one came out.
    began: float = field(default_factory=time.perf_counter)

    @property
    def slot(self) -> Slot | None:
        return None if isinstance(self.job, StillJob) else self.job[0]


class Beside:
    """A lane's second place in its worker and the turns that fill it."""

    def __init__(
        self,
        enabled: bool,
        flights: collections.deque[Flight],
        sessions: LaneSessions,
        stills: collections.deque[StillJob],
        times: ServiceTimes,
    ) -> None:
        self.enabled = enabled
        self._times = times
        self._flights = flights
        self._sessions = sessions
        self._stills = stills
        self._timer: asyncio.TimerHandle | None = None
        self._turned: tuple[Slot, float] | None = None

    def _lone(self) -> Slot | None:
        """The session one more frame may join: the lane's only one, with one frame in."""
        if not self.enabled or len(self._flights) != 1 or self._stills:
            return None
        slot = self._flights[0].slot
        if slot is None or slot.closed or len(self._sessions) != 1:
            return None
        return slot

    def joining(self) -> Slot | None:
        """The session whose waiting frame may go in now, beside its running one."""
        slot = self._lone()
        return slot if slot is not None and slot.pending is not None else None

    def invite(self) -> None:
        """Asks the lone session for the frame that would join its running one: when it is
        due, and no sooner than the running one should be nearly through, as Invitations
        times turns, so the new frame overlaps that frame's last stages instead of waiting
        inside the graph (which would add its wait to the latency, not to the rate)."""
        self.cancel()
        slot = self._lone()
        if slot is None or slot.pending is not None:
            return
        now = time.perf_counter()
        if self._turned is not None and self._turned[0] is slot:
            newest = self._flights[-1].job
            arrived = newest[1].received if not isinstance(newest, StillJob) else now
            if arrived < self._turned[1] and now - self._turned[1] < INVITE_PATIENCE:
                return  # the frame it was asked for is on its way
        at = max(slot.next_due, self._flights[0].began + self._times.lead_time(slot.kind))
        if at > now:
            self._timer = asyncio.get_running_loop().call_later(at - now, self.invite)
            return
        self._turned = (slot, now)
        slot.sink.turn()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
