"""A minimal protocol-v1 client for tests, and real frames cut from the shared videos."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from swarm.frames import FrameSet, load_frames
from tests.conftest import Client
from tests.media import ASL_VIDEO
from webapp.protocol import FRAME_HEADER
from webapp.ws_close import sent_code

WIDTH = 480


@functools.cache
def video_frames(path: Path, count: int = 40, width: int = WIDTH) -> tuple[bytes, ...]:
    """JPEGs as the page sends them: downsized to 480 px wide, quality 70."""
    capture = cv2.VideoCapture(str(path))
    frames: list[bytes] = []
    try:
        while len(frames) < count:
            ok, bgr = capture.read()
            if not ok:
                break
            height = round(bgr.shape[0] * width / bgr.shape[1])
            small = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)
            ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 70])
            assert ok
            frames.append(jpeg.tobytes())
    finally:
        capture.release()
    assert len(frames) == count, f"{path} has fewer than {count} frames"
    return tuple(frames)


@functools.cache
def swarm_frames() -> FrameSet:
    """The swarm's frames for tests that run it: 60 of the ASL video, 480 wide."""
    return load_frames(ASL_VIDEO, width=480, quality=70, max_frames=60)


def frame_message(seq: int, capture_ms: float, image: bytes) -> bytes:
    return FRAME_HEADER.pack(seq, capture_ms) + image


class LiveClient:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.stats: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []

    @classmethod
    async def connect(cls, client: Client) -> LiveClient:
        return cls(await client.ws_connect("/ws", autoping=True))

    async def hello(
        self, track: str = "holistic", fps: float = 15, **options: Any
    ) -> dict[str, Any]:
        """Hello with any options (rig, smoothing, vmc, exercise...); returns ready."""
        hello = {"type": "hello", "version": 1, "track": track, "fps": fps, **options}
        await self.ws.send_json(hello)
        return await self.next_of("ready")

    async def send(self, seq: int, capture_ms: float, image: bytes) -> None:
        await self.ws.send_bytes(frame_message(seq, capture_ms, image))

    async def next_of(self, *types: str) -> dict[str, Any]:
        """The next message of one of `types`; stats and errors are kept on the way."""
        while True:
            msg = await self.ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"session closed: {msg.type} {msg.data} {msg.extra}")
            message: dict[str, Any] = json.loads(msg.data)
            if message["type"] == "stats":
                self.stats.append(message)
            elif message["type"] == "error":
                self.errors.append(message)
            if message["type"] in types:
                return message

    async def closed(self) -> tuple[int, str]:
        """Reads until the server closes; returns its close code and reason."""
        while True:
            msg = await self.ws.receive()
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                break
            if msg.type is aiohttp.WSMsgType.CLOSING:
                continue
        code = sent_code(self.ws, msg)
        assert code is not None
        return code, str(msg.extra or "")

    async def lockstep(
        self, frames: tuple[bytes, ...], step_ms: float = 1000 / 15, first: int = 0
    ) -> list[Any]:
        """Sends each frame after the previous result: no drops, deterministic input. The
        frames are numbered from `first`, each captured at its number times `step_ms`."""
        results: list[Any] = []
        for seq, image in enumerate(frames, start=first):
            await self.send(seq, seq * step_ms, image)
            result = await self.next_of("result")
            assert result["seq"] == seq
            results.append(result)
        return results


async def until(condition: Callable[[], bool], what: str, within: float = 10.0) -> None:
    """Polls a state the server reaches on its own, with no event to wait on (a closed
    connection is noticed at the next write); fails with `what` past `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never: {what}")
        await asyncio.sleep(0.02)


async def read_to_close(
    ws: aiohttp.ClientWebSocketResponse, within: float = 60
) -> tuple[int | None, str]:
    """Reads a socket up to the server's close; its code and reason."""
    async with asyncio.timeout(within):
        while True:
            msg = await ws.receive()
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                return sent_code(ws, msg), str(msg.extra or "")


def when_resting(tokens: Any, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """An event set each time the watch tokens put a session's link to rest (its camera
    gone, its grace begun)."""
    rested = asyncio.Event()
    rest = tokens.rest

    def resting(*args: Any) -> None:
        rest(*args)
        rested.set()

    monkeypatch.setattr(tokens, "rest", resting)
    return rested


def lose_connection(live: LiveClient) -> None:
    """The network drops: the socket is reset under the client, with no close frame."""
    connection = live.ws._response.connection
    assert connection is not None
    assert connection.transport is not None
    connection.transport.abort()


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """One masked client frame, FIN set (RFC 6455 5.2), for clients aiohttp will not fake."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


async def raw_ws_connect(
    host: str, port: int, receive_buffer: int = 4096
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket over a socket with a tiny receive buffer, upgraded by hand."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


ServerMaker = Callable[[web.Application], Awaitable[TestServer]]


async def closing_at_hello(make_server: ServerMaker, code: int, reason: str) -> TestServer:
    """A server whose /ws closes every session with `code` and `reason` at its hello, as
    the real one refuses a session (1013 full, 4001 a hello it cannot take)."""

    async def refuse(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()
        await ws.close(code=code, message=reason.encode())
        return ws

    app = web.Application()
    app.router.add_get("/ws", refuse)
    return await make_server(app)
