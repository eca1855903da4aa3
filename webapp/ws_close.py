"""The code a WebSocket server closed with, for this project's clients (the relay, the
swarm, the benches, the tests)."""

from __future__ import annotations

import aiohttp


def sent_code(ws: aiohttp.ClientWebSocketResponse, message: aiohttp.WSMessage) -> int | None:
    """The code in the server's close frame, when `message` is one. Not ws.close_code alone:
    the server hangs up right after its close frame, aiohttp's answer to it can then fail,
    and aiohttp puts 1006 there (docs/protocol.md, "Close codes")."""
    return int(message.data) if message.type is aiohttp.WSMsgType.CLOSE else ws.close_code
