"""Faults, each followed by the proof that new sessions work and memory is where it was.

The same cycles with a swarm running for ten minutes after them: `bench/soak.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import struct
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import Client, MakeClient
from tests.live import LiveClient, frame_message, raw_ws_connect, video_frames, ws_frame
from tests.media import ASL_VIDEO, PERSON_JPEG
from webapp.config import Config
from webapp.engine import process
from webapp.engine.graphs import MAX_SPARES
from webapp.engine.process import ChildLogs, WorkerHandle, WorkerProcess, WorkerStartError
from webapp.engine.scheduler import Scheduler
from webapp.engine.wire import Job, RunFrame
from webapp.keys import METRICS, SCHEDULER, SESSIONS
from webapp.protocol import Close

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MEMORY_TOLERANCE = 0.10
CYCLES = 1000
WARMUP_CYCLES = 50
CONCURRENCY = 10
# One more session of each track than a worker keeps spares of (worker.MAX_SPARES).
SPARES_FULL = MAX_SPARES + 1
HELLO = {"type": "hello", "version": 1, "track": "holistic", "fps": 15}


def resident_bytes(pid: int) -> int:
    fields = Path(f"/proc/{pid}/statm").read_text().split()
    return int(fields[1]) * PAGE_SIZE


def server_memory(scheduler: Scheduler) -> dict[str, int]:
    """Resident memory of the server: this process (the app runs in it) and each worker."""
    memory = {"main": resident_bytes(os.getpid())}
    for worker in scheduler.workers:
        if worker.alive:
            memory[f"worker{worker.index}"] = resident_bytes(worker.pid)
    return memory


def megabytes(memory: dict[str, int]) -> str:
    parts = ", ".join(f"{name} {size / 2**20:.0f}" for name, size in memory.items())
    return f"{sum(memory.values()) / 2**20:.0f} MB ({parts})"


def assert_memory_near(baseline: dict[str, int], now: dict[str, int]) -> None:
    before, after = sum(baseline.values()), sum(now.values())
    print(f"memory {megabytes(baseline)} -> {megabytes(now)} ({after / before - 1:+.1%})")
    assert abs(after - before) <= MEMORY_TOLERANCE * before, (
        f"resident memory {megabytes(now)}, baseline {megabytes(baseline)}"
    )


async def fill_spares(client: Client) -> None:
    """Sessions enough to leave every worker the most spare graphs it keeps of each track."""

    async def one(track: str) -> LiveClient:
        live = await LiveClient.connect(client)
        await live.hello(track)
        await live.lockstep(video_frames(ASL_VIDEO)[:1])
        return live

    opened = await asyncio.gather(*(one(track) for track in ("holistic", "pose") * SPARES_FULL))
    for live in opened:
        await live.ws.close()
    await client.app[SESSIONS].wait_empty()


async def settled(client: Client) -> tuple[list[dict[str, int]], dict[str, int]]:
    """Once every session has ended: the workers' graph counts and the server's memory.

    Spares are topped up first, so the counts do not depend on how many sessions
    overlapped before. The server may not have asked a worker to `end` the last sessions
    yet when they are gone from the registry; a sentinel session that has had a result
    was opened after those, so counts taken while it holds a graph include their graphs'
    recycling.
    """
    sessions, scheduler = client.app[SESSIONS], client.app[SCHEDULER]
    await sessions.wait_empty()
    assert scheduler.slots == {}
    await fill_spares(client)
    sentinel = await LiveClient.connect(client)
    await sentinel.hello("pose")
    await sentinel.lockstep(video_frames(ASL_VIDEO)[:1])
    counts = await scheduler.graph_counts()
    assert sum(c["sessions"] for c in counts) == 1
    await sentinel.ws.close()
    await sessions.wait_empty()
    return counts, server_memory(scheduler)


async def new_sessions_work(client: Client) -> None:
    live = await LiveClient.connect(client)
    await live.hello("holistic")
    results = await live.lockstep(video_frames(ASL_VIDEO)[:3])
    assert all(r["landmarks"]["pose"] is not None for r in results)
    await live.ws.close()
    response = await client.post(
        "/predict", data=PERSON_JPEG.read_bytes(), headers={"Content-Type": "image/jpeg"}
    )
    assert response.status == 200


def spy_on_frames(worker: WorkerHandle, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """An event set once a frame has been handed to `worker` (written to its stdin)."""
    handed = asyncio.Event()
    call: Callable[[Job[Any]], Awaitable[Any]] = worker.call

    async def spy(job: Job[Any]) -> Any:
        if not isinstance(job, RunFrame):
            return await call(job)
        running = asyncio.ensure_future(call(job))
        # One turn of the loop: the call writes its request before its first await.
        await asyncio.sleep(0)
        handed.set()
        return await running

    monkeypatch.setattr(worker, "call", spy)
    return handed


async def replacement_of(scheduler: Scheduler, dead: WorkerHandle) -> WorkerHandle:
    worker = await scheduler.serving_worker(dead.index)
    assert worker is not dead
    assert worker.alive
    assert worker.pid != dead.pid
    return worker


async def warmed_baseline(client: Client) -> tuple[list[dict[str, int]], dict[str, int]]:
    await new_sessions_work(client)
    return await settled(client)


async def test_a_worker_killed_mid_frame(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client(Config(workers=1))
    scheduler = client.app[SCHEDULER]
    graphs, memory = await warmed_baseline(client)
    live = await LiveClient.connect(client)
    await live.hello("holistic", exercise="squat")
    worker = scheduler.workers[0]
    handed = spy_on_frames(worker, monkeypatch)
    await live.send(0, 0.0, video_frames(ASL_VIDEO)[0])
    await handed.wait()
    os.kill(worker.pid, signal.SIGKILL)
    # Its workout first, for the page's log, as when a client ends its session.
    workout = await live.next_of("workout")
    assert [s["exercise"] for s in workout["sets"]] == ["squat"]
    code, reason = await live.closed()
    assert code == Close.INTERNAL
    assert f"pid {worker.pid}" in reason
    await replacement_of(scheduler, worker)
    assert not Path(f"/proc/{worker.pid}").exists()  # reaped, not a zombie
    await new_sessions_work(client)
    graphs_after, memory_after = await settled(client)
    assert graphs_after == graphs
    assert_memory_near(memory, memory_after)


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    """The worker stopped (SIGSTOP: a frozen container, a deadlock) for the block; let go
    after, unless it was killed meanwhile."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


async def killed_as_hung(client: Client, worker: WorkerHandle, code: int, reason: str) -> None:
    """The session ended as a dead worker's do, and a new worker serves new sessions."""
    assert code == Close.INTERNAL
    assert f"pid {worker.pid}" in reason
    await replacement_of(client.app[SCHEDULER], worker)
    await new_sessions_work(client)


async def test_a_hung_worker_is_killed_and_replaced(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that answers nothing (stopped by SIGSTOP here: a frozen container, a
    deadlock) held its sessions until --max-session-seconds (4 h) and took new ones. After
    three --request-timeouts without an answer it is killed as hung: its sessions end as a
    dead worker's do, and another starts."""
    client = await make_client(Config(workers=1, request_timeout=2.0))
    scheduler = client.app[SCHEDULER]
    live = await LiveClient.connect(client)
    await live.hello("holistic")
    frames = video_frames(ASL_VIDEO)
    await live.lockstep(frames[:1])
    worker = scheduler.workers[0]
    handed = spy_on_frames(worker, monkeypatch)
    with stopped(worker.pid):
        await live.send(1, 66.7, frames[1])
        await handed.wait()
        code, reason = await live.closed()
    await killed_as_hung(client, worker, code, reason)


async def test_a_worker_hung_before_a_session_opens_is_killed_and_replaced(
    make_client: MakeClient,
) -> None:
    """Stopped while idle, a worker never got a frame to time out on: the session's graph
    was asked for and never came, so its frames waited in its mailbox (no result, no close)
    until --max-session-seconds, and /readyz went on sending sessions there. Nine
    --request-timeouts of silence end it as a dead worker's sessions end."""
    client = await make_client(Config(workers=1, request_timeout=1.0))
    scheduler = client.app[SCHEDULER]
    worker = scheduler.workers[0]
    with stopped(worker.pid):
        live = await LiveClient.connect(client)
        await live.hello("holistic")
        await live.send(0, 0.0, video_frames(ASL_VIDEO)[0])
        # Well past the 9 s of silence, well short of the 4 h the session waited.
        async with asyncio.timeout(30):
            code, reason = await live.closed()
    await killed_as_hung(client, worker, code, reason)


@pytest.mark.parametrize("when", ["as-sent", "in-the-worker"])
async def test_a_client_that_vanishes_mid_frame(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    client = await make_client(Config(workers=1))
    scheduler = client.app[SCHEDULER]
    graphs, memory = await warmed_baseline(client)
    handed = spy_on_frames(scheduler.workers[0], monkeypatch)
    assert client.port is not None
    for seq in range(3):
        reader, writer = await raw_ws_connect(client.host, client.port)
        writer.write(ws_frame(0x1, json.dumps(HELLO).encode()))
        await reader.readuntil(b'"ready"')
        handed.clear()
        writer.write(ws_frame(0x2, frame_message(seq, 0.0, video_frames(ASL_VIDEO)[seq])))
        await writer.drain()
        if when == "in-the-worker":
            await handed.wait()
        writer.transport.abort()  # no close frame, no FIN: a reset
        await client.app[SESSIONS].wait_empty()
    await new_sessions_work(client)
    graphs_after, memory_after = await settled(client)
    assert graphs_after == graphs
    assert_memory_near(memory, memory_after)
    assert scheduler.workers[0].alive


async def test_a_frame_and_a_close_in_one_packet_leave_no_graph(make_client: MakeClient) -> None:
    """Stop pressed just after a turn: the frame and the close frame arrive together. The
    lane claimed the frame as it came and the session closed before the frame was sent:
    the worker was told to end the session's graph first, and the frame then built a new
    one under the ended session, kept for good (about 220 MB each)."""
    client = await make_client(Config(workers=1))
    graphs, memory = await warmed_baseline(client)
    frame = video_frames(ASL_VIDEO)[0]
    assert client.port is not None
    for _ in range(3):
        reader, writer = await raw_ws_connect(client.host, client.port)
        writer.write(ws_frame(0x1, json.dumps(HELLO).encode()))
        writer.write(ws_frame(0x2, frame_message(0, 0.0, frame)))
        await reader.readuntil(b'"result"')  # the graph is built, the lane idle
        last = ws_frame(0x2, frame_message(1, 66.7, frame))
        writer.write(last + ws_frame(0x8, struct.pack("!H", 1000)))
        await writer.drain()
        await client.app[SESSIONS].wait_empty()
        writer.close()
    graphs_after, memory_after = await settled(client)
    assert graphs_after == graphs
    assert_memory_near(memory, memory_after)


async def test_a_client_that_never_reads(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1, send_timeout=1.0))
    graphs, memory = await warmed_baseline(client)
    sessions = client.app[SESSIONS]
    assert client.port is not None
    _, writer = await raw_ws_connect(client.host, client.port)
    writer.write(ws_frame(0x1, json.dumps({**HELLO, "fps": 60}).encode()))
    frames = video_frames(ASL_VIDEO)
    ended = asyncio.create_task(sessions.wait_empty())
    sent = 0
    # Frames go out, results (~17 KB each) come back into a 4 KB receive buffer that is
    # never read; once the server's writer has waited send_timeout, it ends the session.
    while not ended.done() and sent < 3000:
        try:
            writer.write(ws_frame(0x2, frame_message(sent, sent * 10.0, frames[sent % 40])))
            await asyncio.wait_for(writer.drain(), 5)
        except (ConnectionError, TimeoutError):
            break
        sent += 1
        await asyncio.sleep(0.02)  # paced like a camera; what matters is the reads never made
    try:
        await asyncio.wait_for(ended, 90)
        assert sent < 3000
    finally:
        writer.transport.abort()  # its unsent frames would keep a graceful close waiting
    await new_sessions_work(client)
    graphs_after, memory_after = await settled(client)
    assert graphs_after == graphs
    assert_memory_near(memory, memory_after)


async def cycle(client: Client, frame: bytes) -> None:
    live = await LiveClient.connect(client)
    await live.hello("pose")
    await live.send(0, 0.0, frame)
    await live.next_of("result")
    await live.ws.close()


async def cycles(client: Client, count: int) -> None:
    """`count` connect / hello / frame / disconnect cycles, CONCURRENCY at a time."""
    frames = video_frames(ASL_VIDEO)
    left = iter(range(count))

    async def runner() -> None:
        for n in left:
            await cycle(client, frames[n % len(frames)])

    await asyncio.gather(*(runner() for _ in range(CONCURRENCY)))


@pytest.mark.timeout(600)
async def test_connect_hello_disconnect_cycles_leave_nothing_behind(
    make_client: MakeClient,
) -> None:
    client = await make_client(
        Config(workers=1, max_sessions=64, max_sessions_per_client=0, min_session_fps="0")
    )
    # Warm up so graph spares exist and the allocators have reached their working size.
    await cycles(client, WARMUP_CYCLES)
    graphs, memory = await settled(client)
    started = time.monotonic()
    await cycles(client, CYCLES)
    elapsed = time.monotonic() - started
    graphs_after, memory_after = await settled(client)
    assert graphs_after == graphs
    assert_memory_near(memory, memory_after)
    metrics = await (await client.get("/metrics")).text()
    assert "holotrack_sessions_live 0.0" in metrics
    await new_sessions_work(client)
    print(
        f"{CYCLES} cycles in {elapsed:.1f} s; memory {megabytes(memory)} -> "
        f"{megabytes(memory_after)}; graphs {graphs} -> {graphs_after}"
    )


LIMITS_WITHOUT_FRAMES = {
    "idle": (Config(workers=1, idle_timeout=1.0, heartbeat=0.4), Close.IDLE),
    "session-length": (
        Config(workers=1, max_session_seconds=1.0, idle_timeout=30.0, heartbeat=0.4),
        Close.RENEW,
    ),
}


@pytest.mark.parametrize("limit", sorted(LIMITS_WITHOUT_FRAMES))
async def test_a_client_that_only_answers_pings_still_meets_the_limits(
    make_client: MakeClient, limit: str
) -> None:
    config, expected = LIMITS_WITHOUT_FRAMES[limit]
    client = await make_client(config)
    live = await LiveClient.connect(client)  # aiohttp answers every ping with a pong
    await live.hello("pose")
    code, reason = await asyncio.wait_for(live.closed(), 6.0)
    assert code == expected, reason


async def test_a_client_that_answers_no_ping_is_dropped_and_its_places_freed(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="webapp.live.session")
    client = await make_client(Config(workers=1, heartbeat=0.3, idle_timeout=30.0))
    # Without autoping the client reads the server's pings and answers none.
    ws = await client.ws_connect("/ws", autoping=False)
    await ws.send_json(HELLO)
    seen: list[str] = []
    while True:
        msg = await asyncio.wait_for(ws.receive(), 6.0)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            break
        if msg.type is aiohttp.WSMsgType.TEXT:
            seen.append(json.loads(msg.data)["type"])
        else:
            seen.append(msg.type.name)
    assert seen[0] == "ready"
    assert "PING" in seen
    await client.app[SESSIONS].wait_empty()
    # No close frame is sent on a heartbeat's timeout: 1006 is what the log and metrics say,
    # though aiohttp cancels the handler rather than tell its reader.
    assert_ended_lost(client, caplog, "heartbeat: No PONG received")
    await new_sessions_work(client)


async def test_a_connection_reset_mid_session_is_said_as_lost(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="webapp.live.session")
    client = await make_client(Config(workers=1))
    live = await LiveClient.connect(client)
    await live.hello("pose")
    connection = live.ws._response.connection
    assert connection is not None
    assert connection.transport is not None
    connection.transport.abort()
    await client.app[SESSIONS].wait_empty()
    assert_ended_lost(client, caplog, "the connection was lost")


def assert_ended_lost(client: Client, caplog: pytest.LogCaptureFixture, reason: str) -> None:
    (ended,) = [r.getMessage() for r in caplog.records if " end code=" in r.getMessage()]
    assert f" end code=1006 reason='{reason}" in ended
    closed = client.app[METRICS].sessions_closed
    assert closed.labels("1006")._value.get() == 1
    assert closed.labels("1000")._value.get() == 0


async def test_a_worker_not_ready_in_time_is_not_left_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker given up on at its start (a replacement slow to load its model) ends with
    it, rather than loading the model anyway and holding it unused."""
    children: list[asyncio.subprocess.Process] = []
    spawn = asyncio.create_subprocess_exec

    async def spawning(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        child = await spawn(*args, **kwargs)
        children.append(child)
        return child

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spawning)
    monkeypatch.setattr(process, "START_TIMEOUT", 0.01)
    worker = WorkerProcess(0, ChildLogs.of(Config()), lambda _: None)
    try:
        with pytest.raises(WorkerStartError, match=r"worker 0 was not ready within 0\.01 s"):
            await worker.start()
        (child,) = children
        assert child.returncode is not None
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()
