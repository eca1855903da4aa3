"""Who runs next: a bounded pool of worker processes, fair turns, and admission control.

Still images wait in one bounded line that any worker serves. A live session is pinned
to the worker that holds its graph and keeps at most one waiting frame (the newest);
each worker serves its ready sessions round-robin and alternates with the still-image
line, so no sender can starve another and nothing queues without bound.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from webapp.config import Config
from webapp.errors import CapacityError, DeadlineError, HolotrackError, WorkerCrashedError
from webapp.protocol import Track
from webapp.workers import WorkerProcess

log = logging.getLogger(__name__)
# First guesses of the wall time one frame takes, corrected by measurement as frames run.
INITIAL_SERVICE_MS = {Track.HOLISTIC: 45.0, Track.POSE: 15.0}
EWMA_WEIGHT = 0.1
GRANT_HEADROOM = 0.9


@dataclass
class Frame:
    seq: int
    capture_ms: float
    data: bytes
    received: float = field(default_factory=time.perf_counter)
    started: float = 0.0


class SessionSink(Protocol):
    def frame_done(self, frame: Frame, result: dict[str, Any]) -> None: ...
    def frame_failed(self, frame: Frame, error: HolotrackError) -> None: ...
    def lost(self, error: HolotrackError) -> None: ...


@dataclass(eq=False)
class Slot:
    """One live session's place: its worker, its one waiting frame, whether one is running."""

    id: str
    track: Track
    worker: int
    sink: SessionSink
    pending: Frame | None = None
    busy: bool = False
    closed: bool = False


@dataclass(eq=False)
class _StillJob:
    data: bytes
    future: asyncio.Future[dict[str, Any]]


class Scheduler:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.workers: list[WorkerProcess] = []
        self.slots: dict[str, Slot] = {}
        self.service_ms = dict(INITIAL_SERVICE_MS)
        self._still_line: collections.deque[_StillJob] = collections.deque()
        self._ready: list[collections.deque[Slot]] = []
        self._idle: list[bool] = []
        self._still_turn: list[bool] = []
        self._stopping = False
        # Set on shutdown: running sessions finish, new ones are refused.
        self.draining = False
        self._busy_since: list[float | None] = []
        self.busy_seconds: list[float] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ids = itertools.count(1)

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        count = self.config.workers
        self._ready = [collections.deque() for _ in range(count)]
        self._idle = [False] * count
        self._still_turn = [True] * count
        self._busy_since = [None] * count
        self.busy_seconds = [0.0] * count
        self.workers = [
            WorkerProcess(i, self.config.verbose, self._worker_exited) for i in range(count)
        ]
        await asyncio.gather(*(w.start() for w in self.workers))
        for i in range(count):
            self._idle[i] = True

    async def stop(self) -> None:
        self._stopping = True
        await asyncio.gather(*(w.stop() for w in self.workers), return_exceptions=True)
        for job in self._still_line:
            if not job.future.done():
                job.future.set_exception(CapacityError("the server is shutting down"))
        self._still_line.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- still images ----------------------------------------------------------------------
    async def predict(self, data: bytes) -> dict[str, Any]:
        if self._stopping:
            raise CapacityError("the server is shutting down")
        if not any(w.alive for w in self.workers):
            raise CapacityError("no inference worker is running")
        if len(self._still_line) >= self.config.waiting_limit:
            raise CapacityError(
                f"all {len(self.workers)} workers are busy and "
                f"{len(self._still_line)} requests are already waiting"
            )
        job = _StillJob(data, asyncio.get_running_loop().create_future())
        self._still_line.append(job)
        self._kick_all()
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), self.config.request_timeout)
        except TimeoutError:
            with contextlib.suppress(ValueError):
                self._still_line.remove(job)
            raise DeadlineError(
                f"no answer within {self.config.request_timeout:g} s; the server is overloaded"
            ) from None

    # -- live sessions ---------------------------------------------------------------------
    def open_session(self, track: Track, sink: SessionSink) -> Slot:
        if self._stopping or self.draining:
            raise CapacityError("the server is shutting down")
        if len(self.slots) >= self.config.max_sessions:
            raise CapacityError(
                f"server full: {len(self.slots)} of {self.config.max_sessions} sessions in use"
            )
        alive = [w.index for w in self.workers if w.alive]
        if not alive:
            raise CapacityError("no inference worker is running")
        worker = min(alive, key=self.load_ms)
        slot = Slot(f"s{next(self._ids)}", track, worker, sink)
        self.slots[slot.id] = slot
        return slot

    def offer(self, slot: Slot, frame: Frame) -> Frame | None:
        """Makes `frame` the slot's waiting frame; returns the one it replaced, if any."""
        if slot.closed:
            return frame
        displaced, slot.pending = slot.pending, frame
        if displaced is None and not slot.busy:
            self._ready[slot.worker].append(slot)
            self._kick(slot.worker)
        return displaced

    def close_session(self, slot: Slot) -> Frame | None:
        """Frees the slot and its graph; returns a frame that was still waiting, if any."""
        if slot.closed:
            return None
        slot.closed = True
        self.slots.pop(slot.id, None)
        with contextlib.suppress(ValueError):
            self._ready[slot.worker].remove(slot)
        waiting, slot.pending = slot.pending, None
        worker = self.workers[slot.worker]
        if worker.alive:
            self._spawn(self._end_graph(worker, slot.id))
        return waiting

    async def graph_counts(self) -> list[dict[str, int]]:
        """Graphs and sessions each live worker holds, after every earlier request to it."""
        live = [w for w in self.workers if w.alive]
        return list(await asyncio.gather(*(w.call("counts") for w in live)))

    def load_ms(self, worker: int) -> float:
        """Wall time of one round-robin turn over the sessions pinned to `worker`."""
        return sum(self.service_ms[s.track] for s in self.slots.values() if s.worker == worker)

    def granted_fps(self, slot: Slot, wanted: float) -> float:
        round_ms = max(self.load_ms(slot.worker), self.service_ms[slot.track])
        share = GRANT_HEADROOM * 1000.0 / round_ms
        return round(max(0.5, min(wanted, self.config.max_fps, share)), 1)

    def has_room(self) -> bool:
        return (
            not (self._stopping or self.draining)
            and len(self.slots) < self.config.max_sessions
            and any(w.alive for w in self.workers)
        )

    def busy_ratio(self) -> float:
        now = time.perf_counter()
        total = sum(self.busy_seconds)
        total += sum(now - t for t in self._busy_since if t is not None)
        return total

    # -- dispatch --------------------------------------------------------------------------
    def _kick_all(self) -> None:
        for i in range(len(self.workers)):
            self._kick(i)

    def _kick(self, index: int) -> None:
        if not self._idle[index] or not self.workers[index].alive:
            return
        ready = self._ready[index]
        take_still = bool(self._still_line) and (self._still_turn[index] or not ready)
        if take_still:
            self._still_turn[index] = False
            self._start(index, self._run_still(index, self._still_line.popleft()))
        elif ready:
            self._still_turn[index] = True
            slot = ready.popleft()
            frame, slot.pending = slot.pending, None
            assert frame is not None
            frame.started = time.perf_counter()
            slot.busy = True
            self._start(index, self._run_frame(index, slot, frame))

    def _start(self, index: int, work: Any) -> None:
        self._idle[index] = False
        self._busy_since[index] = time.perf_counter()
        self._spawn(work)

    def _finish(self, index: int) -> None:
        started = self._busy_since[index]
        if started is not None:
            self.busy_seconds[index] += time.perf_counter() - started
        self._busy_since[index] = None
        self._idle[index] = True
        if not self._stopping:
            self._kick(index)

    async def _run_still(self, index: int, job: _StillJob) -> None:
        try:
            result = await self.workers[index].call("predict", job.data, self.config.max_pixels)
        except HolotrackError as exc:
            if not job.future.done():
                job.future.set_exception(exc)
        else:
            if not job.future.done():
                job.future.set_result(result)
        finally:
            self._finish(index)

    async def _run_frame(self, index: int, slot: Slot, frame: Frame) -> None:
        started = time.perf_counter()
        try:
            result = await self.workers[index].call(
                "frame",
                slot.id,
                slot.track.value,
                frame.data,
                frame.capture_ms,
                self.config.max_pixels,
            )
        except WorkerCrashedError:
            slot.busy = False
            return  # _worker_exited ends every session on this worker, this one included
        except HolotrackError as exc:
            slot.busy = False
            if not slot.closed:
                slot.sink.frame_failed(frame, exc)
        else:
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            old = self.service_ms[slot.track]
            self.service_ms[slot.track] = old + EWMA_WEIGHT * (elapsed_ms - old)
            slot.busy = False
            if not slot.closed:
                slot.sink.frame_done(frame, result)
        finally:
            if slot.pending is not None and not slot.closed and slot not in self._ready[index]:
                self._ready[index].append(slot)
            self._finish(index)

    async def _end_graph(self, worker: WorkerProcess, session: str) -> None:
        with contextlib.suppress(HolotrackError):
            counts = await worker.call("end", session)
            worker.graphs = counts["graphs"]

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _worker_exited(self, worker: WorkerProcess) -> None:
        index = worker.index
        self._idle[index] = False
        lost = [s for s in self.slots.values() if s.worker == index]
        self._ready[index].clear()
        error = WorkerCrashedError(
            f"the inference worker serving this session stopped (pid {worker.pid}); "
            "reconnect to start a new session"
        )
        for slot in lost:
            slot.closed = True
            self.slots.pop(slot.id, None)
            slot.sink.lost(error)
        if not self._stopping:
            self._spawn(self._replace(index))

    async def _replace(self, index: int) -> None:
        replacement = WorkerProcess(index, self.config.verbose, self._worker_exited)
        self.workers[index] = replacement
        try:
            await replacement.start()
        except Exception:
            log.exception("could not restart worker %d", index)
            return
        self._finish(index)
