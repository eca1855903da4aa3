"""The engine's front: admission of stills and sessions, a snapshot, drain and shutdown.

Still images wait in one bounded line that any worker serves. A live session is pinned
to the lane (and worker) that holds its graph and keeps at most one waiting frame, the
newest. What each worker runs next is its lane's business (lane.py).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import time
from collections.abc import Coroutine
from dataclasses import asdict
from typing import Any

from webapp.config import Config
from webapp.engine import calls
from webapp.engine.allowance import Allowance
from webapp.engine.grant import FACTOR_START, GRANT_WINDOW
from webapp.engine.jobs import Frame, StillJob
from webapp.engine.lane import Lane
from webapp.engine.pacing import STILL, ServiceTimes, granted_fps
from webapp.engine.process import WorkerFactory, WorkerHandle, WorkerProcess
from webapp.engine.slot import SessionSink, Slot, service_kind
from webapp.engine.snapshot import PoolSnapshot, WorkerView
from webapp.engine.wire import CountGraphs, StillResult
from webapp.errors import CapacityError, DeadlineError
from webapp.protocol import Track

# /readyz asks whether a session with the hello's defaults (docs/protocol.md) would be let in.
READY_PROBE = (Track.HOLISTIC, 15.0)


class Scheduler:
    def __init__(self, config: Config, new_worker: WorkerFactory = WorkerProcess) -> None:
        self.config = config
        self._new_worker = new_worker
        self.times = ServiceTimes()
        self.lanes: list[Lane] = []
        self._stills: collections.deque[StillJob] = collections.deque()
        self._stopping = False
        self._draining = False  # on shutdown: running sessions finish, new ones are refused
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ids = itertools.count(1)

    @property
    def workers(self) -> list[WorkerHandle]:
        return [lane.worker for lane in self.lanes]

    @property
    def slots(self) -> dict[str, Slot]:
        return {id_: slot for lane in self.lanes for id_, slot in lane.sessions.slots.items()}

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self.lanes = [
            Lane(i, self.config, self._stills, self.times, self._new_worker)
            for i in range(self.config.workers)
        ]
        started = await asyncio.gather(
            *(lane.start() for lane in self.lanes), return_exceptions=True
        )
        failed = [outcome for outcome in started if isinstance(outcome, BaseException)]
        if failed:
            # One worker dead before it was ready left the others running: asyncio.run's
            # end then waited for ever on their replies, the server neither serving nor
            # exiting, SIGTERM or not.
            await asyncio.gather(*(lane.worker.stop() for lane in self.lanes))
            raise failed[0]
        for lane in self.lanes:
            self._spawn(lane.run())
        self._spawn(self._steer_grants())

    @property
    def draining(self) -> bool:
        """Shutting down: sessions still running are being ended, new ones refused."""
        return self._draining

    def drain(self) -> None:
        self._draining = True

    async def stop(self) -> None:
        self._stopping = True
        await asyncio.gather(*(lane.stop() for lane in self.lanes), return_exceptions=True)
        for job in self._stills:
            if not job.future.done():
                job.future.set_exception(CapacityError("the server is shutting down"))
        self._stills.clear()
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
        waiting = len(self._stills)
        expected_s = (waiting + 1) * self.times[STILL] / 1000.0 / alive
        if waiting >= self.config.max_waiting or expected_s > self.config.max_queue_seconds:
            raise CapacityError(
                f"all {len(self.lanes)} workers are busy and {waiting} requests are already "
                f"waiting (about {expected_s:.1f} s of work)"
            )

    async def predict(self, data: bytes) -> StillResult:
        self.check_still_room()
        job = StillJob(data, asyncio.get_running_loop().create_future())
        self._stills.append(job)
        for lane in self.lanes:
            lane.wake()
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), self.config.request_timeout)
        except TimeoutError:
            raise DeadlineError(
                f"no answer within {self.config.request_timeout:g} s; the server is overloaded"
            ) from None
        finally:
            # Not yet taken by a lane: timed out, or its client gone (the handler cancelled),
            # it leaves the line rather than hold a place and a worker's turn for nobody.
            with contextlib.suppress(ValueError):
                self._stills.remove(job)
            # Taken, its answer has nobody to read it: a failure set on it later (its worker
            # killed as hung) was logged as "Future exception was never retrieved".
            job.future.cancel()

    # -- live sessions ---------------------------------------------------------------------
    def open_session(
        self,
        track: Track,
        sink: SessionSink,
        wanted_fps: float,
        blendshapes: bool = False,
        replacing: bool = False,
        held_to_rate: bool = True,
    ) -> Slot:
        """`replacing`: the session takes over one that ends as it starts (its camera's
        next connection), so it is admitted one over --max-sessions and not by rate: the
        one it replaces leaves its place and its share. `held_to_rate`: its frames start
        no faster than `wanted_fps` while others share its worker (allowance.py)."""
        wanted = min(wanted_fps, self.config.max_fps)
        kind = service_kind(track, blendshapes)
        lane = self._admitting_lane(track, wanted, kind, replacing)
        slot = Slot(
            f"s{next(self._ids)}",
            track,
            lane.index,
            sink,
            interval=1.0 / wanted,
            blendshapes=blendshapes,
            allowance=Allowance(1.0 / wanted) if held_to_rate else None,
        )
        lane.sessions.add(slot)
        hung_after = calls.GRAPH_SILENCE_TIMEOUTS * self.config.request_timeout
        self._spawn(calls.open_graph(lane.worker, slot, lane.sessions, hung_after))
        return slot

    def offer(self, slot: Slot, frame: Frame) -> Frame | None:
        """Makes `frame` the slot's waiting frame; returns the one it replaced, if any."""
        return self.lanes[slot.lane].sessions.offer(slot, frame)

    def close_session(self, slot: Slot) -> Frame | None:
        """Frees the slot and its graph; returns a frame that was still waiting, if any."""
        if slot.closed:
            return None
        lane = self.lanes[slot.lane]
        waiting = lane.sessions.close(slot)
        if lane.worker.alive:
            # Sent at once even while its graph is still queued to be built: the worker
            # then builds none (graphs.py).
            self._spawn(calls.end_graph(lane.worker, slot.id))
        return waiting

    def granted_fps(self, slot: Slot, wanted: float) -> float:
        sessions = self.lanes[slot.lane].sessions
        newcomer = None if slot.id in sessions.slots else (self.times[slot.kind], wanted)
        slot.granted = granted_fps(sessions.share(newcomer), wanted, self.config.max_fps)
        return slot.granted

    def _admitting_lane(
        self, track: Track, wanted: float, kind: str, replacing: bool = False
    ) -> Lane:
        """The least-loaded lane where one more session (its frames timed as `kind`)
        leaves every session there at least --min-session-fps (or what it asked, if less),
        or an empty one; CapacityError if none. One `replacing` another goes to the least
        loaded, one over --max-sessions at most."""
        if self._stopping or self._draining:
            raise CapacityError("the server is shutting down")
        sessions = sum(len(lane.sessions) for lane in self.lanes)
        if sessions >= self.config.max_sessions + replacing:
            raise CapacityError(
                f"server full: {sessions} of {self.config.max_sessions} sessions in use"
            )
        alive = [lane for lane in self.lanes if lane.worker.alive]
        if not alive:
            raise CapacityError("no inference worker is running")
        if replacing:
            return min(alive, key=lambda lane: lane.sessions.load_ms())
        floors = self.config.min_fps
        newcomer = (self.times[kind], wanted)
        for lane in sorted(alive, key=lambda lane: lane.sessions.load_ms()):
            slots = lane.sessions.slots.values()
            if not slots:
                # Alone on a worker a session gets all it can do; refusing it helps no one.
                return lane
            needed = max(min(1.0 / s.interval, floors[s.track]) for s in slots)
            needed = max(needed, min(wanted, floors[track]))
            factor = min(1.0, lane.sessions.steer.factor)
            if lane.sessions.share(newcomer, factor) >= needed:
                return lane
        # A session of the other track counts as much: a pose session at 15 fps can leave a
        # one-worker server no room for a holistic one at 10.
        here = (
            "the 1 session here leaves" if sessions == 1 else f"the {sessions} sessions here leave"
        )
        raise CapacityError(
            f"full for {track} at --min-session-fps {floors[track]:g}: "
            f"{here} too little for another"
        )

    async def _steer_grants(self) -> None:
        while not self._stopping:
            await asyncio.sleep(GRANT_WINDOW)
            self.steer_grants(time.perf_counter())

    def steer_grants(self, now: float) -> None:
        """One steering step of every lane's grant (grant.py)."""
        for lane in self.lanes:
            sessions = lane.sessions
            if not sessions.slots:
                # The next sessions here start afresh, not from their predecessors' factor.
                sessions.steer.factor = FACTOR_START
                sessions.steer.step(now, lane.busy_seconds(now), False, 0.0)
                continue
            frame_ms = sessions.load_ms() / len(sessions)
            wanting = sessions.share() < max(1.0 / s.interval for s in sessions.slots.values())
            sessions.steer.step(now, lane.busy_seconds(now), wanting, frame_ms)

    # -- what others may read --------------------------------------------------------------
    def refusal(
        self, track: Track = READY_PROBE[0], wanted: float = READY_PROBE[1], kind: str = ""
    ) -> str | None:
        """Why a session (by default one with the hello's defaults) would be refused now;
        `kind`: what its frames are timed as (slot.service_kind), if not its track's."""
        try:
            self._admitting_lane(track, min(wanted, self.config.max_fps), kind or str(track))
        except CapacityError as exc:
            return exc.detail
        return None

    def has_room(self) -> bool:
        return self.refusal() is None

    def snapshot(self) -> PoolSnapshot:
        now = time.perf_counter()
        refusal = self.refusal()
        return PoolSnapshot(
            sessions=sum(len(lane.sessions) for lane in self.lanes),
            max_sessions=self.config.max_sessions,
            room=refusal is None,
            stills_waiting=len(self._stills),
            busy_seconds=sum(lane.busy_seconds(now) for lane in self.lanes),
            workers=tuple(
                WorkerView(
                    lane.index,
                    lane.worker.pid,
                    lane.worker.alive,
                    lane.worker.graphs,
                    lane.state,
                    len(lane.sessions),
                    lane.sessions.steer.factor,
                )
                for lane in self.lanes
            ),
            refusal=refusal,
        )

    async def serving_worker(self, index: int) -> WorkerHandle:
        """Worker `index` once it is up: at once, or when a dead one's replacement is."""
        return await self.lanes[index].serving_worker()

    async def graph_counts(self) -> list[dict[str, int]]:
        """Graphs and sessions each live worker holds, after every earlier request to it."""
        live = [w for w in self.workers if w.alive]
        counts = await asyncio.gather(*(w.call(CountGraphs()) for w in live))
        return [asdict(c) for c in counts]

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
