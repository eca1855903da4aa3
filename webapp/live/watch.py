"""Watchers: read-only connections that receive another session's results (an OBS view, a
coach's screen, the VMC relay), each through its own one-slot outbox, so a slow watcher
is cut off like any slow reader and never slows the session it watches."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from webapp.engine.jobs import Frame
from webapp.live import messages
from webapp.live.errors import SessionClosed, shown
from webapp.live.outbox import Outbox
from webapp.protocol import VERSION, Close

# 16 random bytes: unguessable, and short enough to paste into an OBS source.
TOKEN_BYTES = 16


class Watcher:
    """One watcher's outbox; `end` closes its connection with a reason."""

    def __init__(self, outbox: Outbox, end: Callable[[SessionClosed], None]) -> None:
        self.outbox = outbox
        self.end = end


@dataclass
class Audience:
    """The watchers of one session: what the session feeds and, when it ends, closes."""

    session: str
    watchers: set[Watcher] = field(default_factory=set)
    # The name of the access key the session was opened with; its watchers count against it.
    key: str | None = None

    def put(self, frame: Frame, text: str) -> None:
        for watcher in self.watchers:
            watcher.outbox.put_result(frame, text)

    def end_all(self, why: str) -> None:
        for watcher in list(self.watchers):
            watcher.end(SessionClosed(Close.NORMAL, f"the watched session ended: {why}"))


class WatchTokens:
    """Token -> the audience of a live session, for as long as the session lives."""

    def __init__(self) -> None:
        self._audiences: dict[str, Audience] = {}

    def issue(self, audience: Audience) -> str:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        self._audiences[token] = audience
        return token

    def revoke(self, token: str) -> None:
        self._audiences.pop(token, None)

    def __len__(self) -> int:
        return len(self._audiences)

    def find(self, token: object) -> Audience | None:
        # A dict lookup goes by the token's hash, not by comparing it with every token.
        return self._audiences.get(token) if isinstance(token, str) else None


async def serve_watcher(
    ws: web.WebSocketResponse,
    message: Mapping[str, Any],
    tokens: WatchTokens,
    *,
    max_watchers: int,
    send_timeout: float,
    end: Callable[[SessionClosed], None],
    admit: Callable[[str | None], Callable[[], None]] = lambda key: lambda: None,
) -> str:
    """Serves one watcher until it leaves or its session ends; returns the session's id.
    `admit` counts it against the watched session's access key (1013 past its limit) and
    returns what gives that place back."""
    version = message.get("version")
    if isinstance(version, bool) or version != VERSION:
        raise SessionClosed(
            Close.PROTOCOL, f"protocol version {shown(version)} is not supported; use {VERSION}"
        )
    audience = tokens.find(message.get("token"))
    if audience is None:
        raise SessionClosed(
            Close.UNKNOWN_WATCH, "this watch link names no live session (it ended, or never was)"
        )
    if len(audience.watchers) >= max_watchers:
        raise SessionClosed(
            Close.TRY_AGAIN_LATER,
            f"session {audience.session} already has {max_watchers} watchers, the most allowed",
        )
    limit = f"the watcher read no result for {send_timeout:g} s"
    outbox = Outbox(
        ws,
        send_timeout=send_timeout,
        sent=lambda frame: None,
        stuck=lambda: end(SessionClosed(Close.POLICY, limit)),
    )
    watcher = Watcher(outbox, end)
    release = admit(audience.key)
    try:
        await ws.send_str(messages.watching(audience.session))
        audience.watchers.add(watcher)
        outbox.start(f"watch-{audience.session}")
        try:
            async for incoming in ws:
                if incoming.type is WSMsgType.BINARY:
                    raise SessionClosed(Close.POLICY, "a watcher sends no frames")
                if incoming.type is WSMsgType.TEXT:
                    _tolerate(str(incoming.data))
        finally:
            audience.watchers.discard(watcher)
            await outbox.stop()
    finally:
        release()
    return audience.session


def _tolerate(text: str) -> None:
    """A watcher has nothing to say: any JSON is ignored, anything else is an error."""
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        raise SessionClosed(Close.PROTOCOL, "a text message is not valid JSON") from None
