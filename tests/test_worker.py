"""The worker process's request handling, in this process with the real model."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

import pytest

from webapp.worker import MAX_SPARES, Worker

REPLY_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def replies() -> queue.Queue[tuple[Any, ...]]:
    return queue.Queue()


@pytest.fixture(scope="module")
def worker(replies: queue.Queue[tuple[Any, ...]]) -> Iterator[Worker]:
    worker = Worker(replies.put)
    yield worker
    worker.close()


def ask(worker: Worker, replies: queue.Queue[tuple[Any, ...]], *request: Any) -> Any:
    """The worker's answer, whether it comes back at once or from its preparer thread."""
    reply = worker.handle(request) or replies.get(timeout=REPLY_TIMEOUT)
    job, status, *body = reply
    assert job == request[1]
    assert status == "ok", body
    return body[0]


def test_counts_include_graphs_still_being_recycled(
    worker: Worker, replies: queue.Queue[tuple[Any, ...]]
) -> None:
    sessions = [f"s{i}" for i in range(MAX_SPARES + 2)]
    for job, session in enumerate(sessions, 1):
        ask(worker, replies, "open", job, session, "pose")
    opened = ask(worker, replies, "counts", 10)
    assert opened["sessions"] == len(sessions)
    # Each answer comes at once, while the ended graphs would still be being reset or
    # closed on the preparer if the counts were taken on the main thread.
    ended = [ask(worker, replies, "end", job, session) for job, session in enumerate(sessions, 20)]
    after = ask(worker, replies, "counts", 30)
    still, holistic_spare = 1, 1
    settled = {"graphs": still + holistic_spare + MAX_SPARES, "sessions": 0}
    assert ended[-1] == settled
    assert after == settled
