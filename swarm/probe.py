"""A session that sends one frame and waits for its answer: what a memory probe needs."""

from __future__ import annotations

import aiohttp

from webapp.protocol import FRAME_HEADER, VERSION, ClientType, ServerType


async def with_result(
    http: aiohttp.ClientSession, url: str, track: str, frame: bytes
) -> aiohttp.ClientWebSocketResponse:
    """A session that has had the result of one frame (or an error for it), still open."""
    ws = await http.ws_connect(url)
    await ws.send_json({"type": ClientType.HELLO, "version": VERSION, "track": track, "fps": 15})
    while (await ws.receive_json())["type"] != ServerType.READY:
        pass
    await ws.send_bytes(FRAME_HEADER.pack(0, 0.0) + frame)
    while (await ws.receive_json())["type"] not in (ServerType.RESULT, ServerType.ERROR):
        pass
    return ws
