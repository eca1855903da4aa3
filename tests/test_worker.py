"""The worker process's request handling, in this process with the real model."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import pytest

from webapp.engine import wire
from webapp.engine.child import Worker
from webapp.engine.graphs import MAX_SPARES
from webapp.protocol import Track

REPLY_TIMEOUT = 120.0


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
