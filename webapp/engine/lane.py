"""One worker's lane: its sessions, and the loop that feeds its worker one job at a time.

The loop is the path of every job, top to bottom: take the next one (the still-image line
and the live frames alternate; frames go round-robin over the sessions that have one
waiting), time the next turn invitation, run the job in the worker, deliver the result.
A dead worker ends the lane's sessions and is replaced in the same loop.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
import time

from webapp.config import Config
from webapp.engine.jobs import Frame, StillJob
from webapp.engine.pacing import STILL, Invitations, ServiceTimes, next_due
from webapp.engine.process import WorkerFactory, WorkerHandle
from webapp.engine.slot import Slot, SlotState
from webapp.engine.wire import EndGraph, OpenGraph, RunFrame, RunStill
from webapp.errors import HolotrackError, WorkerCrashedError

log = logging.getLogger(__name__)


class LaneState(enum.Enum):
    STARTING = "starting"
    IDLE = "idle"  # waiting for a job
    BUSY = "busy"  # a job is in the worker
    DOWN = "down"  # the worker died; a replacement is on its way
    STOPPED = "stopped"  # shutting down, or the replacement failed


class Lane:
    def __init__(
        self,
        index: int,
        config: Config,
        stills: collections.deque[StillJob],
        times: ServiceTimes,
        new_worker: WorkerFactory,
    ) -> None:
        self.index = index
        self.config = config
        self._new_worker = new_worker
        self.worker = new_worker(index, config.verbose, self._worker_exited)
        self.state = LaneState.STARTING
        self.slots: dict[str, Slot] = {}  # every open session pinned here, graph or not
        self.invitations = Invitations()
        self._stills = stills  # shared by every lane
        self._times = times
        self._ready: collections.deque[Slot] = collections.deque()
        self._still_next = True  # stills and frames alternate while both wait
        self._wake = asyncio.Event()
        self._serving = asyncio.Event()  # set while `worker` is up
        self._busy_seconds = 0.0
        self._busy_since: float | None = None

    # -- the loop ------------------------------------------------------------------------
    async def run(self) -> None:
        while self.state is not LaneState.STOPPED:
            if self.state is LaneState.DOWN:
                await self._replace_worker()
                continue
            job = await self._next_job()
            if job is not None:
                await self._serve(job)

    async def _next_job(self) -> StillJob | tuple[Slot, Frame] | None:
        """The next job, once there is one; None when the worker is no longer up."""
        while self.state is LaneState.IDLE:
            if self.worker.alive:
                job = self._take()
                if job is not None:
                    return job
                self.invitations.now()
            self._wake.clear()
            await self._wake.wait()
        return None

    def _take(self) -> StillJob | tuple[Slot, Frame] | None:
        if self._stills and (self._still_next or not self._ready):
            self._still_next = False
            if not self._ready:
                self.invitations.now()
            return self._stills.popleft()
        if not self._ready:
            return None
        self._still_next = True
        slot = self._ready.popleft()
        frame, slot.pending = slot.pending, None
        assert frame is not None
        frame.started = time.perf_counter()
        slot.state = SlotState.RUNNING
        if not self._ready:
            # Invite the next frame to arrive just before this one is done.
            self.invitations.later(self._times.lead_time(slot.track))
        return slot, frame

    async def _serve(self, job: StillJob | tuple[Slot, Frame]) -> None:
        self.state, self._busy_since = LaneState.BUSY, time.perf_counter()
        try:
            if isinstance(job, StillJob):
                await self._run_still(job)
            else:
                await self._run_frame(*job)
        except Exception:  # one job's bug must not stop the lane
            log.exception("lane %d: a job failed", self.index)
        finally:
            self._busy_seconds += time.perf_counter() - self._busy_since
            self._busy_since = None
            if self.state is LaneState.BUSY:
                self.state = LaneState.IDLE

    async def _run_still(self, job: StillJob) -> None:
        started = time.perf_counter()
        try:
            result = await self.worker.call(RunStill(job.data, self.config.max_pixels))
        except HolotrackError as exc:
            if not job.future.done():
                job.future.set_exception(exc)
            return
        self._times.measure(STILL, started)
        if not job.future.done():
            job.future.set_result(result)

    async def _run_frame(self, slot: Slot, frame: Frame) -> None:
        started = time.perf_counter()
        job = RunFrame(slot.id, slot.track, frame.data, frame.capture_ms, self.config.max_pixels)
        try:
            result = await self.worker.call(job)
        except WorkerCrashedError:
            self._settle(slot)
            return  # _worker_exited ended every session on this worker, this one included
        except HolotrackError as exc:
            self._settle(slot)
            if not slot.closed:
                slot.sink.frame_failed(frame, exc)
            return
        self.worker.graphs = result.graphs
        self._times.measure(slot.track, started)
        self._settle(slot)
        if not slot.closed:
            slot.sink.frame_done(frame, result)

    def _settle(self, slot: Slot) -> None:
        """After its frame: back in the ready line if a newer frame came meanwhile."""
        if slot.closed:
            return
        if slot.pending is not None:
            slot.state = SlotState.QUEUED
            self._ready.append(slot)
        else:
            slot.state = SlotState.IDLE

    # -- sessions ------------------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def add(self, slot: Slot) -> None:
        self.slots[slot.id] = slot

    async def open_graph(self, slot: Slot) -> None:
        """The worker builds the session's graph beside the frames it is running."""
        worker = self.worker
        try:
            await worker.call(OpenGraph(slot.id, slot.track))
        except WorkerCrashedError:
            return  # _worker_exited ends every session on this worker, this one included
        except HolotrackError as exc:
            if not slot.closed:
                self.close(slot)
                slot.sink.lost(exc)
            return
        if slot.closed:
            # Closed while its graph was being built: only now can the worker free it.
            if worker.alive:
                await self.end_graph(worker, slot.id)
            return
        self.invitations.add(slot)
        if slot.pending is not None:
            # Answered even though it waited for the graph: a client may be waiting on it.
            slot.state = SlotState.QUEUED
            self._ready.append(slot)
            self.wake()
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
        if slot.state is SlotState.IDLE:
            slot.state = SlotState.QUEUED
            self._ready.append(slot)
            self.wake()
        return displaced

    def close(self, slot: Slot) -> tuple[Frame | None, bool]:
        """Frees the slot: the frame still waiting, if any, and whether its graph is built."""
        built = slot.state is not SlotState.PREPARING
        slot.state = SlotState.CLOSED
        self.slots.pop(slot.id, None)
        if slot in self._ready:
            self._ready.remove(slot)
        self.invitations.remove(slot)
        waiting, slot.pending = slot.pending, None
        return waiting, built

    async def end_graph(self, worker: WorkerHandle, session: str) -> None:
        try:
            counts = await worker.call(EndGraph(session))
        except HolotrackError:
            return
        worker.graphs = counts.graphs

    # -- the worker ----------------------------------------------------------------------
    async def start(self) -> None:
        await self.worker.start()
        self.state = LaneState.IDLE
        self._serving.set()

    async def serving_worker(self) -> WorkerHandle:
        await self._serving.wait()
        return self.worker

    def busy_seconds(self, now: float) -> float:
        running = now - self._busy_since if self._busy_since is not None else 0.0
        return self._busy_seconds + running

    def load_ms(self) -> float:
        """Wall time of one round-robin turn over the sessions pinned here."""
        return sum(self._times[slot.track] for slot in self.slots.values())

    async def stop(self) -> None:
        self.state = LaneState.STOPPED
        self.invitations.stop()
        self.wake()
        await self.worker.stop()

    def _worker_exited(self, worker: WorkerHandle) -> None:
        if worker is not self.worker:
            return
        if self.state is not LaneState.STOPPED:
            self.state = LaneState.DOWN
        self._serving.clear()
        self._ready.clear()
        self.invitations.clear()
        error = WorkerCrashedError(
            f"the inference worker serving this session stopped (pid {worker.pid}); "
            "reconnect to start a new session"
        )
        lost, self.slots = list(self.slots.values()), {}
        for slot in lost:
            slot.state = SlotState.CLOSED
            slot.sink.lost(error)
        self.wake()

    async def _replace_worker(self) -> None:
        self.worker = self._new_worker(self.index, self.config.verbose, self._worker_exited)
        try:
            await self.worker.start()
        except Exception:
            log.exception("could not restart worker %d", self.index)
            self.state = LaneState.STOPPED
            return
        if self.state is LaneState.DOWN:
            self.state = LaneState.IDLE
        self._serving.set()
