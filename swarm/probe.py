"""A session that sends one frame and waits for its answer: what a memory probe needs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from webapp.protocol import FRAME_HEADER, VERSION, ClientType, ServerType


async def with_result(
    http: aiohttp.ClientSession,
    url: str,
    track: str,
    frame: bytes,
    options: Mapping[str, Any] | None = None,
) -> aiohttp.ClientWebSocketResponse:
    """A session that has had the result of one frame (or an error for it), still open.
    `options`: more hello fields (rig, blendshapes, exercise...)."""
    ws = await http.ws_connect(url)
    hello = {"type": ClientType.HELLO, "version": VERSION, "track": track, "fps": 15}
    await ws.send_json({**hello, **(options or {})})
    while (await ws.receive_json())["type"] != ServerType.READY:
        pass
    await ws.send_bytes(FRAME_HEADER.pack(0, 0.0) + frame)
    while (await ws.receive_json())["type"] not in (ServerType.RESULT, ServerType.ERROR):
        pass
    return ws
