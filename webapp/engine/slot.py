"""A live session's place in the engine: its worker, its state and its one waiting frame."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Protocol

from webapp.engine.allowance import Allowance
from webapp.engine.jobs import Frame
from webapp.engine.wire import FrameResult
from webapp.errors import HolotrackError
from webapp.protocol import Track

# A frame that also runs the blendshapes model costs its track's time and a few percent more
# (2.4-2.8% of a holistic frame, bench.avatar_quality), so it is timed under a kind of its own.
WITH_BLENDSHAPES = "+blendshapes"


def service_kind(track: Track, blendshapes: bool) -> str:
    """The kind a session's frames are timed under (pacing.ServiceTimes)."""
    return f"{track}{WITH_BLENDSHAPES}" if blendshapes else str(track)


class SessionSink(Protocol):
    """What the engine tells a session; each call returns at once."""

    # Its graph is built (the worker answered its OpenGraph): its frames run from now on.
    def graph_built(self) -> None: ...
    def frame_done(self, frame: Frame, result: FrameResult) -> None: ...
    def frame_failed(self, frame: Frame, error: HolotrackError) -> None: ...
    def lost(self, error: HolotrackError) -> None: ...
    def turn(self) -> None: ...


class SlotState(enum.Enum):
    PREPARING = "preparing"  # its graph is being built in the worker
    IDLE = "idle"  # ready, nothing to run and no turn outstanding
    INVITED = "invited"  # sent a turn; its frame has not arrived yet
    # Its waiting frame came sooner than the rate it asked for allows, while others share
    # its worker: it joins the ready line when the allowance refills (allowance.py).
    HELD = "held"
    QUEUED = "queued"  # its waiting frame is in the lane's ready line
    RUNNING = "running"  # a frame is in the worker; a newer one may wait in `pending`
    CLOSED = "closed"


@dataclass(eq=False)
class Slot:
    id: str
    track: Track
    lane: int  # the index of the lane, and so of the worker, holding its graph
    sink: SessionSink
    interval: float  # seconds between frames at the rate the session asked for
    # The one-slot mailbox: a newer frame replaces the waiting one, never queues behind it.
    pending: Frame | None = None
    state: SlotState = SlotState.PREPARING
    # When the session may next be invited: a fixed schedule at the rate it asked for,
    # so a frame served late is followed by one invited sooner, not by a later schedule.
    next_due: float = 0.0
    granted: float = 0.0  # the rate it was last told to send at (ready, stats)
    blendshapes: bool = False  # its frames' results carry ARKit's face blendshapes
    # None: never held to the rate asked (a video: one round-robin turn per round).
    allowance: Allowance | None = None
    hold: asyncio.TimerHandle | None = None  # ends a HELD spell
    # When it last left a HELD spell: the wait the grant steering reads starts there, as a
    # frame held back is the client's doing, not a full worker's.
    released: float = 0.0
    # When its last frame started: the ready line serves the session served least
    # recently first, so one whose frame is always waiting cannot take every other turn.
    last_started: float = 0.0

    @property
    def kind(self) -> str:
        return service_kind(self.track, self.blendshapes)

    @property
    def closed(self) -> bool:
        return self.state is SlotState.CLOSED

    @property
    def holds_frame(self) -> bool:
        """A frame of it waits for its graph or its turn, or runs: its client waits on us."""
        return self.pending is not None or self.state is SlotState.RUNNING
