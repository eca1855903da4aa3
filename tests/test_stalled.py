"""Peers that stop reading, over real sockets: each is cut off (its transport aborted, its
buffers freed) soon after --send-timeout, and gives back its place at once."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from aiohttp.web_protocol import RequestHandler

from tests.conftest import Client, MakeClient
from tests.live import (
    LiveClient,
    frame_message,
    raw_ws_connect,
    until,
    video_frames,
    ws_frame,
)
from tests.media import ASL_VIDEO
from webapp import tls
from webapp.app import create_app
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


async def slow_watcher(host: str, port: int, token: str) -> socket.socket:
    """A watcher's connection whose every byte is read when read_slowly takes it: a small
    receive buffer, and no stream reader taking what the kernel holds."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, (host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(
        sock,
        f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode(),
    )
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += await loop.sock_recv(sock, 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    watch = {"type": "watch", "version": 1, "token": token}
    await loop.sock_sendall(sock, ws_frame(0x1, json.dumps(watch).encode()))
    return sock


async def read_slowly(sock: socket.socket, rate: float, heard: list[dict[str, Any]]) -> None:
    """A watcher on a link slower than its camera's results: `rate` bytes a second, each
    server message (unmasked frames) parsed into `heard` as it is whole."""
    loop = asyncio.get_running_loop()
    data = b""
    while chunk := await loop.sock_recv(sock, 256):
        data = parse_messages(data + chunk, heard)
        await asyncio.sleep(len(chunk) / rate)


def parse_messages(data: bytes, heard: list[dict[str, Any]]) -> bytes:
    """Each whole server message (unmasked frames) in `data` parsed into `heard`; returns
    the rest."""
    while len(data) >= 2:
        size, at = data[1] & 0x7F, 2
        if size == 126:
            size, at = int.from_bytes(data[2:4]), 4
        elif size == 127:
            size, at = int.from_bytes(data[2:10]), 10
        if len(data) < at + size:
            break
        if data[0] & 0x0F == 0x1:
            heard.append(json.loads(data[at : at + size]))
        data = data[at + size :]
    return data


async def newest_heard(live: LiveClient, heard: list[dict[str, Any]], frames: int = 120) -> int:
    """Streams `frames` frames at 15 fps, each after the last one's result; the seq of the
    newest result a slow watcher has heard by then."""
    video = video_frames(ASL_VIDEO)
    for seq in range(frames):
        await live.send(seq, seq * STEP_MS, video[seq % len(video)])
        await live.next_of("result")
        await asyncio.sleep(STEP_MS / 1000)
    newest: int = max(m["seq"] for m in heard if m["type"] == "result")
    return newest


async def test_a_watcher_on_a_slow_link_sees_the_newest_results(make_client: MakeClient) -> None:
    """A coach whose link carries fewer bytes than the camera's results: each result went
    into the server's buffers and the kernel's, so their card showed the count later the
    longer they watched (3 reps behind after 30 s at 16 kB/s). Only the newest waits now."""
    client = await make_client(Config(workers=1, idle_timeout=120))
    live = await LiveClient.connect(client)
    ready = await live.hello("pose", 15)
    assert client.port is not None
    sock = await slow_watcher(client.host, client.port, ready["watch"])
    heard: list[dict[str, Any]] = []
    # A quarter of what the results take at 15 fps (about 1.6 kB each).
    reading = asyncio.create_task(read_slowly(sock, 6000, heard))
    await until(lambda: any(m["type"] == "watching" for m in heard), "watching")
    try:
        newest = await newest_heard(live, heard)
        # What the kernel may keep (UNSENT_BYTES) and what is on its way: 15 behind. Each
        # result waiting its turn, the watcher read the 46th.
        assert 119 - newest <= 30, f"the watcher reads result {newest} of 119"
    finally:
        reading.cancel()
        sock.close()
        await live.ws.close()


def read_slowly_over_tls(
    port: int, token: str, rate: float, heard: list[dict[str, Any]], done: threading.Event
) -> None:
    """read_slowly's watcher over TLS, blocking (run in a thread) until `done`."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    with context.wrap_socket(raw) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head
        watch = {"type": "watch", "version": 1, "token": token}
        sock.sendall(ws_frame(0x1, json.dumps(watch).encode()))
        data = b""
        while not done.is_set() and (chunk := sock.recv(256)):
            data = parse_messages(data + chunk, heard)
            time.sleep(len(chunk) / rate)


async def test_a_watcher_on_a_slow_link_over_tls_sees_the_newest_results(
    aiohttp_client: Callable[[TestServer], Awaitable[Client]], tmp_path: Path
) -> None:
    """--self-signed or --tls-cert: the results waited beneath asyncio's TLS layer, where
    the outbox did not look, and the watcher read every one of them, ever later."""
    made = tls.self_signed(tmp_path, tls.MachineNames(frozenset({"localhost"}), frozenset()))
    server = TestServer(create_app(Config(workers=1, idle_timeout=120, min_session_fps="0")))
    await server.start_server(ssl=tls.server_context(made.cert, made.key))
    client = await aiohttp_client(server)
    live = LiveClient(await client.ws_connect("/ws", ssl=False))
    ready = await live.hello("pose", 15)
    assert client.port is not None
    heard: list[dict[str, Any]] = []
    done = threading.Event()
    args = (client.port, ready["watch"], 6000, heard, done)
    reading = asyncio.create_task(asyncio.to_thread(read_slowly_over_tls, *args))
    await until(lambda: any(m["type"] == "watching" for m in heard), "watching")
    try:
        newest = await newest_heard(live, heard)
        assert 119 - newest <= 30, f"the watcher reads result {newest} of 119"
    finally:
        done.set()
        await live.ws.close()
        await asyncio.wait({reading}, timeout=BOUND)


async def test_a_watcher_on_a_slow_link_hears_the_last_workout_before_the_end(
    make_client: MakeClient,
) -> None:
    """A coach on a slow link: the camera's last workout (its final count, at Stop) waited
    in their outbox behind a result the link had not taken yet, and the close for the
    ended session went first: the card kept the count before it."""
    client = await make_client(Config(workers=1, idle_timeout=120))
    live = await LiveClient.connect(client)
    ready = await live.hello("pose", 15, exercise="squat")
    assert client.port is not None
    sock = await slow_watcher(client.host, client.port, ready["watch"])
    heard: list[dict[str, Any]] = []
    reading = asyncio.create_task(read_slowly(sock, 6000, heard))
    await until(lambda: any(m["type"] == "watching" for m in heard), "watching")
    try:
        await newest_heard(live, heard, frames=30)
        # The workout moves on as the camera stops: what a last rep does to it.
        await live.ws.send_json({"type": "target", "reps": 7})
        await live.next_of("workout")
        await live.ws.close()
        async with asyncio.timeout(BOUND):
            await reading
        workouts = [m for m in heard if m["type"] == "workout"]
        assert workouts, heard
        assert workouts[-1]["sets"][-1]["target"] == 7, workouts[-1]
    finally:
        reading.cancel()
        sock.close()
