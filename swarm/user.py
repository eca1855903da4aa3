"""One simulated browser, doing what static/session.js does: hello, then a frame on each
`turn` the server sends (before the first turn, or with a server that sends none, on a fixed
schedule at the granted rate), never more than `in_flight` without an answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import time

import aiohttp

from swarm.config import FINAL_STATS_WAIT, SwarmConfig
from swarm.frames import FrameSet
from swarm.ledger import Ledger
from swarm.messages import Message, number, parse_message
from swarm.records import SessionRecord
from webapp.protocol import FRAME_HEADER, VERSION, ClientType, Close, ServerType
from webapp.ws_close import sent_code

ENDS = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED)

# After the first turn, a frame goes without one only when none has come for this long.
FALLBACK_MIN_SECONDS = 1.0
FALLBACK_PERIODS = 2.0


class Clock:
    """One monotonic clock for the whole run; records keep seconds since its origin."""

    def __init__(self) -> None:
        self.origin = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - self.origin


class User:
    def __init__(
        self,
        session: int,
        step: int,
        config: SwarmConfig,
        frames: FrameSet,
        http: aiohttp.ClientSession,
        clock: Clock,
        first_frame: int = 0,
        phase: float = 0.0,
    ) -> None:
        self.config = config
        self.frames = frames
        self.http = http
        self.clock = clock
        self.first_frame = first_frame
        self.phase = phase
        self.record = SessionRecord(step, session, opened=clock.now())
        self.ledger = Ledger(self.record)
        # Handshake over: ready, refused or failed. The runner starts a step's clock only
        # when every session has got this far.
        self.settled = asyncio.Event()
        # Set at its first answer (a result, or an error for a frame) or at its end: until
        # then the server is still building its graph, or never will.
        self.answered = asyncio.Event()
        self._stopping = False
        self._closing = False
        self._nap: asyncio.Future[None] | None = None
        self._changed = asyncio.Event()  # a frame settled, a stats message came, or stop()
        self._stats_interval = 2.0
        # Turns: when the last one came, whether one awaits its frame (and since when),
        # and whether a frame is being sent (a turn that comes meanwhile is answered by it).
        self._last_turn: float | None = None
        self._turn_owed: float | None = None
        self._last_sent = 0.0
        self._sending = False

    @property
    def heard(self) -> bool:
        """The server answered: a result, an error for a frame, or a refusal at hello."""
        return self.ledger.results > 0 or self.ledger.errors > 0 or self.record.refused

    # -- lifecycle -------------------------------------------------------------------------
    def stop(self) -> None:
        """Ends sending now; the session then drains and closes on its own."""
        self._stopping = True
        self._wake()

    async def run(self) -> None:
        try:
            ws = await self._connect()
            if ws is None:
                return
            self.settled.set()
            receiver = asyncio.create_task(self._receive(ws))
            try:
                await self._send_loop(ws, receiver)
                await self._drain(receiver)
            finally:
                self._closing = True
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    await ws.close()
                receiver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await receiver
        finally:
            self.ledger.close()
            self.record.closed = self.clock.now()
            self.settled.set()
            self.answered.set()

    async def _connect(self) -> aiohttp.ClientWebSocketResponse | None:
        ws: aiohttp.ClientWebSocketResponse | None = None
        hello = {
            "type": ClientType.HELLO,
            "version": VERSION,
            "track": self.config.track,
            "fps": self.config.fps,
            **self.config.extra_hello,
        }
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                ws = await self.http.ws_connect(
                    self.config.url,
                    autoping=True,
                    compress=0,
                    origin=self.config.origin or None,
                    timeout=aiohttp.ClientWSTimeout(ws_close=max(1.0, self.config.drain)),
                )
                await ws.send_str(json.dumps(hello))
                reply = await ws.receive()
        except aiohttp.WSServerHandshakeError as exc:
            # A proxy or server may refuse before the upgrade; 503 means what 1013 means.
            if exc.status == 503:
                self.record.refused = True
                self.record.refusal = "HTTP 503 before the upgrade"
            else:
                self.record.error = f"handshake refused with HTTP {exc.status}"
            return None
        except TimeoutError:
            self.record.error = f"no ready within {self.config.connect_timeout:g} s"
        except aiohttp.ClientConnectorError as exc:
            self.record.error = f"cannot connect to {exc.host}:{exc.port}: {_reason(exc.os_error)}"
        except (aiohttp.ClientError, OSError) as exc:
            self.record.error = f"cannot connect: {exc!r}"
        else:
            assert ws is not None
            if self._ready(reply):
                return ws
        if ws is not None:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                await ws.close()
        return None

    def _ready(self, reply: aiohttp.WSMessage) -> bool:
        if reply.type is aiohttp.WSMsgType.TEXT:
            try:
                message = parse_message(reply.data)
            except ValueError:
                message = Message("", None, {})
            if message.type == ServerType.READY:
                self.record.ready = self.clock.now()
                self.record.server_id = str(message.body.get("session", ""))
                self.record.granted_fps = number(message.body.get("fps"))
                self._stats_interval = number(message.body.get("stats_interval")) or 2.0
                return True
            self.record.error = f"expected ready, got {reply.data[:80]!r}"
            return False
        if reply.type is aiohttp.WSMsgType.CLOSE:
            self.record.close_code = int(reply.data)
            # 1013 at hello is the server saying it is full: a refusal, not an error.
            if reply.data == Close.TRY_AGAIN_LATER:
                self.record.refused = True
                self.record.refusal = reply.extra or ""
            else:
                self.record.error = f"closed at hello: {reply.data} {reply.extra or ''}".strip()
            return False
        self.record.error = f"connection lost at hello ({reply.type.name})"
        return False

    # -- sending ---------------------------------------------------------------------------
    def rate(self) -> float:
        """The page never sends faster than granted; the firehose ignores the grant on purpose."""
        granted = self.record.granted_fps
        if self.config.mode == "firehose" or not granted:
            return self.config.fps
        return min(self.config.fps, granted)

    def follows_turns(self) -> bool:
        return self.config.mode == "paced" and not self.config.ignore_turns

    def fallback_gap(self) -> float:
        """After the first turn, frames without one go at most this often."""
        return max(FALLBACK_MIN_SECONDS, FALLBACK_PERIODS / self.rate())

    def _may_send(self) -> bool:
        return self.config.mode == "firehose" or self.ledger.unanswered() < self.config.in_flight

    async def _send_loop(
        self, ws: aiohttp.ClientWebSocketResponse, receiver: asyncio.Task[None]
    ) -> None:
        began = self.clock.now() + self.phase
        due = began
        while not self._stopping and not receiver.done():
            now = self.clock.now()
            turn = self._turn_owed
            if turn is not None:
                wanted = now
            elif self._last_turn is not None:
                wanted = max(self._last_turn, self._last_sent) + self.fallback_gap()
            else:
                wanted = due
            if wanted > now:
                await self._sleep(wanted - now)
                continue
            if not self._may_send():
                # Like the page: wait for an answer, then send at once if a frame is due.
                # A turn that comes meanwhile is kept and answered then.
                self._changed.clear()
                await self._changed.wait()
                continue
            if turn is None and self._last_turn is not None:
                self.record.fallbacks += 1
            index = self.frames.at(self.first_frame, now - began, len(self.ledger.sent))
            if not await self._send(ws, self.frames.jpegs[index], turn):
                return
            if self._last_turn is not None:
                continue
            # A fixed schedule rather than sleep(period), so the rate does not drift with
            # the time each send takes; but after a stall (no answer, late wake-up) it
            # restarts from now instead of sending a burst to catch up.
            period = 1.0 / self.rate()
            due += period
            now = self.clock.now()
            if due < now - period:
                self.record.skipped += int((now - due) / period)
                due = now

    async def _sleep(self, seconds: float) -> None:
        """asyncio.sleep that stop() can cut short, without a task per nap."""
        loop = asyncio.get_running_loop()
        self._nap = loop.create_future()
        timer = loop.call_later(seconds, _resolve, self._nap)
        try:
            await self._nap
        finally:
            timer.cancel()
            self._nap = None

    def _wake(self) -> None:
        self._changed.set()
        if self._nap is not None:
            _resolve(self._nap)

    async def _send(
        self, ws: aiohttp.ClientWebSocketResponse, jpeg: bytes, turn: float | None
    ) -> bool:
        # Frames are encoded already, so the capture time in the header is also the moment
        # the frame is sent.
        sent = self.clock.now()
        seq = self.ledger.send(sent, turn).seq
        self._turn_owed = None
        self._last_sent = sent
        self._sending = True
        try:
            await ws.send_bytes(FRAME_HEADER.pack(seq, sent * 1000.0) + jpeg)
        except (ConnectionError, aiohttp.ClientError):
            return False  # the receiver sees the close and says why
        finally:
            self._sending = False
        return True

    async def _drain(self, receiver: asyncio.Task[None]) -> None:
        """Waits for the frames still in flight, then for one stats message to reconcile."""
        deadline = self.clock.now() + self.config.drain
        while self.ledger.unanswered() and not receiver.done():
            if not await self._wait_change(deadline):
                return
        # Nothing is sent any more and everything is answered, so the next stats message
        # carries the server's final counts for this session.
        deadline = self.clock.now() + min(self._stats_interval + 1.0, FINAL_STATS_WAIT)
        self.record.server_stats = {}
        while not self.record.server_stats and not receiver.done():
            if not await self._wait_change(deadline):
                return
        self.record.reconciled = self.ledger.reconcile(self.record.server_stats)

    async def _wait_change(self, until: float) -> bool:
        """Waits for a settled frame or a message until `until` on the run clock."""
        left = until - self.clock.now()
        if left <= 0:
            return False
        self._changed.clear()
        try:
            async with asyncio.timeout(left):
                await self._changed.wait()
        except TimeoutError:
            return False
        return True

    # -- receiving -------------------------------------------------------------------------
    async def _receive(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            while True:
                reply = await ws.receive()
                if reply.type is aiohttp.WSMsgType.TEXT:
                    try:
                        self._on_text(parse_message(reply.data))
                    except ValueError:
                        self._fail(f"unreadable message {reply.data[:80]!r}")
                elif reply.type is aiohttp.WSMsgType.ERROR:
                    self._fail(f"connection error: {ws.exception()!r}")
                elif reply.type in ENDS:
                    break
            code = sent_code(ws, reply)
            if not self._closing:
                self.record.close_code = code
                if code == Close.TRY_AGAIN_LATER:
                    self.record.refused = True
                    if reply.type is aiohttp.WSMsgType.CLOSE:
                        self.record.refusal = reply.extra or ""
                else:
                    self._fail(f"server closed the session: {code}")
        finally:
            self._wake()

    def _on_text(self, message: Message) -> None:
        now = self.clock.now()
        if message.type == ServerType.RESULT and message.seq is not None:
            self.ledger.result(message.seq, now, message.body.get("timing_ms"))
            self.answered.set()
        elif message.type == ServerType.TURN:
            self._on_turn(now)
        elif message.type == ServerType.ERROR:
            code = str(message.body.get("code", "error"))
            if message.seq is None:
                self._fail(f"error for no frame: {code}")
            else:
                self.ledger.error(message.seq, now, code)
                self.answered.set()
        elif message.type == ServerType.STATS:
            self.ledger.stats(message.body)
        # Other types are ignored, as protocol v1 asks of clients.
        self._wake()

    def _on_turn(self, now: float) -> None:
        self.record.turns += 1
        if not self.follows_turns():
            return
        self._last_turn = now
        # The server asked before the frame being written reached it: that frame answers.
        if not self._sending:
            self._turn_owed = now

    def _fail(self, reason: str) -> None:
        if not self.record.error:
            self.record.error = reason


def _reason(error: OSError) -> str:
    """ "Connection refused" rather than asyncio's "Connect call failed (...)"."""
    # An SSLError's errno is OpenSSL's error class, not the system's: read as one, a wss://
    # address of a plain-HTTP server or an untrusted certificate said "Operation not
    # permitted".
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        if error.reason == "WRONG_VERSION_NUMBER":
            return "TLS handshake failed: the server does not speak TLS there (a ws:// address?)"
        return f"TLS handshake failed: {error.reason or error.strerror}"
    if error.errno is not None and error.errno > 0:
        return os.strerror(error.errno)
    return error.strerror or str(error)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
