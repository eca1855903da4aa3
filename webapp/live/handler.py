"""GET /ws: the upgrade, who may open a session, and closing them all on shutdown."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, hdrs, web

from webapp.access.credentials import presented_key
from webapp.access.socket import Gate
from webapp.errors import shown
from webapp.http_errors import RETRY_AFTER_SECONDS, json_error
from webapp.keys import ACCESS, CONFIG, LIVE, METRICS, SCHEDULER, SESSIONS
from webapp.live import guard, logbook
from webapp.live.errors import SessionClosed
from webapp.live.message_limits import MessageLimits
from webapp.live.session import LiveSession
from webapp.live.text_limits import MAX_TEXT_CHARS
from webapp.protocol import FRAME_HEADER, Close

SHUTDOWN_GRACE_SECONDS = 3.0
NOT_A_WEBSOCKET = (
    "/ws is the live tracking WebSocket (protocol v1, docs/protocol.md), not a page: "
    "connect to it with a WebSocket client (Upgrade: websocket); the tracking page is /"
)
PROXY_DROPPED = (
    "a WebSocket handshake (it has Sec-WebSocket-Key) came with Upgrade {upgrade}, not "
    '"websocket": a proxy in front of the server dropped or changed it; have the proxy '
    "forward Upgrade and Connection (deploy/nginx shows how)"
)
CONNECTION_DROPPED = (
    "a WebSocket handshake came with Connection {connection}, which does not name "
    '"upgrade": a proxy in front of the server dropped or replaced it (nginx sends '
    '"close" unless told); have the proxy forward Upgrade and Connection (deploy/nginx '
    "shows how)"
)
WS_VERSION = "13"
BAD_VERSION = (
    "a WebSocket handshake with Sec-WebSocket-Version {version}: this server speaks "
    f"version {WS_VERSION} (RFC 6455), as every browser does"
)
BAD_KEY = (
    "a WebSocket handshake whose Sec-WebSocket-Key is {key}, not 16 bytes in base64 "
    "(RFC 6455): a WebSocket client makes one by itself"
)


def handshake_refusal(request: web.Request) -> web.Response | None:
    """aiohttp's own words for a broken handshake ("No CONNECTION upgrade hdr: close",
    "Handshake error: None") reached the operator of a proxy that forwards Upgrade but
    not Connection, and said nothing of a proxy; a key beyond ASCII was a text 500 with a
    traceback in the log. The same checks, in words."""
    headers = request.headers
    connection = headers.getall(hdrs.CONNECTION, [])
    tokens = {token.strip().lower() for value in connection for token in value.split(",")}
    if "upgrade" not in tokens:
        said = shown(", ".join(connection) if connection else None)
        return json_error("bad_request", CONNECTION_DROPPED.format(connection=said), 400)
    # aiohttp also takes the drafts' 7 and 8, whose framing is version 13's.
    version = headers.get(hdrs.SEC_WEBSOCKET_VERSION)
    if version not in (WS_VERSION, "8", "7"):
        detail = BAD_VERSION.format(version=shown(version))
        return json_error("bad_request", detail, 400, {hdrs.SEC_WEBSOCKET_VERSION: WS_VERSION})
    key = headers.get(hdrs.SEC_WEBSOCKET_KEY)
    try:
        valid = key is not None and len(base64.b64decode(key)) == 16
    except ValueError:  # binascii.Error, or a character beyond ASCII: aiohttp's 500
        valid = False
    if not valid:
        return json_error("bad_request", BAD_KEY.format(key=shown(key)), 400)
    return None


COUNTED = frozenset({WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.PING, WSMsgType.PONG})


class _Socket(web.WebSocketResponse):
    """aiohttp closes an over-limit message with 1009 and no words; add them, naming the
    limits the client was given (aiohttp's own adds the header and some room to ready's
    max_frame_bytes), a text message's too: aiohttp's limit cuts text and frames alike.
    Every message a client sends, pings too, is metered here (message_limits)."""

    def __init__(self, *, max_frame_bytes: int, **kwargs: Any) -> None:
        # Pings are answered here, not inside aiohttp's receive, so that they are counted
        # with every other message (message_limits).
        super().__init__(autoping=False, **kwargs)
        self._max_frame_bytes = max_frame_bytes
        self._messages = MessageLimits()
        self._flooded = False

    # aiohttp's own signature: its iterator, receive_str and receive_json call this one.
    async def receive(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        while True:
            msg = await super().receive(timeout)
            if msg.type in COUNTED:
                try:
                    self._messages.check()
                except SessionClosed:
                    self._flooded = True
                    raise
            if msg.type is WSMsgType.PING:
                await self.pong(msg.data)
                continue
            if msg.type is WSMsgType.PONG:
                continue
            return msg

    def _on_data_received(self) -> None:
        # aiohttp re-arms the heartbeat on every byte that comes in, the client's answer
        # to our close as well: each closed socket then stayed in memory, with its request
        # and parser, until that heartbeat (--heartbeat) and its pong wait had run out, and
        # a flood of bad hellos grew the server for good (116 -> 146 MB over 4000).
        if not self.closed:
            super()._on_data_received()

    async def close(self, *, code: int = 1000, message: bytes = b"", drain: bool = True) -> bool:
        if code == Close.TOO_BIG and not message:
            message = (
                f"a message over {self._max_msg_size - 1} bytes; the limits: a frame's image "
                f"{self._max_frame_bytes} bytes (max_frame_bytes), a text {MAX_TEXT_CHARS} "
                "characters"
            ).encode()
        if self._flooded:
            # aiohttp would read on for the client's own close, up to 10 s, parsing the
            # flood all the while: the close frame, then the connection ends.
            self._set_closing(WSCloseCode.POLICY_VIOLATION)
        return await super().close(code=code, message=message, drain=drain)


async def websocket(request: web.Request) -> web.StreamResponse:
    config = request.app[CONFIG]
    scheduler = request.app[SCHEDULER]
    upgrade = request.headers.get(hdrs.UPGRADE)
    if (upgrade or "").strip().lower() != "websocket":
        if hdrs.SEC_WEBSOCKET_KEY in request.headers:
            # A WebSocket client's handshake whose Upgrade a proxy dropped (hop-by-hop, not
            # forwarded unless told) or rewrote: told to use a WebSocket client, the
            # operator testing with one looked at the client, not the proxy.
            return json_error("bad_request", PROXY_DROPPED.format(upgrade=shown(upgrade)), 400)
        # aiohttp's own words ("No WebSocket UPGRADE hdr: None") reached a person who
        # opened /ws in a browser.
        return json_error("bad_request", NOT_A_WEBSOCKET, 400)
    refused = handshake_refusal(request)
    if refused is not None:
        return refused
    # A watcher takes no room: refused, a balancer would send it where its link is not.
    watcher = request.query.get("watcher") == "1"
    if config.refuse_when_full and not watcher and not scheduler.has_room():
        # Before the upgrade, so a proxy can still send this session to another replica.
        request.app[METRICS].sessions_refused.inc()
        busy = "no room for another live session on this server"
        logbook.refused(503, busy, guard.peer_address(request, config), request.app[LIVE].refusals)
        return json_error("busy", busy, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)})
    ws = _Socket(
        max_frame_bytes=config.max_frame_bytes,
        compress=False,
        heartbeat=config.heartbeat,
        # Room for a whole text message too (four bytes a character at most), so that a
        # small --max-frame-bytes does not cut texts under their own limit. aiohttp refuses
        # a message of max_msg_size bytes or more: one more, so that the largest message
        # let through is the one docs/SECURITY.md names and the 1009's reason says "over".
        max_msg_size=max(config.max_frame_bytes + FRAME_HEADER.size + 1024, 4 * MAX_TEXT_CHARS) + 1,
    )
    await ws.prepare(request)
    client = guard.client_address(request, config)
    access = request.app[ACCESS]
    gate = Gate(access, presented_key(request)) if access.required else Gate()
    session = LiveSession(
        ws,
        scheduler,
        config,
        request.app[METRICS],
        request.app[LIVE],
        request.transport,
        gate,
        client,
    )
    sessions = request.app[SESSIONS]
    refusal = guard.origin_refusal(request, config)
    limit = config.max_sessions_per_client
    if refusal is None and limit and sessions.count(client) >= limit:
        # Watchers and sockets yet to say hello count too: each holds a connection.
        refusal = (
            f"this client already has {limit} connection{'s' * (limit != 1)} on /ws "
            "(sessions and watchers), "
            "the most --max-sessions-per-client allows"
        )
    sessions.add(session, client)
    try:
        await session.run(guard.peer_address(request, config), refusal)
    finally:
        sessions.discard(session)
    return ws


async def close_all(app: web.Application) -> None:
    """On shutdown: stop admitting, tell every live session why, and let them go."""
    app[SCHEDULER].drain()
    sessions = app[SESSIONS]
    for session in sessions:
        session.end(SessionClosed(Close.GOING_AWAY, "the server is shutting down"))
    app[LIVE].tokens.close()
    app[LIVE].vmc_rest.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(sessions.wait_empty(), SHUTDOWN_GRACE_SECONDS)
    app[LIVE].refusals.close()
