"""A video's place in the engine: a session like a live camera's, that offers its next frame
only when the previous one has come back.

So it takes one round-robin turn per cycle of its lane, like any live session, and never
more: a long video cannot starve the live sessions beside it, and no frame is dropped.
"""

from __future__ import annotations

import asyncio
from asyncio import FIRST_COMPLETED
from typing import Any

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
# The first frame also waits for the session's graph, and graphs are built one at a time
# per worker: a burst of sessions keeps the last ones' waiting for seconds (23 opened at
# once on two busy cores: up to 29 s, README). That wait is not the frame's; it has an
# allowance of its own, this many --request-timeout (60 s by default), so a stuck worker
# still ends the video. The frame's own time starts when the engine says the graph is
# built (graph_built), never before.
GRAPH_WAIT_FACTOR = 6.0


class VideoRun:
    """The engine's sink for one video: one frame out, its result back, then the next."""

    def __init__(self, scheduler: Scheduler, frame_timeout: float) -> None:
        self.scheduler = scheduler
        self.frame_timeout = frame_timeout
        self.graph_timeout = GRAPH_WAIT_FACTOR * frame_timeout
        self.slot: Slot | None = None
        self._waiting: asyncio.Future[FrameResult] | None = None
        self._built: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._lost: HolotrackError | None = None

    def open(self, track: Track = Track.HOLISTIC, blendshapes: bool = False) -> Slot:
        """Admits the video as a session (CapacityError when the server is full)."""
        # Not held to that rate: a video takes one round-robin turn per round, as live
        # sessions do (bench.video_fairness), sending each frame as the last returns.
        self.slot = self.scheduler.open_session(
            track, self, INVITATION_FPS, blendshapes, held_to_rate=False
        )
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
            await self._graph_built(waiting)
            async with asyncio.timeout(self.frame_timeout):
                return await waiting
        except TimeoutError:
            raise DeadlineError(
                f"frame {frame.seq} got no result within {self.frame_timeout:g} s; "
                "the server is overloaded"
            ) from None
        finally:
            self._waiting = None

    @property
    def built(self) -> bool:
        """The engine has said the video's graph is built."""
        return self._built.done()

    async def _graph_built(self, waiting: asyncio.Future[FrameResult]) -> None:
        """Returns once the slot's graph is built (or its frame failed, as when the session
        is lost), within the graph's allowance."""
        if self._built.done():
            return
        either: list[asyncio.Future[Any]] = [self._built, waiting]
        done, _ = await asyncio.wait(
            either, timeout=self.graph_timeout, return_when=FIRST_COMPLETED
        )
        if not done:
            raise DeadlineError(
                f"the video's tracking graph was not built within {self.graph_timeout:g} s; "
                "the server is overloaded"
            )

    def close(self) -> None:
        """Frees the slot; closing it again does nothing."""
        if self.slot is not None:
            self.scheduler.close_session(self.slot)

    # -- the engine's sink -------------------------------------------------------------
    def graph_built(self) -> None:
        if not self._built.done():
            self._built.set_result(None)

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
