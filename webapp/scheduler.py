"""Who runs next: a bounded pool of worker processes, fair turns, and admission control.

Still images wait in one bounded line that any worker serves. A live session is pinned
to the worker that holds its graph and keeps at most one waiting frame (the newest).
Each worker serves its ready sessions round-robin and alternates with the still-image
line, so no sender can starve another and nothing queues without bound.

To keep latency low when sessions outnumber what the model can do, the scheduler also
invites frames: while a worker runs one frame it sends a `turn` to the next session in
its rotation that is due one, so that session's freshest frame arrives just as the
worker frees up, instead of a stale frame waiting a whole round.
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

STILL = "still"

log = logging.getLogger(__name__)
# First guesses of the wall time one frame takes, corrected by measurement as frames run.
INITIAL_SERVICE_MS = {Track.HOLISTIC: 45.0, Track.POSE: 15.0, STILL: 75.0}
EWMA_WEIGHT = 0.1
GRANT_HEADROOM = 0.9
# An invited frame that has not arrived by then is given up on, and the next one invited.
INVITE_PATIENCE = 0.5
# How long before a worker frees up the next frame is invited: the client's time to grab,
# encode and send it.
INVITE_LEAD_MS = 20.0


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
    def turn(self) -> None: ...


@dataclass(eq=False)
class Slot:
    """One live session's place: its worker, its one waiting frame, whether one is running."""

    id: str
    track: Track
    worker: int
    sink: SessionSink
    interval: float  # seconds between frames at the rate the session asked for
    pending: Frame | None = None
    busy: bool = False
    closed: bool = False
    invited: bool = False
    # When the session may next be invited: a fixed schedule at the rate it asked for,
    # so a frame served late is followed by one invited sooner, not by a later schedule.
    next_due: float = 0.0
    ready: bool = False  # its graph is built and primed in the worker


def _next_due(due: float, arrived: float, interval: float) -> float:
    """One interval on from the previous due time, so lateness is caught up, but never
    more than one interval behind (no burst after a stall) nor ahead of the arrival."""
    base = max(due, arrived - interval) if due else arrived
    return min(base, arrived) + interval


@dataclass(eq=False)
class _StillJob:
    data: bytes
    future: asyncio.Future[dict[str, Any]]


@dataclass(eq=False)
class Lane:
    """One worker's share of the scheduler: whom it serves and whether it is free."""

    worker: WorkerProcess
    ready: collections.deque[Slot] = field(default_factory=collections.deque)
    rotation: collections.deque[Slot] = field(default_factory=collections.deque)
    idle: bool = False
    still_next: bool = True
    busy_since: float | None = None
    busy_seconds: float = 0.0
    invited: Slot | None = None
    invited_at: float = 0.0
    retry: asyncio.TimerHandle | None = None
    # Set while `worker` is up; a dead worker's lane clears it until its replacement is.
    serving: asyncio.Event = field(default_factory=asyncio.Event)

    def busy_total(self, now: float) -> float:
        return self.busy_seconds + (now - self.busy_since if self.busy_since is not None else 0.0)


class Scheduler:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.lanes: list[Lane] = []
        self.slots: dict[str, Slot] = {}
        self.service_ms: dict[str, float] = dict(INITIAL_SERVICE_MS)
        self._still_line: collections.deque[_StillJob] = collections.deque()
        self._stopping = False
        # Set on shutdown: running sessions finish, new ones are refused.
        self.draining = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ids = itertools.count(1)

    @property
    def workers(self) -> list[WorkerProcess]:
        return [lane.worker for lane in self.lanes]

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self.lanes = [
            Lane(WorkerProcess(i, self.config.verbose, self._worker_exited))
            for i in range(self.config.workers)
        ]
        await asyncio.gather(*(lane.worker.start() for lane in self.lanes))
        for lane in self.lanes:
            lane.idle = True
            lane.serving.set()

    async def stop(self) -> None:
        self._stopping = True
        for lane in self.lanes:
            if lane.retry is not None:
                lane.retry.cancel()
        await asyncio.gather(*(w.stop() for w in self.workers), return_exceptions=True)
        for job in self._still_line:
            if not job.future.done():
                job.future.set_exception(CapacityError("the server is shutting down"))
        self._still_line.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- still images ----------------------------------------------------------------------
    def check_still_room(self) -> None:
        """Refuses a still image at once when it could not be served within the line's budget."""
        if self._stopping:
            raise CapacityError("the server is shutting down")
        alive = sum(1 for w in self.workers if w.alive)
        if not alive:
            raise CapacityError("no inference worker is running")
        waiting = len(self._still_line)
        expected_s = (waiting + 1) * self.service_ms[STILL] / 1000.0 / alive
        if waiting >= self.config.max_waiting or expected_s > self.config.max_queue_seconds:
            raise CapacityError(
                f"all {len(self.lanes)} workers are busy and {waiting} requests are already "
                f"waiting (about {expected_s:.1f} s of work)"
            )

    async def predict(self, data: bytes) -> dict[str, Any]:
        self.check_still_room()
        job = _StillJob(data, asyncio.get_running_loop().create_future())
        self._still_line.append(job)
        for index in range(len(self.lanes)):
            self._kick(index)
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), self.config.request_timeout)
        except TimeoutError:
            with contextlib.suppress(ValueError):
                self._still_line.remove(job)
            raise DeadlineError(
                f"no answer within {self.config.request_timeout:g} s; the server is overloaded"
            ) from None

    # -- live sessions ---------------------------------------------------------------------
    def open_session(self, track: Track, sink: SessionSink, wanted_fps: float) -> Slot:
        if self._stopping or self.draining:
            raise CapacityError("the server is shutting down")
        if len(self.slots) >= self.config.max_sessions:
            raise CapacityError(
                f"server full: {len(self.slots)} of {self.config.max_sessions} sessions in use"
            )
        alive = [i for i, lane in enumerate(self.lanes) if lane.worker.alive]
        if not alive:
            raise CapacityError("no inference worker is running")
        index = min(alive, key=self.load_ms)
        wanted = min(wanted_fps, self.config.max_fps)
        slot = Slot(f"s{next(self._ids)}", track, index, sink, interval=1.0 / wanted)
        self.slots[slot.id] = slot
        self._spawn(self._open_graph(self.lanes[index], slot))
        return slot

    async def _open_graph(self, lane: Lane, slot: Slot) -> None:
        """The worker builds the session's graph beside the frames it is running."""
        try:
            await lane.worker.call("open", slot.id, slot.track.value)
        except WorkerCrashedError:
            return  # _worker_exited ends every session on this worker, this one included
        except HolotrackError as exc:
            if not slot.closed:
                self.close_session(slot)
                slot.sink.lost(exc)
            return
        if slot.closed:
            # Closed while its graph was being built: only now can the worker free it.
            if lane.worker.alive:
                self._spawn(self._end_graph(lane.worker, slot.id))
            return
        slot.ready = True
        lane.rotation.append(slot)
        if slot.pending is not None:
            # Answered even though it waited for the graph: a client may be waiting on it.
            lane.ready.append(slot)
            self._kick(slot.worker)
        else:
            self._invite(slot.worker)

    def offer(self, slot: Slot, frame: Frame) -> Frame | None:
        """Makes `frame` the slot's waiting frame; returns the one it replaced, if any."""
        if slot.closed:
            return frame
        lane = self.lanes[slot.worker]
        slot.next_due = _next_due(slot.next_due, frame.received, slot.interval)
        slot.invited = False
        if lane.invited is slot:
            lane.invited = None
        displaced, slot.pending = slot.pending, frame
        if displaced is None and not slot.busy and slot.ready:
            lane.ready.append(slot)
            self._kick(slot.worker)
        return displaced

    def close_session(self, slot: Slot) -> Frame | None:
        """Frees the slot and its graph; returns a frame that was still waiting, if any."""
        if slot.closed:
            return None
        slot.closed = True
        self.slots.pop(slot.id, None)
        lane = self.lanes[slot.worker]
        for line in (lane.ready, lane.rotation):
            with contextlib.suppress(ValueError):
                line.remove(slot)
        if lane.invited is slot:
            lane.invited = None
            self._invite(slot.worker)
        waiting, slot.pending = slot.pending, None
        if lane.worker.alive and slot.ready:
            self._spawn(self._end_graph(lane.worker, slot.id))
        return waiting

    async def serving_worker(self, index: int) -> WorkerProcess:
        """Worker `index` once it is up: at once, or when a dead one's replacement is."""
        lane = self.lanes[index]
        await lane.serving.wait()
        return lane.worker

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

    def busy_seconds(self) -> float:
        now = time.perf_counter()
        return sum(lane.busy_total(now) for lane in self.lanes)

    # -- dispatch --------------------------------------------------------------------------
    def _kick(self, index: int) -> None:
        lane = self.lanes[index]
        if not lane.idle or not lane.worker.alive or self._stopping:
            return
        take_still = bool(self._still_line) and (lane.still_next or not lane.ready)
        if take_still:
            lane.still_next = False
            self._start(lane, self._run_still(lane, self._still_line.popleft()))
        elif lane.ready:
            lane.still_next = True
            slot = lane.ready.popleft()
            frame, slot.pending = slot.pending, None
            assert frame is not None
            frame.started = time.perf_counter()
            slot.busy = True
            self._start(lane, self._run_frame(lane, slot, frame))
            if not lane.ready:
                # Invite the next frame to arrive just before this one is done.
                delay = max(0.0, self.service_ms[slot.track] - INVITE_LEAD_MS) / 1000.0
                self._invite_later(index, delay)
            return
        if not lane.ready:
            self._invite(index)

    def _invite_later(self, index: int, delay: float) -> None:
        lane = self.lanes[index]
        if lane.retry is not None:
            lane.retry.cancel()
        lane.retry = asyncio.get_running_loop().call_later(delay, self._invite, index)

    def _invite(self, index: int) -> None:
        """Asks the next session in the rotation that is due a frame to send one now."""
        lane = self.lanes[index]
        if lane.retry is not None:
            lane.retry.cancel()
            lane.retry = None
        now = time.perf_counter()
        if lane.invited is not None and now - lane.invited_at < INVITE_PATIENCE:
            self._invite_later(index, lane.invited_at + INVITE_PATIENCE - now)
            return
        if lane.invited is not None:
            lane.invited.invited = False
            lane.invited = None
        soonest = float("inf")
        for _ in range(len(lane.rotation)):
            slot = lane.rotation[0]
            lane.rotation.rotate(-1)
            if slot.pending is not None or slot.busy or slot.invited:
                continue
            due = slot.next_due
            if due > now:
                soonest = min(soonest, due)
                continue
            slot.invited = True
            lane.invited, lane.invited_at = slot, now
            slot.sink.turn()
            return
        if soonest < float("inf") and not self._stopping:
            self._invite_later(index, soonest - now)

    def _start(self, lane: Lane, work: Any) -> None:
        lane.idle = False
        lane.busy_since = time.perf_counter()
        self._spawn(work)

    def _finish(self, lane: Lane) -> None:
        if lane.busy_since is not None:
            lane.busy_seconds += time.perf_counter() - lane.busy_since
        lane.busy_since = None
        lane.idle = True
        self._kick(lane.worker.index)

    async def _run_still(self, lane: Lane, job: _StillJob) -> None:
        started = time.perf_counter()
        try:
            result = await lane.worker.call("predict", job.data, self.config.max_pixels)
        except HolotrackError as exc:
            if not job.future.done():
                job.future.set_exception(exc)
        else:
            self._measure(STILL, started)
            if not job.future.done():
                job.future.set_result(result)
        finally:
            self._finish(lane)

    async def _run_frame(self, lane: Lane, slot: Slot, frame: Frame) -> None:
        started = time.perf_counter()
        try:
            result = await lane.worker.call(
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
            lane.worker.graphs = result["graphs"]
            self._measure(slot.track, started)
            slot.busy = False
            if not slot.closed:
                slot.sink.frame_done(frame, result)
        finally:
            if slot.pending is not None and not slot.closed and slot not in lane.ready:
                lane.ready.append(slot)
            self._finish(lane)

    def _measure(self, kind: str, started: float) -> None:
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        old = self.service_ms[kind]
        self.service_ms[kind] = old + EWMA_WEIGHT * (elapsed_ms - old)

    async def _end_graph(self, worker: WorkerProcess, session: str) -> None:
        with contextlib.suppress(HolotrackError):
            counts = await worker.call("end", session)
            worker.graphs = counts["graphs"]

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- worker faults ---------------------------------------------------------------------
    def _worker_exited(self, worker: WorkerProcess) -> None:
        lane = self.lanes[worker.index]
        if lane.worker is not worker:
            return
        lane.idle = False
        lane.serving.clear()
        lane.ready.clear()
        lane.invited = None
        lane.rotation.clear()
        lost = [slot for slot in self.slots.values() if slot.worker == worker.index]
        error = WorkerCrashedError(
            f"the inference worker serving this session stopped (pid {worker.pid}); "
            "reconnect to start a new session"
        )
        for slot in lost:
            slot.closed = True
            self.slots.pop(slot.id, None)
            slot.sink.lost(error)
        if not self._stopping:
            self._spawn(self._replace(lane))

    async def _replace(self, lane: Lane) -> None:
        index = lane.worker.index
        lane.worker = WorkerProcess(index, self.config.verbose, self._worker_exited)
        try:
            await lane.worker.start()
        except Exception:
            log.exception("could not restart worker %d", index)
            return
        lane.busy_since = None
        lane.idle = True
        lane.serving.set()
        self._kick(index)
