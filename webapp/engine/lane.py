"""One worker's lane: the loop that feeds its worker one job at a time.

The loop is the path of every job: deliver what the worker finished (oldest first), then
take the next job (the still-image line and the live frames alternate while both wait;
frames go round-robin over the sessions that have one) and send it to the worker. An idle
lane takes a job in `wake()`, the moment it arrives, so the loop may find it already
taken. Turns are timed as a frame is taken (sessions.py). A dead worker ends the lane's
sessions and is replaced in the loop.
With `--overlap-frames`, a session alone on its lane may have a second frame in the worker
beside the running one (overlap.py); results are still delivered in the order sent.
What a job is on the wire, and a session's graph calls, are calls.py's.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
import time
from typing import Any

from webapp.config import Config
from webapp.engine import overlap
from webapp.engine.calls import LaneJob, deliver_still, wire_job
from webapp.engine.jobs import Frame, StillJob
from webapp.engine.pacing import ServiceTimes
from webapp.engine.process import ChildLogs, WorkerFactory, WorkerHandle, WorkerStartError
from webapp.engine.sessions import LaneSessions
from webapp.engine.slot import Slot
from webapp.engine.wire import FrameResult, Job
from webapp.errors import HolotrackError, WorkerCrashedError

log = logging.getLogger(__name__)
# A job unanswered for this many --request-timeouts has a hung worker (stopped,
# deadlocked), not a slow one: a frame takes well under a second even at load 10.
HUNG_AFTER_TIMEOUTS = 3.0
# Seconds before a failed replacement is tried again, the last repeated: a machine short of
# memory (the OOM killer took the worker) may take the replacement too as it loads.
RESTART_PAUSES = (1.0, 2.0, 5.0, 10.0, 30.0)


class LaneState(enum.Enum):
    STARTING = "starting"
    IDLE = "idle"  # waiting for a job
    BUSY = "busy"  # a job is in the worker
    DOWN = "down"  # the worker died; a replacement is on its way, tried until one starts
    STOPPED = "stopped"  # shutting down


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
        self.state = LaneState.STARTING
        self.sessions = LaneSessions(times, self.wake)
        self.worker = new_worker(index, ChildLogs.of(config), self._worker_exited)
        self._new_worker = new_worker
        self._stills = stills  # one line, shared by every lane
        self._times = times
        self._still_next = True  # stills and frames alternate while both wait
        self._claimed: LaneJob | None = None
        # Jobs in the worker, oldest first: one, or two frames of one session (overlap.py).
        self._flights: collections.deque[overlap.Flight] = collections.deque()
        self._beside = overlap.Beside(
            config.overlap_frames, self._flights, self.sessions, stills, times
        )
        self._wake = asyncio.Event()
        self._serving = asyncio.Event()  # set while `worker` is up
        self._busy_seconds = 0.0
        self._busy_since: float | None = None
        self._failed_starts = 0  # replacements in a row that did not start

    # -- the loop ------------------------------------------------------------------------
    async def run(self) -> None:
        while self.state is not LaneState.STOPPED or self._flights:
            if self._flights and self._flights[0].task.done():
                self._finish(self._flights.popleft())
                if self._flights and self._flights[0].task.done():
                    # A session's outbox keeps only its newest unsent result: its writer
                    # takes this one before the next is delivered.
                    await asyncio.sleep(0)
                continue
            if self.state in (LaneState.DOWN, LaneState.STOPPED):
                # A gone worker's calls fail at once; they are answered before anything else.
                if self._flights:
                    await asyncio.wait([f.task for f in self._flights])
                elif self.state is LaneState.DOWN:
                    await self._replace_worker()
                continue
            self._claim()
            if self._claimed is not None:
                job, self._claimed = self._claimed, None
                if isinstance(job, StillJob) or not job[0].closed:
                    self._send(job)
                else:
                    self._unclaim()
                continue
            self._wake.clear()
            await self._wake.wait()

    def wake(self) -> None:
        """Work arrived. An idle lane claims it at once, so the still line's length and a
        frame's start time never wait for the loop's next turn."""
        self._claim()
        self._wake.set()

    def _claim(self) -> None:
        if self._claimed is not None or not self.worker.alive:
            return
        if self.state is LaneState.BUSY:
            slot = self._beside.joining()
            if slot is not None:
                self._claimed = (slot, self.sessions.take_more(slot))
            return
        if self.state is not LaneState.IDLE:
            return
        if self._stills and (self._still_next or not self.sessions.waiting):
            self._still_next = False
            self._claimed = self._stills.popleft()
            if not self.sessions.waiting:
                self.sessions.invitations.now()
        elif self.sessions.waiting:
            self._still_next = True
            self._claimed = self.sessions.take()
        else:
            self.sessions.invitations.now()
            return
        self.state, self._busy_since = LaneState.BUSY, time.perf_counter()

    def _unclaim(self) -> None:
        """A frame claimed as it came, of a session closed before it was sent: the worker
        has been told to end its graph, and the frame would build another under the ended
        session, for good. Not sent, it leaves the lane as it found it."""
        if not self._flights:
            self.state, self._busy_since = LaneState.IDLE, None

    def _send(self, job: LaneJob) -> None:
        """Hands `job` to the worker; the loop delivers its outcome once it and every job
        sent before it are done."""
        work, kind = wire_job(job, self.config)
        flight = overlap.Flight(job, kind, asyncio.ensure_future(self._call(work)))
        flight.task.add_done_callback(lambda _: self._wake.set())
        self._flights.append(flight)
        self._beside.invite()

    async def _call(self, job: Job[Any]) -> Any | HolotrackError:
        """The worker's answer to `job`, or the error it ended with. A worker that does
        not answer at all is killed: its sessions end as a dead worker's do (1011) and
        another starts, where they waited for it until --max-session-seconds."""
        worker = self.worker
        hung_after = HUNG_AFTER_TIMEOUTS * self.config.request_timeout
        try:
            async with asyncio.timeout(hung_after):
                return await worker.call(job)
        except TimeoutError:
            log.error(
                "worker %d (pid %d) answered nothing for %.0f s: killed as hung",
                worker.index,
                worker.pid,
                hung_after,
            )
            worker.kill()
            return WorkerCrashedError(f"inference worker {worker.index} hung and was killed")
        except HolotrackError as exc:
            return exc

    def _finish(self, flight: overlap.Flight) -> None:
        now = time.perf_counter()
        outcome = flight.task.result()
        if not isinstance(outcome, HolotrackError):
            # A job sent beside another is timed from that one's end: the time it added.
            self._times.measure(flight.kind, flight.began)
        if self._flights:
            self._flights[0].began = max(self._flights[0].began, now)
        else:
            if self._busy_since is not None:
                self._busy_seconds += now - self._busy_since
            self._busy_since = None
            if self.state is LaneState.BUSY:
                self.state = LaneState.IDLE
        try:
            if isinstance(flight.job, StillJob):
                deliver_still(flight.job, outcome)
            else:
                slot, frame = flight.job
                self._deliver_frame(slot, frame, outcome)
        except Exception:  # a bug in one delivery must not stop the lane
            log.exception("lane %d: a job failed", self.index)

    def _deliver_frame(self, slot: Slot, frame: Frame, outcome: Any) -> None:
        if isinstance(outcome, FrameResult):
            self.worker.graphs = outcome.graphs
        # Not to a session closed by its client, or ended with every session of a dead worker.
        if not slot.closed and not isinstance(outcome, WorkerCrashedError):
            if isinstance(outcome, HolotrackError):
                slot.sink.frame_failed(frame, outcome)
            else:
                slot.sink.frame_done(frame, outcome)
        if any(f.slot is slot for f in self._flights):
            self._beside.invite()  # its other frame is still in the worker
        else:
            self.sessions.settle(slot)

    # -- the worker's life ---------------------------------------------------------------
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

    async def stop(self) -> None:
        self.state = LaneState.STOPPED
        self.sessions.invitations.stop()
        self._beside.cancel()
        self._drop_claimed()
        self.wake()
        await self.worker.stop()

    def _drop_claimed(self) -> None:
        """A job claimed for a worker that is gone will not run: a still is told so."""
        claimed, self._claimed = self._claimed, None
        if isinstance(claimed, StillJob):
            error = WorkerCrashedError(f"inference worker {self.index} is not running")
            deliver_still(claimed, error)

    def _worker_exited(self, worker: WorkerHandle) -> None:
        if worker is not self.worker:
            return
        if self.state is not LaneState.STOPPED:
            self.state = LaneState.DOWN
        self._serving.clear()
        self._drop_claimed()
        self.sessions.lose_all(
            WorkerCrashedError(
                f"the inference worker serving this session stopped (pid {worker.pid}); "
                "start again (reconnect, or send the video again): another one serves it"
            )
        )
        self.wake()

    async def _replace_worker(self) -> None:
        self.worker = self._new_worker(self.index, ChildLogs.of(self.config), self._worker_exited)
        try:
            await self.worker.start()
        except Exception as exc:
            # Given up after one failure, the lane stayed down for good: a one-worker
            # server refused every session and image, /healthz "ok", until restarted.
            pause = RESTART_PAUSES[min(self._failed_starts, len(RESTART_PAUSES) - 1)]
            self._failed_starts += 1
            # Tried every 30 s for as long as the machine lacks memory: a worker that ended
            # as it loaded says all in its one line, where a traceback of the server's own
            # frames each time buried the log (and JSON logs' exc_info) in copies.
            said = exc if isinstance(exc, WorkerStartError) else None
            log.error(
                "could not restart worker %d%s; trying again in %g s",
                self.index,
                f": {said}" if said else "",
                pause,
                exc_info=said is None,
            )
            await asyncio.sleep(pause)
            return
        self._failed_starts = 0
        self._busy_since = None
        if self.state is LaneState.DOWN:
            self.state = LaneState.IDLE
        self._serving.set()
