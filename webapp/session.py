"""One live camera session over a WebSocket: the path of a frame, top to bottom.

hello -> ready; then each binary frame: parse header -> check size and type -> the
session's one-slot mailbox in the scheduler (a newer frame replaces a waiting one, which
is counted as dropped) -> the worker that holds this session's graph -> a result (or an
error naming the seq) through the session's writer, which also keeps only the newest
unsent result so a client that reads slowly never makes the server buffer without bound.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web
from prometheus_client import Counter

from webapp import errors, guard
from webapp.config import Config
from webapp.keys import CONFIG, METRICS, SCHEDULER, SESSIONS
from webapp.messages import Hello, SessionClosed, parse_control, parse_frame, parse_hello
from webapp.metrics import Metrics
from webapp.protocol import FRAME_HEADER, VERSION, Close, ServerType
from webapp.scheduler import Frame, Scheduler, Slot

log = logging.getLogger(__name__)
MAX_CONTROL_BACKLOG = 16
SHUTDOWN_GRACE_SECONDS = 3.0
TURN_MESSAGE = json.dumps({"type": ServerType.TURN})
# Errors the session survives, as the code the client sees.
FRAME_ERROR_CODES: dict[type[errors.HolotrackError], str] = {
    errors.NotAnImageError: "bad_frame",
    errors.EmptyInputError: "bad_frame",
    errors.UnsupportedTypeError: "bad_frame",
    errors.TooManyPixelsError: "too_many_pixels",
    errors.ModelError: "model_error",
}


@dataclass
class Counters:
    """Where every received frame ended up; each count also feeds the server-wide metric."""

    metric: Counter
    received: int = 0
    processed: int = 0
    dropped: int = 0
    errors: int = 0

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        self.metric.labels(outcome).inc()

    def pending(self) -> int:
        return self.received - self.processed - self.dropped - self.errors


class LiveSession:
    """A session's counters, its scheduler slot and its writer; also the scheduler's sink."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        scheduler: Scheduler,
        config: Config,
        metrics: Metrics,
        transport: asyncio.Transport | None = None,
    ) -> None:
        self.ws = ws
        self.transport = transport
        self.scheduler = scheduler
        self.config = config
        self.metrics = metrics
        self.counters = Counters(metrics.frames)
        self.slot: Slot | None = None
        self.wanted_fps = 0.0
        self.name = "-"
        self._result: tuple[Frame, str] | None = None
        self._control: list[str] = []
        self._wake = asyncio.Event()
        self._ending: SessionClosed | None = None
        self._closer: asyncio.Task[None] | None = None
        self._stopped = False
        self._deadline = time.monotonic() + config.max_session_seconds

    # -- the path of a session ---------------------------------------------------------
    async def run(self, peer: str, refusal: str | None = None) -> None:
        started = time.monotonic()
        close = SessionClosed(Close.NORMAL, "the client closed the session")
        writer: asyncio.Task[None] | None = None
        try:
            if refusal is not None:
                raise SessionClosed(Close.POLICY, refusal)
            hello = parse_hello(await self._receive_text_first())
            self.slot = self._admit(hello)
            self.name = self.slot.id
            self._opened(hello, peer)
            await self.ws.send_json(self._ready(hello))
            writer = asyncio.create_task(self._write(), name=f"writer-{self.name}")
            await self._read_frames()
        except SessionClosed as exc:
            close = exc
        finally:
            close = self._ending or close
            await self._release(close, writer)
            self._log_end(close, time.monotonic() - started)

    async def _release(self, close: SessionClosed, writer: asyncio.Task[None] | None) -> None:
        if self.slot is not None:
            if self.scheduler.close_session(self.slot) is not None:
                self.counters.add("dropped")
            self.metrics.sessions_live.dec()
        if close.code == Close.TRY_AGAIN_LATER:
            self.metrics.sessions_refused.inc()
        self.metrics.sessions_closed.labels(str(int(close.code))).inc()
        if writer is not None:
            # The flag ends the writer's loop even if Python 3.11 loses the cancellation
            # (it can, when a send finishes at the same moment); the wait is bounded too.
            self._stopped = True
            self._wake.set()
            writer.cancel()
            await asyncio.wait({writer}, timeout=self.config.send_timeout)
        await self._close_socket(close)

    def _opened(self, hello: Hello, peer: str) -> None:
        self.metrics.sessions_opened.inc()
        self.metrics.sessions_live.inc()
        fields = {"track": str(hello.track), "fps": hello.fps, "peer": peer}
        log.info(
            "%s start %s",
            self.name,
            " ".join(f"{k}={v}" for k, v in fields.items()),
            extra={"session": self.name, "event": "start", **fields},
        )

    def _log_end(self, close: SessionClosed, seconds: float) -> None:
        c = self.counters
        fields = {
            "code": int(close.code),
            "reason": close.reason,
            "seconds": round(seconds, 1),
            "received": c.received,
            "processed": c.processed,
            "dropped": c.dropped,
            "errors": c.errors,
        }
        log.info(
            "%s end %s",
            self.name,
            " ".join(f"{k}={v!r}" if k == "reason" else f"{k}={v}" for k, v in fields.items()),
            extra={"session": self.name, "event": "end", **fields},
        )

    async def _receive_text_first(self) -> str:
        msg = await self._receive()
        if msg.type is WSMsgType.BINARY:
            raise SessionClosed(Close.POLICY, "a frame arrived before hello")
        if msg.type is not WSMsgType.TEXT:
            raise SessionClosed(Close.PROTOCOL, "expected a hello message")
        return str(msg.data)

    def _too_long(self) -> str:
        limit = self.config.max_session_seconds
        return f"sessions last at most {limit:g} s; reconnect to go on"

    def _admit(self, hello: Hello) -> Slot:
        self.wanted_fps = hello.fps
        try:
            return self.scheduler.open_session(hello.track, self, hello.fps)
        except errors.CapacityError as exc:
            raise SessionClosed(Close.TRY_AGAIN_LATER, exc.detail) from None

    def _ready(self, hello: Hello) -> dict[str, Any]:
        assert self.slot is not None
        return {
            "type": ServerType.READY,
            "version": VERSION,
            "session": self.slot.id,
            "track": hello.track,
            "fps": self.scheduler.granted_fps(self.slot, hello.fps),
            "max_frame_bytes": self.config.max_frame_bytes,
            "idle_timeout": self.config.idle_timeout,
            "stats_interval": self.config.stats_interval,
        }

    async def _read_frames(self) -> None:
        assert self.slot is not None
        while True:
            msg = await self._receive()
            if msg.type is WSMsgType.TEXT:
                parse_control(str(msg.data))
                continue
            if msg.type is not WSMsgType.BINARY:
                return
            frame = parse_frame(msg.data, self.config.max_frame_bytes)
            self.counters.add("received")
            if not frame.data:
                self._frame_error(frame, "bad_frame", "the frame has no image after its header")
                continue
            if self.scheduler.offer(self.slot, frame) is not None:
                self.counters.add("dropped")

    async def _receive(self) -> Any:
        left = self._deadline - time.monotonic()
        # One deadline for the whole wait: ws.receive(timeout=) would restart its timer on
        # every pong it handles, so a client answering pings would never count as idle.
        try:
            async with asyncio.timeout(max(0.0, min(self.config.idle_timeout, left))):
                msg = await self.ws.receive()
        except TimeoutError:
            if time.monotonic() >= self._deadline:
                raise SessionClosed(Close.POLICY, self._too_long()) from None
            raise SessionClosed(
                Close.IDLE, f"no frame for {self.config.idle_timeout:g} s; closing idle session"
            ) from None
        if time.monotonic() >= self._deadline:
            raise SessionClosed(Close.POLICY, self._too_long())
        if self._ending is not None:
            raise self._ending
        if msg.type is WSMsgType.ERROR:
            exc = self.ws.exception()
            if self.ws.close_code == Close.TOO_BIG:
                raise SessionClosed(Close.TOO_BIG, f"message too big: {exc}")
            raise SessionClosed(Close.PROTOCOL, f"WebSocket error: {exc}")
        return msg

    # -- the scheduler's sink ----------------------------------------------------------
    def frame_done(self, frame: Frame, result: dict[str, Any]) -> None:
        message = {
            "type": ServerType.RESULT,
            "seq": frame.seq,
            "capture_ms": frame.capture_ms,
            "image": {"width": result["width"], "height": result["height"]},
            "landmarks": result["landmarks"],
            "timing_ms": {
                "wait": round((frame.started - frame.received) * 1000.0, 2),
                "decode": round(result["decode_ms"], 2),
                "inference": round(result["inference_ms"], 2),
            },
        }
        track = self.slot.track if self.slot else "-"
        self.metrics.wait.labels(track).observe(frame.started - frame.received)
        self.metrics.inference.labels(track).observe(result["inference_ms"] / 1000.0)
        if self._result is not None:
            # The client has not read the previous result yet: the newest one wins.
            self.counters.add("dropped")
        self._result = (frame, json.dumps(message))
        self._wake.set()

    def frame_failed(self, frame: Frame, error: errors.HolotrackError) -> None:
        self._frame_error(frame, FRAME_ERROR_CODES.get(type(error), "model_error"), error.detail)

    def turn(self) -> None:
        self._queue_control(TURN_MESSAGE)

    def lost(self, error: errors.HolotrackError) -> None:
        self.end(SessionClosed(Close.INTERNAL, error.detail))

    def end(self, close: SessionClosed) -> None:
        """Ends the session from outside its reader (worker death, shutdown)."""
        if self._ending is None:
            self._ending = close
            self._closer = asyncio.create_task(self._close_now(close))

    async def _close_now(self, close: SessionClosed) -> None:
        await self._close_socket(close)

    async def _close_socket(self, close: SessionClosed) -> None:
        """Sends the close frame; a peer too stuck to take even that is cut off."""
        if self.ws.closed:
            return
        try:
            async with asyncio.timeout(self.config.send_timeout):
                await self.ws.close(code=close.code, message=_reason_bytes(close.reason))
        except (TimeoutError, ConnectionError, RuntimeError):
            if self.transport is not None:
                self.transport.abort()

    def _frame_error(self, frame: Frame, code: str, message: str) -> None:
        self.counters.add("errors")
        error = {"type": ServerType.ERROR, "code": code, "message": message, "seq": frame.seq}
        self._queue_control(json.dumps(error))

    def _queue_control(self, text: str) -> None:
        # Error messages only inform: the counters in stats stay exact even when a client
        # that sends garbage faster than it reads loses some of them.
        if len(self._control) < MAX_CONTROL_BACKLOG:
            self._control.append(text)
        self._wake.set()

    # -- the writer --------------------------------------------------------------------
    async def _write(self) -> None:
        next_stats = time.monotonic() + self.config.stats_interval
        while not self.ws.closed and not self._stopped:
            timeout = max(0.0, next_stats - time.monotonic())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            self._wake.clear()
            if time.monotonic() >= next_stats:
                next_stats = time.monotonic() + self.config.stats_interval
                self._control.append(json.dumps(self.stats()))
            control, self._control = self._control, []
            for text in control:
                if not await self._send(text):
                    return
            result, self._result = self._result, None
            if result is not None:
                frame, text = result
                if not await self._send(text):
                    return
                self.counters.add("processed")
                track = self.slot.track if self.slot else "-"
                self.metrics.latency.labels(track).observe(time.perf_counter() - frame.received)

    async def _send(self, text: str) -> bool:
        """aiohttp buffers up to its writer limit, then waits; a client that stopped
        reading is ended rather than allowed to hold the buffer forever."""
        try:
            async with asyncio.timeout(self.config.send_timeout):
                await self.ws.send_str(text)
            return True
        except TimeoutError:
            self.end(
                SessionClosed(
                    Close.POLICY,
                    f"the client read no result for {self.config.send_timeout:g} s",
                )
            )
            return False

    def stats(self) -> dict[str, Any]:
        c = self.counters
        fps = self.scheduler.granted_fps(self.slot, self.wanted_fps) if self.slot else 0.0
        return {
            "type": ServerType.STATS,
            "received": c.received,
            "processed": c.processed,
            "dropped": c.dropped,
            "errors": c.errors,
            "pending": c.pending(),
            "fps": fps,
        }


def _reason_bytes(reason: str) -> bytes:
    """A close reason fits in 123 bytes; cut on a character boundary, never inside one."""
    return reason.encode()[:120].decode("utf-8", "ignore").encode()


class _Socket(web.WebSocketResponse):
    """aiohttp closes an over-limit message with 1009 and no words; add them."""

    async def close(self, *, code: int = 1000, message: bytes = b"", drain: bool = True) -> bool:
        if code == Close.TOO_BIG and not message:
            message = f"message over the {self._max_msg_size}-byte limit".encode()
        return await super().close(code=code, message=message, drain=drain)


class SessionRegistry:
    """The live sessions, so shutdown can reach them all and wait for them to end."""

    def __init__(self) -> None:
        self._live: dict[LiveSession, str] = {}
        self._per_client: collections.Counter[str] = collections.Counter()
        self._empty = asyncio.Event()
        self._empty.set()

    def add(self, session: LiveSession, client: str) -> None:
        self._live[session] = client
        self._per_client[client] += 1
        self._empty.clear()

    def discard(self, session: LiveSession) -> None:
        client = self._live.pop(session, None)
        if client is not None:
            self._per_client[client] -= 1
            if self._per_client[client] <= 0:
                del self._per_client[client]
        if not self._live:
            self._empty.set()

    def count(self, client: str) -> int:
        return self._per_client[client]

    def __iter__(self) -> Iterator[LiveSession]:
        return iter(list(self._live))

    def __len__(self) -> int:
        return len(self._live)

    async def wait_empty(self) -> None:
        await self._empty.wait()


async def websocket(request: web.Request) -> web.StreamResponse:
    config = request.app[CONFIG]
    scheduler = request.app[SCHEDULER]
    if config.refuse_when_full and not scheduler.has_room():
        # Before the upgrade, so a proxy can still send this session to another replica.
        request.app[METRICS].sessions_refused.inc()
        return web.json_response(
            {"error": "busy", "detail": "no room for another live session on this server"},
            status=503,
            headers={"Retry-After": "1"},
        )
    ws = _Socket(
        compress=False,
        heartbeat=config.heartbeat,
        max_msg_size=config.max_frame_bytes + FRAME_HEADER.size + 1024,
    )
    await ws.prepare(request)
    client = guard.client_address(request, config)
    session = LiveSession(ws, scheduler, config, request.app[METRICS], request.transport)
    sessions = request.app[SESSIONS]
    refusal = guard.origin_refusal(request, config)
    limit = config.max_sessions_per_client
    if refusal is None and limit and sessions.count(client) >= limit:
        refusal = f"this client already has {limit} live sessions, the most allowed"
    sessions.add(session, client)
    try:
        await session.run(client, refusal)
    finally:
        sessions.discard(session)
    return ws


async def close_all(app: web.Application) -> None:
    """On shutdown: stop admitting, tell every live session why, and let them go."""
    app[SCHEDULER].draining = True
    sessions = app[SESSIONS]
    for session in sessions:
        session.end(SessionClosed(Close.GOING_AWAY, "the server is shutting down"))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(sessions.wait_empty(), SHUTDOWN_GRACE_SECONDS)
