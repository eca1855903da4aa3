"""The worker process's request handling, in this process with the real model."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from swarm.frames import load_frames
from tests.media import ASL_VIDEO
from webapp.engine import graphs, wire
from webapp.engine.graphs import MAX_SPARES
from webapp.engine.inference import TrackEngine
from webapp.engine.worker import Through, Worker
from webapp.protocol import Track

REPLY_TIMEOUT = 120.0
PIXELS = 25_000_000


@pytest.fixture(scope="module")
def replies() -> queue.Queue[wire.Reply]:
    return queue.Queue()


@pytest.fixture(scope="module")
def worker(replies: queue.Queue[wire.Reply]) -> Iterator[Worker]:
    worker = Worker(replies.put)
    yield worker
    worker.close()


def ask(worker: Worker, replies: queue.Queue[wire.Reply], job_id: int, job: wire.Job[Any]) -> Any:
    """The worker's answer, whether it comes back at once or from its preparer thread."""
    reply = worker.handle(wire.Request(job_id, job)) or replies.get(timeout=REPLY_TIMEOUT)
    assert reply.job_id == job_id
    assert isinstance(reply, wire.Done), reply
    return reply.value


def test_counts_include_graphs_still_being_recycled(
    worker: Worker, replies: queue.Queue[wire.Reply]
) -> None:
    sessions = [f"s{i}" for i in range(MAX_SPARES + 2)]
    for job, session in enumerate(sessions, 1):
        ask(worker, replies, job, wire.OpenGraph(session, Track.POSE))
    opened = ask(worker, replies, 10, wire.CountGraphs())
    assert opened.sessions == len(sessions)
    # Each answer comes at once, while the ended graphs would still be being reset or
    # closed on the preparer if the counts were taken on the main thread.
    ended = [
        ask(worker, replies, job, wire.EndGraph(session))
        for job, session in enumerate(sessions, 20)
    ]
    after = ask(worker, replies, 30, wire.CountGraphs())
    still, holistic_spare = 1, 1
    settled = wire.GraphCounts(graphs=still + holistic_spare + MAX_SPARES, sessions=0)
    assert ended[-1] == settled
    assert after == settled


def test_two_frames_in_a_graph_come_out_in_order_as_one_at_a_time_would() -> None:
    """Frames added with `overlap`, two in the graph at once, answered in order with the
    landmarks the same graph gives one frame at a time: tracking state is intact. An
    EndGraph sent meanwhile is answered after both."""
    replies: queue.Queue[wire.Reply] = queue.Queue()
    events: queue.SimpleQueue[Through] = queue.SimpleQueue()
    worker = Worker(replies.put, events.put)
    jpegs = load_frames(ASL_VIDEO, 480, 70, 24).jpegs
    try:
        alone = [
            ask(worker, replies, i, wire.RunFrame("alone", Track.HOLISTIC, jpeg, i * 33.3, PIXELS))
            for i, jpeg in enumerate(jpegs, 1)
        ]
        answered: list[wire.Reply] = []

        def through_one() -> None:
            worker.through(events.get(timeout=REPLY_TIMEOUT))
            answered.append(replies.get(timeout=REPLY_TIMEOUT))

        for i, jpeg in enumerate(jpegs, 1):
            job = wire.RunFrame("paired", Track.HOLISTIC, jpeg, i * 33.3, PIXELS, overlap=True)
            assert worker.handle(wire.Request(100 + i, job)) is None
            if i == len(jpegs):
                assert worker.handle(wire.Request(999, wire.EndGraph("paired"))) is None
            while i - len(answered) >= 2:
                through_one()
        while len(answered) < len(jpegs):
            through_one()
        ended = replies.get(timeout=REPLY_TIMEOUT)
    finally:
        worker.close()
    assert [reply.job_id for reply in answered] == [100 + i for i in range(1, len(jpegs) + 1)]
    paired = [reply.value for reply in answered if isinstance(reply, wire.Done)]
    assert len(paired) == len(jpegs)
    assert sum(1 for result in alone if result.landmarks.face is not None) > len(jpegs) // 2
    assert [r.landmarks for r in paired] == [r.landmarks for r in alone]
    assert isinstance(ended, wire.Done)
    assert ended.job_id == 999
    assert ended.value.sessions == 1  # "alone" still holds its graph


def test_sessions_ended_before_their_graphs_are_built_get_none(
    worker: Worker, replies: queue.Queue[wire.Reply], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client opening and closing sessions faster than graphs build: each ended session's
    queued graph is never built (they were, all at once, before any was recycled: 5 GB from
    100 hellos each closed at once)."""
    built: list[Track] = []

    def counted(track: Track) -> TrackEngine:
        built.append(track)
        return TrackEngine(track)

    monkeypatch.setattr(graphs, "TrackEngine", counted)
    before = ask(worker, replies, 100, wire.CountGraphs())
    preparing = threading.Event()
    worker.pool.prepare(preparing.wait, REPLY_TIMEOUT)  # the preparer busy, as in a burst
    sessions = [f"flood{i}" for i in range(8)]
    try:
        for job, session in enumerate(sessions, 200):
            assert worker.handle(wire.Request(job, wire.OpenGraph(session, Track.HOLISTIC))) is None
        for job, session in enumerate(sessions, 300):
            assert worker.handle(wire.Request(job, wire.EndGraph(session))) is None
    finally:
        preparing.set()
    answered = [replies.get(timeout=REPLY_TIMEOUT) for _ in range(2 * len(sessions))]
    assert all(isinstance(reply, wire.Done) for reply in answered), answered
    assert built == []
    assert ask(worker, replies, 400, wire.CountGraphs()) == before


def test_a_graph_built_for_a_session_that_ended_meanwhile_is_recycled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pool = graphs.GraphPool()
    building, go_on = threading.Event(), threading.Event()

    def slowly(track: Track) -> TrackEngine:
        building.set()
        assert go_on.wait(REPLY_TIMEOUT)
        return TrackEngine(track)

    try:
        pool.open("first", Track.POSE)  # takes the pool's one pose spare
        monkeypatch.setattr(graphs, "TrackEngine", slowly)
        pool.expect("second")
        with ThreadPoolExecutor(1) as thread:
            opening = thread.submit(pool.open, "second", Track.POSE)
            try:
                assert building.wait(REPLY_TIMEOUT)
                pool.end("second")
            finally:
                go_on.set()
            counts = opening.result(REPLY_TIMEOUT)
        assert set(pool.sessions) == {"first"}
        assert counts.sessions == 1
        # Kept as a spare for the next session instead.
        assert len(pool.spares[Track.POSE]) == 1
    finally:
        pool.close()
