"""A video's place in the engine: a session like a live camera's, that offers its next frame
only when the previous one has come back.

So it takes one round-robin turn per cycle of its lane, like any live session, and never
more: a long video cannot starve the live sessions beside it, and no frame is dropped.
"""

from __future__ import annotations

import asyncio

from webapp.engine.jobs import Frame
from webapp.engine.scheduler import Scheduler
from webapp.engine.slot import Slot
from webapp.engine.wire import FrameResult
from webapp.errors import DeadlineError, HolotrackError
from webapp.protocol import Track

# The rate the slot is opened with only spaces its turn invitations, which a video never
# waits for (it sends each frame as the last returns); a low rate keeps it from being
# invited, and so from holding the lane's one outstanding invitation, while it writes.
INVITATION_FPS = 0.5


class VideoRun:
    """The engine's sink for one video: one frame out, its result back, then the next."""

    def __init__(self, scheduler: Scheduler, frame_timeout: float) -> None:
        self.scheduler = scheduler
        self.frame_timeout = frame_timeout
        self.slot: Slot | None = None
        self._waiting: asyncio.Future[FrameResult] | None = None
        self._lost: HolotrackError | None = None

    def open(self, track: Track = Track.HOLISTIC, blendshapes: bool = False) -> Slot:
        """Admits the video as a session (CapacityError when the server is full)."""
        self.slot = self.scheduler.open_session(track, self, INVITATION_FPS, blendshapes)
        return self.slot

    async def process(self, frame: Frame) -> FrameResult:
        """The worker's result for `frame`; raises the error it failed with."""
        assert self.slot is not None
        if self._lost is not None:
            raise self._lost
        waiting: asyncio.Future[FrameResult] = asyncio.get_running_loop().create_future()
        self._waiting = waiting
        self.scheduler.offer(self.slot, frame)
        try:
            async with asyncio.timeout(self.frame_timeout):
                return await waiting
        except TimeoutError:
            raise DeadlineError(
                f"frame {frame.seq} got no result within {self.frame_timeout:g} s; "
                "the server is overloaded"
            ) from None
        finally:
            self._waiting = None

    def close(self) -> None:
        """Frees the slot; closing it again does nothing."""
        if self.slot is not None:
            self.scheduler.close_session(self.slot)

    # -- the engine's sink -------------------------------------------------------------
    def frame_done(self, frame: Frame, result: FrameResult) -> None:
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_result(result)

    def frame_failed(self, frame: Frame, error: HolotrackError) -> None:
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_exception(error)

    def lost(self, error: HolotrackError) -> None:
        self._lost = error
        self.frame_failed(Frame(-1, 0.0, b""), error)

    def turn(self) -> None:
        """A video never waits for an invitation: its next frame is offered as the last
        one's result arrives."""
