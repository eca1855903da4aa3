"""Reading a live session's next message within its limits: idle time and session length."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WebSocketError, WSCloseCode, WSMsgType, web

from webapp.errors import plain_seconds
from webapp.live.errors import SessionClosed
from webapp.live.text_limits import TextLimits
from webapp.protocol import Close


class Receiver:
    def __init__(
        self,
        ws: web.WebSocketResponse,
        *,
        idle_timeout: float,
        max_session_seconds: float,
        ending: Callable[[], SessionClosed | None],
        holding: Callable[[], bool],
    ) -> None:
        self._ws = ws
        self._idle = idle_timeout
        self._idle_text = plain_seconds(idle_timeout)  # as its close reasons say it
        self._longest = max_session_seconds
        self._deadline = time.monotonic() + max_session_seconds
        # Idle means no frame: text messages (summary, exercise) do not keep a session.
        # Since the last frame came, or since the server last held one of the session's
        # (answered()).
        self._idle_since = time.monotonic()
        self._ending = ending  # set when the session is ended from outside its reader
        # Whether the server holds one of its frames: a client waiting for its answer is
        # not idle, however long a burst of new sessions keeps its graph unbuilt.
        self._holding = holding
        self._text = TextLimits()

    def answered(self) -> None:
        """The server let go of the session's frame (answered it, or failed it): its client
        has the whole idle timeout from now. Counted from the last check that found the
        frame held, a client answered after a long wait for its graph was closed as idle
        at once."""
        self._idle_since = max(self._idle_since, time.monotonic())

    @property
    def text(self) -> TextLimits:
        """The connection's text allowance, for a watcher's reader to go on spending."""
        return self._text

    async def text_first(self) -> str:
        try:
            msg = await self.next()
        except SessionClosed as exc:
            if exc.code != Close.IDLE:
                raise
            # "no frame" misled a client that had not said hello yet (its ready says
            # idle_timeout, which it had no way to know).
            raise SessionClosed(
                Close.IDLE,
                f"no hello for {self._idle_text} s after connecting; closing idle connection",
            ) from None
        if msg.type is WSMsgType.BINARY:
            raise SessionClosed(Close.POLICY, "a frame arrived before hello")
        if msg.type is WSMsgType.CLOSE:
            # aiohttp has answered it with 1000: logged and counted as a 4001, a reloaded
            # page's socket was a protocol error the client never got.
            raise SessionClosed(Close.NORMAL, "the client closed before its hello")
        if msg.type is not WSMsgType.TEXT:
            raise SessionClosed(Close.PROTOCOL, "expected a hello message")
        return str(msg.data)

    async def next(self) -> Any:
        while True:
            now = time.monotonic()
            left = min(self._deadline, self._idle_since + self._idle) - now
            # One deadline for the whole wait: ws.receive(timeout=) would restart its timer
            # on every pong it handles, so a client answering pings would never be idle.
            try:
                async with asyncio.timeout(max(0.0, left)):
                    msg = await self._ws.receive()
                break
            except TimeoutError:
                now = time.monotonic()
                if now >= self._deadline:
                    raise SessionClosed(Close.RENEW, self._too_long()) from None
                if self._holding():
                    self._idle_since = now
                elif now >= self._idle_since + self._idle:
                    raise SessionClosed(
                        Close.IDLE,
                        f"no frame for {plain_seconds(self._idle)} s; closing idle session",
                    ) from None
        if time.monotonic() >= self._deadline:
            raise SessionClosed(Close.RENEW, self._too_long())
        ending = self._ending()
        if ending is not None:
            raise ending
        if msg.type is WSMsgType.BINARY:
            self._idle_since = time.monotonic()
        if msg.type is WSMsgType.TEXT:
            self._text.check(str(msg.data))
        if msg.type is WSMsgType.ERROR:
            raise read_error(msg.data)
        return msg

    def _too_long(self) -> str:
        return f"sessions last at most {plain_seconds(self._longest)} s; reconnect to go on"


def read_error(exc: object) -> SessionClosed:
    """What aiohttp's own reader did about a connection it gave up on, as the code it
    sent: the session logs and counts that, not a code of its own it never sent."""
    if isinstance(exc, WebSocketError):
        # Bad framing (1002), text not UTF-8 (1007), over the size limit (1009): aiohttp
        # has already closed with exc.code.
        if exc.code == Close.TOO_BIG:
            return SessionClosed(exc.code, f"message too big: {exc}")
        return SessionClosed(exc.code, f"WebSocket error: {exc}")
    if isinstance(exc, TimeoutError):
        # The heartbeat's "No PONG received": aiohttp drops the connection, no close frame.
        return SessionClosed(WSCloseCode.ABNORMAL_CLOSURE, f"heartbeat: {exc}")
    return SessionClosed(WSCloseCode.ABNORMAL_CLOSURE, f"the connection failed: {exc!r}")


def connection_lost(ws: web.WebSocketResponse) -> SessionClosed:
    """Why a session's handler was cancelled: aiohttp cancels it when the connection is gone
    (its heartbeat unanswered, a reset), whether or not the reader was waiting to hear it."""
    exc = ws.exception()
    if exc is not None:
        return read_error(exc)
    return SessionClosed(WSCloseCode.ABNORMAL_CLOSURE, "the connection was lost")
