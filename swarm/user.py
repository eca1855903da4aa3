"""One simulated browser, doing what static/session.js does: hello, then a frame on each
`turn` the server sends (before the first turn, or with a server that sends none, on a fixed
schedule at the granted rate), never more than `in_flight` without an answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from swarm.config import SwarmConfig
from swarm.frames import FrameSet
from swarm.records import FrameRecord, Outcome, SessionRecord
from webapp.protocol import FRAME_HEADER, VERSION, ClientType, Close, ServerType

# A result carries ~17 KB of landmarks the swarm never looks at. Reading type and seq from
# the head spares a full JSON parse per result, which would make the swarm the bottleneck
# at hundreds of sessions; anything not shaped exactly like this falls back to json.loads.
_RESULT_HEAD = re.compile(r'\{\s*"type"\s*:\s*"result"\s*,\s*"seq"\s*:\s*(\d+)\s*[,}]')
# The server writes timing_ms last; read it from the tail, or go without.
_RESULT_TIMING = re.compile(r'"timing_ms"\s*:\s*(\{[^{}]*\})\s*\}\s*$')
TIMING_TAIL = 240
# Counters a stats message carries that the swarm can check against its own records.
COUNTERS = ("received", "processed", "dropped", "errors", "pending")
# The protocol keeps at most one frame waiting and one running per session.
MAX_PENDING = 2
# After the first turn, a frame goes without one only when none has come for this long.
FALLBACK_MIN_SECONDS = 1.0
FALLBACK_PERIODS = 2.0
# Longest wait for the stats message that closes the books on a session, whatever
# stats_interval the server announces.
FINAL_STATS_WAIT = 5.0


class Clock:
    """One monotonic clock for the whole run; records keep seconds since its origin."""

    def __init__(self) -> None:
        self.origin = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - self.origin


@dataclass(frozen=True)
class Message:
    type: str
    seq: int | None
    body: dict[str, Any]


def parse_message(text: str) -> Message:
    head = _RESULT_HEAD.match(text)
    if head is not None:
        timing = _RESULT_TIMING.search(text, max(0, len(text) - TIMING_TAIL))
        body = {"timing_ms": json.loads(timing.group(1))} if timing is not None else {}
        return Message(ServerType.RESULT, int(head.group(1)), body)
    body = json.loads(text)
    if not isinstance(body, dict):
        raise ValueError("a message that is not a JSON object")
    seq = body.get("seq")
    return Message(str(body.get("type")), seq if isinstance(seq, int) else None, body)


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
        self.sent: list[FrameRecord] = []
        self.results = 0
        self.errors = 0
        self.dropped = 0
        # Handshake over: ready, refused or failed. The runner starts a step's clock only
        # when every session has got this far.
        self.settled = asyncio.Event()
        self._outstanding: dict[int, FrameRecord] = {}
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
            self._settle_rest()
            self.record.closed = self.clock.now()
            self.settled.set()

    async def _connect(self) -> aiohttp.ClientWebSocketResponse | None:
        ws: aiohttp.ClientWebSocketResponse | None = None
        hello = {
            "type": ClientType.HELLO,
            "version": VERSION,
            "track": self.config.track,
            "fps": self.config.fps,
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
            else:
                self.record.error = f"handshake refused with HTTP {exc.status}"
            return None
        except TimeoutError:
            self.record.error = f"no ready within {self.config.connect_timeout:g} s"
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
                self.record.granted_fps = _number(message.body.get("fps"))
                self._stats_interval = _number(message.body.get("stats_interval")) or 2.0
                return True
            self.record.error = f"expected ready, got {reply.data[:80]!r}"
            return False
        if reply.type is aiohttp.WSMsgType.CLOSE:
            self.record.close_code = int(reply.data)
            # 1013 at hello is the server saying it is full: a refusal, not an error.
            if reply.data == Close.TRY_AGAIN_LATER:
                self.record.refused = True
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
        return self.config.mode == "firehose" or len(self._outstanding) < self.config.in_flight

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
            index = self.frames.at(self.first_frame, now - began, len(self.sent))
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
        # Seqs start at 1, as the page's do; frames are encoded already, so the capture
        # time in the header is also the moment the frame is sent.
        seq = len(self.sent) + 1
        sent = self.clock.now()
        record = FrameRecord(self.record.step, self.record.session, seq, sent, turn=turn)
        self.sent.append(record)
        self._outstanding[seq] = record
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
        while self._outstanding and not receiver.done():
            if not await self._wait_change(deadline):
                return
        # Nothing is sent any more and everything is answered, so the next stats message
        # carries the server's final counts for this session.
        deadline = self.clock.now() + min(self._stats_interval + 1.0, FINAL_STATS_WAIT)
        self.record.server_stats = {}
        while not self.record.server_stats and not receiver.done():
            if not await self._wait_change(deadline):
                return
        self.record.reconciled = self._reconcile(self.record.server_stats)

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
            async for reply in ws:
                if reply.type is aiohttp.WSMsgType.TEXT:
                    try:
                        self._on_text(parse_message(reply.data))
                    except ValueError:
                        self._fail(f"unreadable message {reply.data[:80]!r}")
                elif reply.type is aiohttp.WSMsgType.ERROR:
                    self._fail(f"connection error: {ws.exception()!r}")
            if not self._closing:
                self.record.close_code = ws.close_code
                if ws.close_code == Close.TRY_AGAIN_LATER:
                    self.record.refused = True
                else:
                    self._fail(f"server closed the session: {ws.close_code}")
        finally:
            self._wake()

    def _on_text(self, message: Message) -> None:
        now = self.clock.now()
        if message.type == ServerType.RESULT and message.seq is not None:
            self._settle_result(message.seq, now, message.body.get("timing_ms"))
        elif message.type == ServerType.TURN:
            self._on_turn(now)
        elif message.type == ServerType.ERROR:
            code = str(message.body.get("code", "error"))
            if message.seq is None:
                self._fail(f"error for no frame: {code}")
            else:
                self._settle_error(message.seq, now, code)
        elif message.type == ServerType.STATS:
            self._on_stats(message.body)
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

    def _settle_result(self, seq: int, now: float, timing: object = None) -> None:
        record = self._outstanding.get(seq)
        if record is None:
            record = self._settle_late(seq, now, Outcome.RESULT, "")
            if record is not None:
                _add_timing(record, timing)
            return
        # Results come back in order and only the newest waiting frame survives, so frames
        # sent before this one and still unanswered were replaced and dropped. (Errors may
        # overtake older results, so only a result settles the frames before it.)
        while True:
            first_seq, first = next(iter(self._outstanding.items()))
            del self._outstanding[first_seq]
            if first is record:
                break
            first.outcome, first.detail = Outcome.DROPPED, "superseded"
            self.dropped += 1
        record.received, record.outcome = now, Outcome.RESULT
        _add_timing(record, timing)
        self.results += 1

    def _settle_error(self, seq: int, now: float, code: str) -> None:
        record = self._outstanding.pop(seq, None)
        if record is None:
            self._settle_late(seq, now, Outcome.ERROR, code)
            return
        record.received, record.outcome, record.detail = now, Outcome.ERROR, code
        self.errors += 1

    def _settle_late(
        self, seq: int, now: float, outcome: Outcome, detail: str
    ) -> FrameRecord | None:
        """An answer for a frame already taken as superseded: the record follows the server."""
        record = self.sent[seq - 1] if 1 <= seq <= len(self.sent) else None
        if record is None or record.outcome is not Outcome.DROPPED:
            self.record.unmatched += 1
            return None
        self.dropped -= 1
        if outcome is Outcome.RESULT:
            self.results += 1
        else:
            self.errors += 1
        record.received, record.outcome, record.detail = now, outcome, detail
        return record

    def _on_stats(self, body: dict[str, Any]) -> None:
        counters = {k: float(v) for k, v in body.items() if isinstance(v, int | float)}
        if counters.get("fps"):
            self.record.granted_fps = counters["fps"]
        self.record.server_stats = counters
        # Checks that hold at any moment: the server cannot have received more than was
        # sent, nor processed more than it answered (a result is written before the stats
        # that count it), and keeps at most two frames pending.
        pending = counters.get("pending", 0.0)
        if (
            counters.get("received", 0.0) > len(self.sent)
            or counters.get("processed", 0.0) > self.results
            or not 0 <= pending <= MAX_PENDING
        ):
            self.record.stats_mismatches += 1

    def _reconcile(self, server: dict[str, float]) -> bool:
        """Once all is answered, the server's counts and ours must be the same numbers."""
        ours = {
            "received": len(self.sent),
            "processed": self.results,
            "dropped": self.dropped,
            "errors": self.errors,
            "pending": 0,
        }
        return all(server.get(name) == ours[name] for name in COUNTERS)

    def _fail(self, reason: str) -> None:
        if not self.record.error:
            self.record.error = reason

    def _settle_rest(self) -> None:
        """Frames unanswered when the session ends: the server counts them as dropped."""
        detail = "unanswered" if not self.record.error else "session failed"
        for record in self._outstanding.values():
            record.outcome, record.detail = Outcome.DROPPED, detail
            self.dropped += 1
        self._outstanding.clear()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _add_timing(record: FrameRecord, timing: object) -> None:
    if isinstance(timing, dict):
        record.wait_ms = _number(timing.get("wait"))
        record.decode_ms = _number(timing.get("decode"))
        record.inference_ms = _number(timing.get("inference"))


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
