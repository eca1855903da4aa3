"""The scheduling policy alone: the real Scheduler and lanes, driven by fake workers.

Each fake worker hands every still and frame it is given to the test, which answers it
when it chooses; graphs open at once. Nothing here runs MediaPipe or sleeps.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from webapp.config import Config
from webapp.engine import lane, pacing
from webapp.engine.jobs import Frame
from webapp.engine.lane import LaneState
from webapp.engine.pacing import BLENDSHAPES_GUESS, Invitations
from webapp.engine.process import ChildLogs, WorkerHandle, WorkerStartError
from webapp.engine.scheduler import Scheduler
from webapp.engine.slot import Slot, SlotState, service_kind
from webapp.engine.wire import (
    CountGraphs,
    EndGraph,
    FrameResult,
    GraphCounts,
    Job,
    Landmarks,
    OpenGraph,
    RunFrame,
    StillResult,
)
from webapp.errors import CapacityError, DeadlineError, HolotrackError, WorkerCrashedError
from webapp.protocol import Track
from webapp.video.arrivals import Arrivals

WAIT = 5.0  # seconds any awaited event may take before the test fails
NOBODY = Landmarks(None, None, None, None)


class FakeWorker:
    """A worker whose stills and frames the test answers; every other job is answered at once."""

    started = 0

    def __init__(self, index: int, logs: ChildLogs, on_exit: Callable[[Any], None]) -> None:
        self.index = index
        self.pid = 0
        self.graphs = 1
        self.alive = False
        self.connections: dict[str, list[list[int]]] = {}
        self.answered_at = 0.0
        self.on_exit = on_exit
        self.jobs: asyncio.Queue[tuple[Job[Any], asyncio.Future[Any]]] = asyncio.Queue()
        self.log: list[Job[Any]] = []
        self._running: set[asyncio.Future[Any]] = set()

    async def start(self) -> None:
        FakeWorker.started += 1
        self.pid = 1000 + FakeWorker.started
        self.alive = True

    async def call(self, job: Job[Any]) -> Any:
        if not self.alive:
            raise WorkerCrashedError("not running")
        self.log.append(job)
        if isinstance(job, OpenGraph | EndGraph | CountGraphs):
            return GraphCounts(self.graphs, 0)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._running.add(future)
        await self.jobs.put((job, future))
        try:
            return await future
        finally:
            self._running.discard(future)

    async def stop(self) -> None:
        self.alive = False

    async def next(self) -> tuple[Job[Any], asyncio.Future[Any]]:
        return await asyncio.wait_for(self.jobs.get(), WAIT)

    async def answer(self) -> Job[Any]:
        """Runs the next still or frame handed to this worker; returns what it was."""
        job, future = await self.next()
        if isinstance(job, RunFrame):
            future.set_result(FrameResult(self.graphs, 64, 48, NOBODY, 1.0, 2.0))
        else:
            future.set_result(StillResult(64, 48, NOBODY, [], 1.0, 2.0))
        return job

    def kill(self) -> None:
        self.die()

    def die(self) -> None:
        """As the real handle does: calls in flight fail first, then the lane is told."""
        self.alive = False
        for future in self._running:
            if not future.done():
                future.set_exception(WorkerCrashedError(f"pid {self.pid} exited"))
        self.on_exit(self)


@dataclass(eq=False)
class Sink:
    """A session as the engine sees it: it records what it is told."""

    results: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    turns: int = 0
    built: int = 0
    lost_with: HolotrackError | None = None
    turned: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def graph_built(self) -> None:
        self.built += 1

    def frame_done(self, frame: Frame, result: FrameResult) -> None:
        self.results.append(frame.seq)

    def frame_failed(self, frame: Frame, error: HolotrackError) -> None:
        self.errors.append(error.code)

    def lost(self, error: HolotrackError) -> None:
        self.lost_with = error
        self.ended.set()

    def turn(self) -> None:
        self.turns += 1
        self.turned.set()


def config(**changes: Any) -> Config:
    # Admission by rate is off unless a test is about it: the others open sessions freely.
    return Config(**{"workers": 1, "max_sessions": 8, "min_session_fps": "0", **changes})


@pytest.fixture
async def pool() -> AsyncIterator[Callable[..., Any]]:
    started: list[Scheduler] = []

    async def make(**changes: Any) -> Scheduler:
        scheduler = Scheduler(config(**changes), new_worker=FakeWorker)
        await scheduler.start()
        started.append(scheduler)
        return scheduler

    yield make
    for scheduler in started:
        await scheduler.stop()


def fake(scheduler: Scheduler, index: int = 0) -> FakeWorker:
    return cast(FakeWorker, scheduler.workers[index])


async def until(condition: Callable[[], bool]) -> None:
    """Until `condition` holds; the fakes answer within a few turns of the event loop."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


async def settled(slot: Slot) -> None:
    await until(lambda: slot.state is not SlotState.PREPARING)


async def open_ready(scheduler: Scheduler, track: Track = Track.HOLISTIC) -> tuple[Slot, Sink]:
    sink = Sink()
    slot = scheduler.open_session(track, sink, 30.0)
    await settled(slot)
    return slot, sink


def frame(seq: int) -> Frame:
    # Received long ago, so the session is already due its next turn.
    return Frame(seq, float(seq), b"jpeg", received=time.perf_counter() - 60.0)


def sessions_run(jobs: list[Job[Any]]) -> list[str]:
    return [job.session if isinstance(job, RunFrame) else "still" for job in jobs]


async def test_waiting_sessions_are_served_round_robin(pool: Callable[..., Any]) -> None:
    scheduler = await pool()
    worker = fake(scheduler)
    (a, sink_a), (b, _), (c, _) = [await open_ready(scheduler) for _ in range(3)]
    scheduler.offer(a, frame(1))
    first, running = await worker.next()  # a's frame is in the worker
    scheduler.offer(b, frame(1))
    scheduler.offer(c, frame(1))
    scheduler.offer(a, frame(2))  # a sent again: it goes behind b and c
    running.set_result(FrameResult(1, 64, 48, NOBODY, 1.0, 2.0))
    order = [first] + [await worker.answer() for _ in range(3)]
    assert sessions_run(order) == [a.id, b.id, c.id, a.id]
    await until(lambda: sink_a.results == [1, 2])


async def test_a_session_whose_frame_always_waits_takes_one_turn_per_round(
    pool: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A video (its next frame offered as soon as one is taken) beside two sessions that
    send on each turn: each of the three runs once a round, as docs/architecture.md says
    of a video; the video took every other frame, the two others sharing the rest."""
    monkeypatch.setattr(pacing, "INVITE_LEAD_MS", 1000.0)  # each turn goes out at once
    scheduler = await pool()
    worker = fake(scheduler)
    invitations = scheduler.lanes[0].sessions.invitations
    video = scheduler.open_session(Track.HOLISTIC, Sink(), 30.0, held_to_rate=False)
    await settled(video)
    # Not held to their rate: these frames come far faster than the 30 fps they ask.
    followers = [
        (scheduler.open_session(Track.HOLISTIC, sink, 30.0, held_to_rate=False), sink)
        for sink in (Sink(), Sink())
    ]
    for slot, _ in followers:
        await settled(slot)
    seqs = iter(range(1, 1000))

    def on_turn(slot: Slot) -> Callable[[], None]:
        def turn() -> None:
            scheduler.offer(slot, frame(next(seqs)))

        return turn

    for slot, sink in followers:
        sink.turn = on_turn(slot)  # type: ignore[method-assign]
        if slot.state is SlotState.INVITED:
            sink.turn()
    scheduler.offer(video, frame(next(seqs)))
    ran = []
    for _ in range(12):
        job, running = await worker.next()
        ran.append(job)
        if sessions_run([job]) == [video.id]:
            scheduler.offer(video, frame(next(seqs)))
        await until(lambda: invitations._timer is None)  # this frame's turn is decided
        running.set_result(FrameResult(1, 64, 48, NOBODY, 1.0, 2.0))
    counts = [sessions_run(ran).count(slot.id) for slot in (video, *(s for s, _ in followers))]
    assert counts == [4, 4, 4]


async def test_a_turn_goes_to_the_session_served_next_not_behind_frames_in_line(
    pool: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two videos (a frame always waiting) and a session that sends on each turn: its
    frame is the next the worker takes, as docs/protocol.md promises of a turn, instead of
    waiting behind a video's frame already in line (the turn went out while the follower's
    place was a whole frame away)."""
    monkeypatch.setattr(pacing, "INVITE_LEAD_MS", 1000.0)  # each turn goes out at once
    scheduler = await pool()
    worker = fake(scheduler)
    invitations = scheduler.lanes[0].sessions.invitations
    videos = [
        scheduler.open_session(Track.HOLISTIC, Sink(), 30.0, held_to_rate=False) for _ in range(2)
    ]
    for video in videos:
        await settled(video)
    # Not held to its rate: these frames come far faster than the 30 fps it asks.
    sink = Sink()
    follower = scheduler.open_session(Track.HOLISTIC, sink, 30.0, held_to_rate=False)
    await settled(follower)
    seqs = iter(range(1, 1000))
    offered_at: dict[int, int] = {}
    started = 0

    def turn() -> None:
        seq = next(seqs)
        offered_at[seq] = started
        scheduler.offer(follower, frame(seq))

    sink.turn = turn  # type: ignore[method-assign]
    if follower.state is SlotState.INVITED:
        turn()
    for video in videos:
        scheduler.offer(video, frame(next(seqs)))
    behind = []
    for started in range(1, 13):
        job, running = await worker.next()
        assert isinstance(job, RunFrame)
        if job.session == follower.id:
            behind.append(started - offered_at[int(job.capture_ms)] - 1)
        else:
            scheduler.offer(next(v for v in videos if v.id == job.session), frame(next(seqs)))
        await until(lambda: invitations._timer is None)  # this frame's turn is decided
        running.set_result(FrameResult(1, 64, 48, NOBODY, 1.0, 2.0))
    assert behind == [0, 0, 0, 0]  # and it ran once a round, as each video did


async def test_the_newest_frame_replaces_the_waiting_one(pool: Callable[..., Any]) -> None:
    scheduler = await pool()
    worker = fake(scheduler)
    slot, sink = await open_ready(scheduler)
    assert scheduler.offer(slot, frame(1)) is None
    _, running = await worker.next()
    assert slot.state is SlotState.RUNNING
    assert scheduler.offer(slot, frame(2)) is None
    displaced = scheduler.offer(slot, frame(3))
    assert displaced is not None
    assert displaced.seq == 2
    running.set_result(FrameResult(1, 64, 48, NOBODY, 1.0, 2.0))
    job = await worker.answer()
    assert isinstance(job, RunFrame)
    assert job.capture_ms == 3.0
    await until(lambda: sink.results == [1, 3])


async def test_a_still_waits_its_turn_then_alternates(pool: Callable[..., Any]) -> None:
    scheduler = await pool()
    worker = fake(scheduler)
    a, _ = await open_ready(scheduler)
    b, _ = await open_ready(scheduler)
    scheduler.offer(a, frame(1))
    _, running = await worker.next()
    stills = [asyncio.ensure_future(scheduler.predict(b"still")) for _ in range(2)]
    await until(lambda: scheduler.snapshot().stills_waiting == 2)
    scheduler.offer(b, frame(1))
    scheduler.offer(a, frame(2))
    running.set_result(FrameResult(1, 64, 48, NOBODY, 1.0, 2.0))
    order = [await worker.answer() for _ in range(4)]
    assert sessions_run(order) == ["still", b.id, "still", a.id]
    results = await asyncio.gather(*stills)
    assert all(r.width == 64 for r in results)


async def test_a_turn_goes_to_one_due_session_at_a_time(pool: Callable[..., Any]) -> None:
    scheduler = await pool()
    worker = fake(scheduler)
    a, sink_a = await open_ready(scheduler)
    b, sink_b = await open_ready(scheduler)
    # a was invited as its graph opened; b waits while a's turn is outstanding.
    assert (sink_a.turns, sink_b.turns) == (1, 0)
    assert (a.state, b.state) == (SlotState.INVITED, SlotState.IDLE)
    scheduler.offer(a, frame(1))
    await worker.next()
    # With nothing else waiting, b is invited to send just before a's frame is done.
    await asyncio.wait_for(sink_b.turned.wait(), WAIT)
    assert b.state is SlotState.INVITED
    assert sink_a.turns == 1


async def test_a_turn_not_taken_is_given_up_and_another_sent(pool: Callable[..., Any]) -> None:
    scheduler = await pool()
    a, sink_a = await open_ready(scheduler)
    b, sink_b = await open_ready(scheduler)
    assert (sink_a.turns, sink_b.turns) == (1, 0)
    sink_a.turned.clear()
    # a never answers: after INVITE_PATIENCE its turn lapses and the rotation sends a new one.
    turned = [asyncio.ensure_future(s.turned.wait()) for s in (sink_a, sink_b)]
    done, pending = await asyncio.wait(turned, timeout=WAIT, return_when="FIRST_COMPLETED")
    for waiter in pending:
        waiter.cancel()
    assert done
    assert sink_a.turns + sink_b.turns == 2
    assert [a.state, b.state].count(SlotState.INVITED) == 1


async def test_a_session_passed_over_while_busy_is_the_next_invited() -> None:
    """A session pacing itself at its share of the worker sends about once a rotation; had
    it gone to the back each time its own frame was waiting as its place came, it could
    stay in step with the rotation and never hear a turn (seen once in CI: one of six
    sessions heard none in 13 s)."""
    invitations = Invitations()
    sinks = [Sink() for _ in range(3)]
    paced, a, b = (Slot(f"s{i}", Track.HOLISTIC, 0, sink, 1 / 30) for i, sink in enumerate(sinks))
    for slot in (paced, a, b):
        slot.state = SlotState.IDLE
        invitations.add(slot)
    paced.state = SlotState.QUEUED  # its own frame waits when its place comes
    invitations.now()
    assert [sink.turns for sink in sinks] == [0, 1, 0]
    invitations.answered(a)
    a.state, paced.state = SlotState.QUEUED, SlotState.IDLE
    invitations.now()
    assert [sink.turns for sink in sinks] == [1, 1, 0]
    invitations.answered(paced)
    paced.state = SlotState.QUEUED
    invitations.now()
    assert [sink.turns for sink in sinks] == [1, 1, 1]


async def test_sessions_beyond_the_limit_are_refused(pool: Callable[..., Any]) -> None:
    scheduler = await pool(max_sessions=2)
    await open_ready(scheduler)
    await open_ready(scheduler)
    assert not scheduler.has_room()
    with pytest.raises(CapacityError, match="server full: 2 of 2"):
        scheduler.open_session(Track.POSE, Sink(), 15.0)


async def test_a_draining_scheduler_refuses_new_sessions(pool: Callable[..., Any]) -> None:
    scheduler = await pool()
    await open_ready(scheduler)
    scheduler.drain()
    assert not scheduler.snapshot().room
    with pytest.raises(CapacityError, match="shutting down"):
        scheduler.open_session(Track.POSE, Sink(), 15.0)


async def test_a_full_still_line_refuses_before_the_body(pool: Callable[..., Any]) -> None:
    scheduler = await pool(max_waiting=2)
    worker = fake(scheduler)
    running = asyncio.ensure_future(scheduler.predict(b"still"))
    await worker.next()  # the first is in the worker; the next two wait
    waiting = [asyncio.ensure_future(scheduler.predict(b"still")) for _ in range(2)]
    await until(lambda: scheduler.snapshot().stills_waiting == 2)
    with pytest.raises(CapacityError, match="2 requests are already waiting"):
        scheduler.check_still_room()
    for task in (running, *waiting):
        task.cancel()


async def test_a_still_whose_client_left_leaves_the_line(pool: Callable[..., Any]) -> None:
    """A client that posts and hangs up (its handler cancelled) gave up its answer, and its
    place in the line with it: it held it until the worker ran it for nobody, and a line
    of them refused the next clients with 503."""
    scheduler = await pool(max_waiting=2)
    worker = fake(scheduler)
    running = asyncio.ensure_future(scheduler.predict(b"still"))
    await worker.next()
    waiting = [asyncio.ensure_future(scheduler.predict(b"still")) for _ in range(2)]
    await until(lambda: scheduler.snapshot().stills_waiting == 2)
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    assert scheduler.snapshot().stills_waiting == 0
    scheduler.check_still_room()
    running.cancel()


async def test_new_sessions_go_to_the_least_loaded_worker(pool: Callable[..., Any]) -> None:
    scheduler = await pool(workers=2)
    holistic, _ = await open_ready(scheduler, Track.HOLISTIC)
    pose_1, _ = await open_ready(scheduler, Track.POSE)
    pose_2, _ = await open_ready(scheduler, Track.POSE)
    # One holistic frame costs about three pose frames: the two pose sessions share a worker.
    assert (holistic.lane, pose_1.lane, pose_2.lane) == (0, 1, 1)


async def test_a_dead_worker_ends_only_its_sessions_and_is_replaced(
    pool: Callable[..., Any],
) -> None:
    scheduler = await pool(workers=2)
    (a, sink_a), (b, sink_b) = await open_ready(scheduler), await open_ready(scheduler)
    assert (a.lane, b.lane) == (0, 1)
    dead = fake(scheduler, 0)
    scheduler.offer(a, frame(1))
    await dead.next()
    dead.die()
    assert isinstance(sink_a.lost_with, WorkerCrashedError)
    assert a.closed
    assert a.id not in scheduler.slots
    assert sink_b.lost_with is None
    assert b.id in scheduler.slots
    replacement = await asyncio.wait_for(scheduler.serving_worker(0), WAIT)
    assert replacement is not dead
    assert replacement.alive
    assert scheduler.snapshot().workers[0].state is LaneState.IDLE
    c, sink_c = await open_ready(scheduler)
    assert c.lane == 0
    scheduler.offer(c, frame(1))
    await fake(scheduler, 0).answer()
    await until(lambda: sink_c.results == [1])


async def test_a_still_in_a_dying_worker_fails(pool: Callable[..., Any]) -> None:
    scheduler = await pool()
    worker = fake(scheduler)
    still = asyncio.ensure_future(scheduler.predict(b"still"))
    await worker.next()
    worker.die()
    with pytest.raises(WorkerCrashedError):
        await still


async def test_a_still_answered_504_leaves_no_unread_failure_when_its_worker_then_dies(
    pool: Callable[..., Any],
) -> None:
    """A still past --request-timeout got its 504, and the failure its worker met after
    (killed as hung three timeouts in, or a crash) was set on a future nobody read any
    more: asyncio logged "Future exception was never retrieved" at ERROR, a traceback."""
    scheduler = await pool(request_timeout=0.2)
    worker = fake(scheduler)
    still = asyncio.ensure_future(scheduler.predict(b"still"))
    await worker.next()
    with pytest.raises(DeadlineError):
        await still
    unread: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: unread.append(context))
    worker.die()
    replacement = await asyncio.wait_for(scheduler.serving_worker(0), WAIT)
    assert replacement is not worker
    # The lane takes the next still once it is done with the dead worker's.
    after = asyncio.ensure_future(scheduler.predict(b"still"))
    await cast(FakeWorker, replacement).answer()
    await after
    del still
    gc.collect()
    assert [context["message"] for context in unread] == []


async def test_a_session_is_told_once_when_its_graph_is_built_and_never_if_closed_first(
    pool: Callable[..., Any],
) -> None:
    scheduler = await pool()
    slot, sink = await open_ready(scheduler)
    assert (sink.built, sink.turns) == (1, 1)  # told before its first turn
    early = Sink()
    scheduler.close_session(scheduler.open_session(Track.POSE, early, 15.0))
    await scheduler.graph_counts()  # answered after the OpenGraph before it
    assert early.built == 0
    scheduler.close_session(slot)


async def test_a_session_closed_while_its_graph_opens_frees_it_after(
    pool: Callable[..., Any],
) -> None:
    scheduler = await pool()
    worker = fake(scheduler)
    slot = scheduler.open_session(Track.POSE, Sink(), 15.0)
    assert slot.state is SlotState.PREPARING
    scheduler.close_session(slot)
    await until(lambda: any(isinstance(job, EndGraph) for job in worker.log))
    assert [type(job) for job in worker.log] == [OpenGraph, EndGraph]
    assert scheduler.slots == {}


async def test_a_frame_waiting_for_its_graph_is_run_once_it_opens(
    pool: Callable[..., Any],
) -> None:
    scheduler = await pool()
    worker = fake(scheduler)
    sink = Sink()
    slot = scheduler.open_session(Track.POSE, sink, 15.0)
    scheduler.offer(slot, frame(7))
    job = await worker.answer()
    assert isinstance(job, RunFrame)
    assert job.session == slot.id
    await until(lambda: sink.results == [7])


def test_the_fake_is_a_worker_handle() -> None:
    handle: WorkerHandle = FakeWorker(0, ChildLogs(), lambda worker: None)
    assert not handle.alive


class DiesAtStart(FakeWorker):
    """Worker 0 ends before it is ready (killed as it loads its model); the others start."""

    async def start(self) -> None:
        if self.index == 0:
            raise RuntimeError("worker 0 failed to start: None")
        await super().start()


async def test_a_worker_dead_at_the_start_leaves_no_other_running() -> None:
    """The others stayed up, and the end of asyncio.run waited on their replies for ever: a
    server with --workers 2 whose first worker was killed as it loaded neither served nor
    exited, SIGTERM or not."""
    scheduler = Scheduler(config(workers=3), new_worker=DiesAtStart)
    with pytest.raises(RuntimeError, match="worker 0 failed to start"):
        await scheduler.start()
    assert [worker.alive for worker in scheduler.workers] == [False, False, False]


async def test_a_still_for_an_idle_worker_leaves_the_line_at_once(
    pool: Callable[..., Any],
) -> None:
    scheduler = await pool(max_waiting=1)
    first = asyncio.ensure_future(scheduler.predict(b"still"))
    await until(lambda: scheduler.snapshot().workers[0].state is LaneState.BUSY)
    assert scheduler.snapshot().stills_waiting == 0
    scheduler.check_still_room()  # the one place in the line is still free
    second = asyncio.ensure_future(scheduler.predict(b"still"))
    await until(lambda: scheduler.snapshot().stills_waiting == 1)
    with pytest.raises(CapacityError):
        scheduler.check_still_room()
    worker = fake(scheduler)
    await worker.answer()
    await worker.answer()
    assert [r.width for r in await asyncio.gather(first, second)] == [64, 64]


async def test_a_video_is_judged_before_its_upload_at_its_own_frames_cost(
    pool: Callable[..., Any],
) -> None:
    """A video with blendshapes is timed at their cost once in (VideoRun.open); judged as
    plain holistic before its upload, it passed, sent up to 64 MiB, and was refused then."""
    scheduler = await pool(min_session_fps="holistic=10")
    await open_ready(scheduler)
    scheduler.times._ms[service_kind(Track.HOLISTIC, True)] = 5000.0
    arrivals = Arrivals()
    arrivals.admit(scheduler).release()
    with pytest.raises(CapacityError, match="--min-session-fps"):
        arrivals.admit(scheduler, blendshapes=True)
    assert arrivals.count == 0


async def test_a_session_is_refused_when_it_would_push_any_below_the_minimum(
    pool: Callable[..., Any],
) -> None:
    # One worker, a holistic frame estimated at 45 ms (nothing has run): two sessions at
    # 30 fps get 11.1 fps each, a third would leave all three at 7.4.
    scheduler = await pool(min_session_fps="holistic=10,pose=15")
    await open_ready(scheduler)
    await open_ready(scheduler)
    assert scheduler.refusal() is not None
    assert not scheduler.snapshot().room
    with pytest.raises(CapacityError, match="--min-session-fps 10"):
        scheduler.open_session(Track.HOLISTIC, Sink(), 30.0)
    # A session asking 2 fps leaves the others 10.1 fps: it is let in. A second one is not.
    low = scheduler.open_session(Track.HOLISTIC, Sink(), 2.0)
    await settled(low)
    assert scheduler.granted_fps(low, 2.0) == 2.0
    with pytest.raises(CapacityError, match="--min-session-fps"):
        scheduler.open_session(Track.HOLISTIC, Sink(), 2.0)
    # A pose session (15 ms) asking 2 fps would still leave the others 9.8: refused too.
    with pytest.raises(CapacityError, match="full for pose"):
        scheduler.open_session(Track.POSE, Sink(), 2.0)
    scheduler.close_session(low)
    assert scheduler.open_session(Track.POSE, Sink(), 2.0).track is Track.POSE


async def test_a_session_replacing_another_is_not_judged_by_rate(
    pool: Callable[..., Any],
) -> None:
    """A camera's next connection takes over its session, which leaves its share as the
    new one starts: refused by rate, the camera of a full lane could never come back."""
    scheduler = await pool(min_session_fps="holistic=10", max_sessions=2)
    await open_ready(scheduler)
    await open_ready(scheduler)
    with pytest.raises(CapacityError):
        scheduler.open_session(Track.HOLISTIC, Sink(), 30.0)
    back = scheduler.open_session(Track.HOLISTIC, Sink(), 30.0, replacing=True)
    assert back.lane == 0
    with pytest.raises(CapacityError, match="server full: 3 of 2"):
        scheduler.open_session(Track.HOLISTIC, Sink(), 30.0, replacing=True)


async def test_a_refusal_counts_the_sessions_in_words(pool: Callable[..., Any]) -> None:
    # A holistic frame estimated at 45 ms: two sessions share 11.1 fps, under 20.
    scheduler = await pool(min_session_fps="holistic=20")
    await open_ready(scheduler)
    with pytest.raises(CapacityError) as refused:
        scheduler.open_session(Track.HOLISTIC, Sink(), 30.0)
    assert str(refused.value.detail).endswith(": the 1 session here leaves too little for another")


async def test_admission_looks_at_every_lane_before_refusing(pool: Callable[..., Any]) -> None:
    scheduler = await pool(workers=2, min_session_fps="holistic=10,pose=30")
    pose_1 = scheduler.open_session(Track.POSE, Sink(), 30.0)
    slow = scheduler.open_session(Track.HOLISTIC, Sink(), 2.0)
    pose_2 = scheduler.open_session(Track.POSE, Sink(), 30.0)
    assert (pose_1.lane, slow.lane, pose_2.lane) == (0, 1, 0)
    # Worker 0 carries less (30 ms a round against 45) but its pose sessions would fall
    # to 13.3 fps, under their 30; worker 1 leaves the slow session its 2 fps.
    newcomer = scheduler.open_session(Track.HOLISTIC, Sink(), 30.0)
    assert newcomer.lane == 1
    assert scheduler.granted_fps(newcomer, 30.0) == 20.2
    # One more at 15 fps leaves worker 1's sessions 10.1 fps: still in, and then it is full.
    assert scheduler.refusal() is None
    assert scheduler.open_session(Track.HOLISTIC, Sink(), 15.0).lane == 1
    refusal = scheduler.refusal()
    assert refusal is not None
    assert "full for holistic at --min-session-fps 10" in refusal


async def test_a_newcomer_is_refused_below_its_own_minimum(pool: Callable[..., Any]) -> None:
    """Four pose sessions with no minimum of their own (15 ms a frame) and a holistic one
    (45 ms) would share 9.5 fps: under holistic's 10, so the holistic one is refused, and
    a pose one, which has no minimum, is not."""
    scheduler = await pool(min_session_fps="holistic=10,pose=0")
    for _ in range(4):
        scheduler.open_session(Track.POSE, Sink(), 30.0)
    with pytest.raises(CapacityError, match="full for holistic at --min-session-fps 10"):
        scheduler.open_session(Track.HOLISTIC, Sink(), 30.0)
    assert scheduler.open_session(Track.POSE, Sink(), 30.0).track is Track.POSE


async def test_admission_counts_on_no_more_than_the_whole_worker(
    pool: Callable[..., Any],
) -> None:
    """A lane whose worker idled steers its grants above one worker-second a second
    (grant.py); a session admitted on that would leave the others under their minimum as
    soon as they sent at their rate. Two holistic sessions at 30 fps: a third would leave
    each 7.4 fps of a whole worker."""
    scheduler = await pool(min_session_fps="holistic=10")
    await open_ready(scheduler)
    await open_ready(scheduler)
    scheduler.lanes[0].sessions.steer.factor = 1.5
    assert scheduler.refusal() is not None
    with pytest.raises(CapacityError, match="--min-session-fps 10"):
        scheduler.open_session(Track.HOLISTIC, Sink(), 30.0)


async def test_a_session_asking_more_than_max_fps_is_timed_at_max_fps(
    pool: Callable[..., Any],
) -> None:
    """Its frames are due, and held when it shares its worker, at --max-fps, not at the
    60 fps it asked."""
    scheduler = await pool(max_fps=20.0)
    slot = scheduler.open_session(Track.HOLISTIC, Sink(), 60.0)
    assert slot.interval == pytest.approx(1 / 20)
    assert slot.allowance is not None
    assert slot.allowance.interval == pytest.approx(1 / 20)


async def test_the_minimum_zero_admits_up_to_max_sessions(pool: Callable[..., Any]) -> None:
    scheduler = await pool(min_session_fps="0", max_sessions=6)
    slots = [(await open_ready(scheduler))[0] for _ in range(6)]
    assert {scheduler.granted_fps(slot, 30.0) for slot in slots} == {3.7}
    with pytest.raises(CapacityError, match="server full: 6 of 6"):
        scheduler.open_session(Track.HOLISTIC, Sink(), 30.0)


async def test_grants_are_equal_in_a_lane_and_rise_while_its_worker_idles(
    pool: Callable[..., Any],
) -> None:
    scheduler = await pool()
    slots = [(await open_ready(scheduler))[0] for _ in range(3)]
    # 1000 ms over three 45 ms frames: 7.4 fps each, no fixed headroom.
    assert [scheduler.granted_fps(slot, 30.0) for slot in slots] == [7.4] * 3
    now = time.perf_counter()
    scheduler.steer_grants(now)
    scheduler.steer_grants(now + 2.0)  # nothing ran: the worker idled the whole window
    raised = [scheduler.granted_fps(slot, 30.0) for slot in slots]
    assert raised == [8.0] * 3
    # A session asking less than the share is granted what it asked, untouched.
    low = scheduler.open_session(Track.HOLISTIC, Sink(), 2.0)
    assert scheduler.granted_fps(low, 2.0) == 2.0


async def test_an_idle_lane_whose_sessions_have_all_they_asked_keeps_its_grant(
    pool: Callable[..., Any],
) -> None:
    scheduler = await pool()
    slot = scheduler.open_session(Track.HOLISTIC, Sink(), 5.0)
    await settled(slot)
    assert scheduler.granted_fps(slot, 5.0) == 5.0
    now = time.perf_counter()
    scheduler.steer_grants(now)
    scheduler.steer_grants(now + 2.0)
    assert scheduler.lanes[0].sessions.steer.factor == 1.0


async def test_a_frame_replaced_though_paced_to_its_grant_lowers_the_grant(
    pool: Callable[..., Any],
) -> None:
    scheduler = await pool()
    worker = fake(scheduler)
    a, _ = await open_ready(scheduler)
    b, _ = await open_ready(scheduler)
    granted = scheduler.granted_fps(b, 30.0)
    assert granted == 11.1
    now = time.perf_counter()
    scheduler.steer_grants(now)
    scheduler.offer(a, Frame(1, 1.0, b"jpeg", received=now))
    _, running = await worker.next()
    # b sends at its grant, but its frame is still waiting when the next one comes.
    scheduler.offer(b, Frame(1, 1.0, b"jpeg", received=now))
    scheduler.offer(b, Frame(2, 2.0, b"jpeg", received=now + 1.0 / granted))
    scheduler.steer_grants(now + 2.0)
    assert scheduler.lanes[0].sessions.steer.factor == pytest.approx(0.95)
    assert scheduler.granted_fps(b, 30.0) == 10.6
    running.set_result(FrameResult(1, 64, 48, NOBODY, 1.0, 2.0))
    await worker.answer()


async def test_a_client_sending_faster_than_granted_does_not_lower_the_grant(
    pool: Callable[..., Any],
) -> None:
    scheduler = await pool()
    worker = fake(scheduler)
    a, _ = await open_ready(scheduler)
    b, _ = await open_ready(scheduler)
    granted = scheduler.granted_fps(b, 30.0)
    now = time.perf_counter()
    scheduler.steer_grants(now)
    scheduler.offer(a, Frame(1, 1.0, b"jpeg", received=now))
    _, running = await worker.next()
    # b ignores its grant: frames 10 ms apart replace each other, its own doing.
    for seq in range(1, 5):
        scheduler.offer(b, Frame(seq, float(seq), b"jpeg", received=now + seq * 0.01))
    scheduler.steer_grants(now + 2.0)
    assert scheduler.lanes[0].sessions.steer.factor == 1.0
    assert scheduler.granted_fps(b, 30.0) == granted
    running.set_result(FrameResult(1, 64, 48, NOBODY, 1.0, 2.0))
    await worker.answer()


async def test_a_session_alone_on_a_worker_is_never_refused_by_rate(
    pool: Callable[..., Any],
) -> None:
    # No worker gives 1000 fps, but a session alone gets all its worker can do.
    scheduler = await pool(workers=2, min_session_fps="1000")
    first = scheduler.open_session(Track.HOLISTIC, Sink(), 30.0)
    second = scheduler.open_session(Track.POSE, Sink(), 30.0)
    assert {first.lane, second.lane} == {0, 1}
    # A third leaves someone under the 30 fps asked (1000 fps is more than anyone asks).
    with pytest.raises(CapacityError, match="--min-session-fps 1000"):
        scheduler.open_session(Track.HOLISTIC, Sink(), 30.0)


# -- a session's frames start no faster than it asked while others share its worker -------
async def test_a_session_sending_faster_than_it_asked_is_held_to_that_rate(
    pool: Callable[..., Any],
) -> None:
    scheduler = await pool()
    worker = fake(scheduler)
    sink = Sink()
    greedy = scheduler.open_session(Track.HOLISTIC, sink, 2.0)  # counted at 2 fps
    other, _ = await open_ready(scheduler)
    await settled(greedy)
    for seq in (1, 2):  # two back to back: its allowance for a client's jitter
        scheduler.offer(greedy, frame(seq))
        assert sessions_run([await worker.answer()]) == [greedy.id]
    await until(lambda: sink.results == [1, 2])
    held_at = time.perf_counter()
    scheduler.offer(greedy, frame(3))
    assert greedy.state is SlotState.HELD
    displaced = scheduler.offer(greedy, frame(4))  # the newest still wins
    assert displaced is not None
    assert displaced.seq == 3
    scheduler.offer(other, frame(1))
    assert sessions_run([await worker.answer()]) == [other.id]  # the other's runs meanwhile
    job = await worker.answer()
    assert isinstance(job, RunFrame)
    assert (job.session, job.capture_ms) == (greedy.id, 4.0)
    # Its third frame in a row started one interval (0.5 s) after the first two.
    assert time.perf_counter() - held_at >= 0.4
    await until(lambda: sink.results == [1, 2, 4])


async def test_a_lone_session_is_never_held_to_the_rate_it_asked(
    pool: Callable[..., Any],
) -> None:
    # Alone, its frames take no one's share: it gets all its worker can do.
    scheduler = await pool()
    worker = fake(scheduler)
    sink = Sink()
    slot = scheduler.open_session(Track.HOLISTIC, sink, 0.5)
    await settled(slot)
    for seq in range(1, 6):
        scheduler.offer(slot, frame(seq))
        assert slot.state is SlotState.RUNNING
        await worker.answer()
        await until(lambda: slot.state is not SlotState.RUNNING)  # delivered; nothing waits
    assert sink.results == [1, 2, 3, 4, 5]


async def test_a_held_session_closed_leaves_nothing_to_run(pool: Callable[..., Any]) -> None:
    scheduler = await pool()
    worker = fake(scheduler)
    sink = Sink()
    greedy = scheduler.open_session(Track.HOLISTIC, sink, 0.5)
    other, other_sink = await open_ready(scheduler)
    await settled(greedy)
    for seq in (1, 2):
        scheduler.offer(greedy, frame(seq))
        await worker.answer()
    await until(lambda: sink.results == [1, 2])
    scheduler.offer(greedy, frame(3))
    assert greedy.state is SlotState.HELD
    waiting = scheduler.close_session(greedy)
    assert waiting is not None
    assert waiting.seq == 3
    assert greedy.hold is None
    scheduler.offer(other, frame(1))
    assert sessions_run([await worker.answer()]) == [other.id]
    await until(lambda: other_sink.results == [1])
    assert worker.jobs.empty()


async def test_a_session_closed_while_in_line_leaves_the_line(
    pool: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """b's frame waits in line behind a's running one when b's client leaves: the lane
    then serves the next in line, and a's next frame, as if b had never queued (taking
    b's turn, it found no frame and logged a failed job)."""
    scheduler = await pool()
    worker = fake(scheduler)
    a, sink_a = await open_ready(scheduler)
    b, sink_b = await open_ready(scheduler)
    c, sink_c = await open_ready(scheduler)
    scheduler.offer(a, frame(1))
    _, running = await worker.next()
    scheduler.offer(b, frame(1))
    scheduler.offer(c, frame(1))
    assert b.state is SlotState.QUEUED
    waiting = scheduler.close_session(b)
    assert waiting is not None
    assert waiting.seq == 1
    scheduler.offer(a, frame(2))
    running.set_result(FrameResult(1, 64, 48, NOBODY, 1.0, 2.0))
    order = [await worker.answer() for _ in range(2)]
    assert sessions_run(order) == [c.id, a.id]
    await until(lambda: sink_a.results == [1, 2] and sink_c.results == [1])
    assert sink_b.results == []
    assert worker.jobs.empty()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


# -- two frames of a lone session in its worker (--overlap-frames) ---------------------------
def result() -> FrameResult:
    return FrameResult(1, 64, 48, NOBODY, 1.0, 2.0)


async def test_a_lone_sessions_next_frame_joins_the_running_one(pool: Callable[..., Any]) -> None:
    scheduler = await pool(overlap_frames=True)
    worker = fake(scheduler)
    slot, sink = await open_ready(scheduler)
    scheduler.offer(slot, frame(1))
    first, running_first = await worker.next()
    scheduler.offer(slot, frame(2))
    second, running_second = await worker.next()  # sent before the first is out
    assert isinstance(first, RunFrame)
    assert isinstance(second, RunFrame)
    assert (first.overlap, second.overlap) == (True, True)
    assert (first.capture_ms, second.capture_ms) == (1.0, 2.0)
    # Never a third: it waits in the mailbox, and latest still wins there.
    scheduler.offer(slot, frame(3))
    displaced = scheduler.offer(slot, frame(4))
    assert displaced is not None
    assert displaced.seq == 3
    assert slot.pending is not None
    assert slot.pending.seq == 4
    # The second answer, coming first, is held until the first is delivered.
    running_second.set_result(result())
    for _ in range(20):  # turns of the event loop in which a lane that delivered out of
        await asyncio.sleep(0)  # order would have delivered it
    assert sink.results == []
    running_first.set_result(result())
    third = await worker.answer()
    assert isinstance(third, RunFrame)
    assert third.capture_ms == 4.0
    await until(lambda: sink.results == [1, 2, 4])
    assert slot.state is SlotState.INVITED  # nothing in its worker: invited as before
    assert scheduler.snapshot().workers[0].state is LaneState.IDLE


async def test_without_the_flag_a_session_has_one_frame_in_its_worker(
    pool: Callable[..., Any],
) -> None:
    scheduler = await pool()
    worker = fake(scheduler)
    slot, sink = await open_ready(scheduler)
    scheduler.offer(slot, frame(1))
    first, running = await worker.next()
    scheduler.offer(slot, frame(2))
    assert slot.pending is not None
    assert slot.pending.seq == 2
    assert isinstance(first, RunFrame)
    assert not first.overlap
    running.set_result(result())
    second = await worker.answer()
    assert isinstance(second, RunFrame)
    assert second.capture_ms == 2.0
    await until(lambda: sink.results == [1, 2])


async def test_two_sessions_on_a_lane_take_turns_one_frame_at_a_time(
    pool: Callable[..., Any],
) -> None:
    scheduler = await pool(overlap_frames=True)
    worker = fake(scheduler)
    (a, sink_a), (b, sink_b) = await open_ready(scheduler), await open_ready(scheduler)
    scheduler.offer(a, frame(1))
    _, running = await worker.next()
    scheduler.offer(a, frame(2))
    scheduler.offer(b, frame(1))
    assert a.pending is not None
    assert a.pending.seq == 2
    running.set_result(result())
    order = [await worker.answer() for _ in range(2)]
    assert sessions_run(order) == [b.id, a.id]
    await until(lambda: (sink_a.results, sink_b.results) == ([1, 2], [1]))


async def test_a_waiting_still_keeps_a_lone_session_to_one_frame(
    pool: Callable[..., Any],
) -> None:
    scheduler = await pool(overlap_frames=True)
    worker = fake(scheduler)
    slot, _ = await open_ready(scheduler)
    scheduler.offer(slot, frame(1))
    _, running = await worker.next()
    still = asyncio.ensure_future(scheduler.predict(b"still"))
    await until(lambda: scheduler.snapshot().stills_waiting == 1)
    scheduler.offer(slot, frame(2))
    assert slot.pending is not None  # the still goes next, then the frame
    running.set_result(result())
    order = [await worker.answer() for _ in range(2)]
    assert sessions_run(order) == ["still", slot.id]
    assert (await still).width == 64


async def test_a_lone_running_session_is_invited_for_the_frame_that_joins_it(
    pool: Callable[..., Any],
) -> None:
    scheduler = await pool(overlap_frames=True)
    worker = fake(scheduler)
    slot, sink = await open_ready(scheduler)
    turns = sink.turns
    sink.turned.clear()
    scheduler.offer(slot, frame(1))
    await worker.next()
    # Its next frame is due (this one was received long ago): it is asked for once this
    # one should be nearly through, while it still runs.
    await asyncio.wait_for(sink.turned.wait(), WAIT)
    assert sink.turns == turns + 1
    assert slot.state is SlotState.RUNNING


async def test_a_dying_worker_fails_both_frames_in_flight(pool: Callable[..., Any]) -> None:
    scheduler = await pool(overlap_frames=True)
    dead = fake(scheduler)
    slot, sink = await open_ready(scheduler)
    scheduler.offer(slot, frame(1))
    await dead.next()
    scheduler.offer(slot, frame(2))
    await dead.next()
    dead.die()
    assert isinstance(sink.lost_with, WorkerCrashedError)
    assert slot.closed
    replacement = await asyncio.wait_for(scheduler.serving_worker(0), WAIT)
    assert replacement is not dead
    await until(lambda: scheduler.snapshot().workers[0].state is LaneState.IDLE)
    assert sink.results == []
    assert sink.errors == []
    c, sink_c = await open_ready(scheduler)
    scheduler.offer(c, frame(1))
    await fake(scheduler).answer()
    await until(lambda: sink_c.results == [1])


async def test_a_session_closed_with_two_frames_in_flight_hears_of_neither(
    pool: Callable[..., Any],
) -> None:
    scheduler = await pool(overlap_frames=True)
    worker = fake(scheduler)
    slot, sink = await open_ready(scheduler)
    scheduler.offer(slot, frame(1))
    _, first = await worker.next()
    scheduler.offer(slot, frame(2))
    _, second = await worker.next()
    scheduler.close_session(slot)
    await until(lambda: any(isinstance(job, EndGraph) for job in worker.log))
    first.set_result(result())
    second.set_result(result())
    await until(lambda: scheduler.snapshot().workers[0].state is LaneState.IDLE)
    assert sink.results == []


async def test_frames_with_blendshapes_are_timed_apart_from_their_track(
    pool: Callable[..., Any],
) -> None:
    scheduler = await pool()
    worker = fake(scheduler)
    holistic = scheduler.times[Track.HOLISTIC]
    kind = service_kind(Track.HOLISTIC, blendshapes=True)
    # Before any such frame has run: the track's time and the face model's share.
    guess = scheduler.times[kind]
    assert guess == pytest.approx(holistic * BLENDSHAPES_GUESS)
    plain, _ = await open_ready(scheduler)
    sink = Sink()
    shaped = scheduler.open_session(Track.HOLISTIC, sink, 30.0, blendshapes=True)
    await settled(shaped)
    assert (plain.kind, shaped.kind) == (str(Track.HOLISTIC), kind)
    assert scheduler.lanes[0].sessions.load_ms() == pytest.approx(holistic + guess)
    scheduler.offer(shaped, frame(1))
    job = await worker.answer()
    assert isinstance(job, RunFrame)
    assert job.blendshapes
    await until(lambda: sink.results == [1])
    # The fake answered at once, far under the guess: only the blendshapes estimate moved.
    assert scheduler.times[kind] < guess
    assert scheduler.times[Track.HOLISTIC] == holistic


class FailingStarts(FakeWorker):
    """A worker whose replacements die as they load (the OOM killer again) `failures` times."""

    failures = 0

    async def start(self) -> None:
        if FakeWorker.started > 0 and FailingStarts.failures > 0:
            FailingStarts.failures -= 1
            raise RuntimeError("worker 0 failed to start: it exited with code -9")
        await super().start()


async def test_a_replacement_that_fails_to_start_is_tried_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One failed replacement left its lane down for good: a one-worker server refused
    every session and still image until it was restarted, its /healthz "ok"."""
    # raising=False: so that the code before the pauses fails on what it does, not on a name.
    monkeypatch.setattr(lane, "RESTART_PAUSES", (0.0,), raising=False)
    monkeypatch.setattr(FakeWorker, "started", 0)
    monkeypatch.setattr(FailingStarts, "failures", 2)
    scheduler = Scheduler(config(), new_worker=FailingStarts)
    await scheduler.start()
    try:
        dead = fake(scheduler)
        dead.die()
        replacement = await asyncio.wait_for(scheduler.serving_worker(0), WAIT)
        assert replacement is not dead
        assert replacement.alive
        assert FailingStarts.failures == 0
        slot, sink = await open_ready(scheduler)
        scheduler.offer(slot, frame(1))
        await fake(scheduler).answer()
        await until(lambda: sink.results == [1])
    finally:
        await scheduler.stop()


class EndsAsItLoads(FakeWorker):
    """Replacements that end before they are ready, as the OOM killer takes them."""

    async def start(self) -> None:
        if FakeWorker.started > 0:
            FakeWorker.started += 1
            raise WorkerStartError(f"inference worker {self.index} exited with code -9")
        await super().start()


async def test_a_replacement_that_keeps_failing_is_one_line_each_time(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Tried every 30 s while the machine lacks memory, each try logged the server's own
    traceback under the worker's one-line reason: a day of it is 2880 tracebacks."""
    monkeypatch.setattr(lane, "RESTART_PAUSES", (0.0,))
    monkeypatch.setattr(FakeWorker, "started", 0)
    scheduler = Scheduler(config(), new_worker=EndsAsItLoads)
    await scheduler.start()
    try:
        with caplog.at_level(logging.ERROR, logger="webapp.engine.lane"):
            fake(scheduler).die()
            await until(lambda: FakeWorker.started >= 4)
    finally:
        await scheduler.stop()
    tries = [r for r in caplog.records if r.getMessage().startswith("could not restart")]
    assert len(tries) >= 2
    for record in tries:
        assert not record.exc_info, record.exc_text
        assert record.getMessage() == (
            "could not restart worker 0: inference worker 0 exited with code -9; "
            "trying again in 0 s"
        )
