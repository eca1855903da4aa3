"""Peers that stop reading, over real sockets: each is cut off (its transport aborted, its
buffers freed) soon after --send-timeout, and gives back its place at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket

import pytest
from aiohttp.web_protocol import RequestHandler

from tests.conftest import Client, MakeClient
from tests.live import LiveClient, frame_message, raw_ws_connect, video_frames, ws_frame
from tests.media import ASL_VIDEO
from webapp.config import Config
from webapp.keys import LIVE, SESSIONS
from webapp.live.session import LiveSession

HELLO = {"type": "hello", "version": 1, "track": "holistic", "fps": 15, "rig": True}
STEP_MS = 1000 / 15
# Far past send_timeout and far short of idle_timeout: the ending must come from the stall.
BOUND = 20.0


def connection_lost(client: Client, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Set when the server's side of a connection is gone (its transport closed and
    flushed, or aborted), which a graceful close to a peer that never reads never is."""
    server = client.server.handler
    lost = asyncio.Event()
    original = server.connection_lost

    def spy(handler: RequestHandler, exc: BaseException | None) -> None:
        original(handler, exc)
        lost.set()

    monkeypatch.setattr(server, "connection_lost", spy)
    return lost


def small_send_buffer(session: LiveSession) -> None:
    """A slow link: with the server's send buffer small too, the stall shows after a few
    results instead of the megabytes the kernel would otherwise take first."""
    assert session.transport is not None
    sock = session.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)


async def test_a_camera_that_stops_reading_is_cut_off_and_frees_its_place(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client(Config(workers=1, send_timeout=1.0, idle_timeout=120))
    lost = connection_lost(client, monkeypatch)
    sessions = client.app[SESSIONS]
    assert client.port is not None
    reader, writer = await raw_ws_connect(client.host, client.port)
    writer.write(ws_frame(0x1, json.dumps(HELLO).encode()))
    await reader.readuntil(b'"ready"')  # the last read this client makes
    (session,) = list(sessions)
    small_send_buffer(session)
    frames = video_frames(ASL_VIDEO)

    async def camera() -> None:
        seq = 0
        with contextlib.suppress(ConnectionError):
            while not writer.transport.is_closing():
                image = frames[seq % len(frames)]
                writer.write(ws_frame(0x2, frame_message(seq, seq * STEP_MS, image)))
                await writer.drain()
                seq += 1
                await asyncio.sleep(STEP_MS / 1000)

    sending = asyncio.create_task(camera())
    try:
        async with asyncio.timeout(BOUND):
            await sessions.wait_empty()
            # Not a graceful close that waits forever to flush: the connection is gone.
            await lost.wait()
        assert sessions.count("127.0.0.1") == 0
    finally:
        sending.cancel()
        writer.transport.abort()
    # Its slot is free: a new session opens and works.
    live = await LiveClient.connect(client)
    await live.hello("pose")
    await live.send(0, 0.0, frames[0])
    assert (await live.next_of("result"))["seq"] == 0


async def test_a_watcher_that_stops_reading_is_cut_off_and_frees_its_place(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client(
        Config(workers=1, send_timeout=1.0, idle_timeout=120, max_watchers=1)
    )
    lost = connection_lost(client, monkeypatch)
    sessions = client.app[SESSIONS]
    live = await LiveClient.connect(client)
    ready = await live.hello("holistic", 15, rig=True)
    audience = client.app[LIVE].tokens.find(ready["watch"])
    assert audience is not None
    assert client.port is not None
    reader, writer = await raw_ws_connect(client.host, client.port)
    watch = {"type": "watch", "version": 1, "token": ready["watch"]}
    writer.write(ws_frame(0x1, json.dumps(watch).encode()))
    await reader.readuntil(b'"watching"')  # the last read this watcher makes
    (watcher,) = [s for s in sessions if s.watcher]
    small_send_buffer(watcher)
    frames = video_frames(ASL_VIDEO)
    try:
        async with asyncio.timeout(BOUND):
            seq = 0
            while not lost.is_set() or audience.watchers or watcher in list(sessions):
                await live.send(seq, seq * STEP_MS, frames[seq % len(frames)])
                await live.next_of("result")
                seq += 1
    finally:
        writer.transport.abort()
    # Its place is free for another watcher, and the camera never noticed.
    second = await client.ws_connect("/ws")
    await second.send_json(watch)
    assert (await second.receive_json())["type"] == "watching"
    await live.ws.close()
    await second.close()
    async with asyncio.timeout(BOUND):
        await sessions.wait_empty()
