"""One live camera session over a WebSocket: hello, then frames in and results out.

The reader parses each binary frame and offers it to the engine, which keeps it in the
session's one-slot mailbox (a newer frame replaces a waiting one, counted as dropped) until
the worker holding the session's graph takes it. The engine calls back with the result
(or an error naming the seq, or a turn invitation), which goes to the client through the
session's outbox.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from webapp import errors
from webapp.access.socket import Gate
from webapp.analysis.fitness import Workout
from webapp.config import Config
from webapp.engine.jobs import Frame
from webapp.engine.scheduler import Scheduler
from webapp.engine.slot import Slot
from webapp.engine.wire import FrameResult
from webapp.live import logbook, messages
from webapp.live.analysis import SessionAnalysis, open_vmc, result_text, send_workout
from webapp.live.audience import Audience
from webapp.live.counters import Counters
from webapp.live.errors import SessionClosed, TakenOver, reason_bytes
from webapp.live.messages import Control, Hello, parse_control, parse_frame, parse_hello
from webapp.live.options import SessionOptions, exercise_name, parse_options
from webapp.live.outbox import PACE_SECONDS, Outbox, cancelling
from webapp.live.receiver import Receiver, connection_lost
from webapp.live.shared import LiveShared
from webapp.live.watch import paced, serve_watcher
from webapp.live.watch_tokens import Grant
from webapp.metrics import Metrics
from webapp.protocol import ClientType, Close, FrameOutcome

log = logging.getLogger(__name__)
# Errors the session survives, as the code the client sees.
FRAME_ERROR_CODES: dict[type[errors.HolotrackError], str] = {
    errors.NotAnImageError: "bad_frame",
    errors.EmptyInputError: "bad_frame",
    errors.UnsupportedTypeError: "bad_frame",
    errors.TooManyPixelsError: "too_many_pixels",
    errors.ModelError: "model_error",
}

# Why a session its client ended (a close 1000, or an end after a pause) is over.
CLIENT_CLOSED = "the client closed the session"
NO_EXERCISE = 'this session counts no exercise: name one in hello or send {"type": "exercise"}'
# Ends after which the page reconnects by itself (a lost connection, a dead worker, a camera
# that sent nothing for a while, a session at the length limit), or goes on when its person
# says so (a pause): the session's watchers wait for its next one.
RESUMABLE = frozenset(
    {WSCloseCode.ABNORMAL_CLOSURE, Close.INTERNAL, Close.IDLE, Close.PAUSED, Close.RENEW}
)
# Ends from outside the reader after which the client still gets its workout, as after
# one it asked for: a restart's and a dead worker's. Not a takeover's (the next session
# carries the workout on) nor a client's that reads nothing.
TOLD_THE_WORKOUT = frozenset({Close.GOING_AWAY, Close.INTERNAL})


class LiveSession:
    """A session's counters, its engine slot and its outbox; also the engine's sink."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        scheduler: Scheduler,
        config: Config,
        metrics: Metrics,
        shared: LiveShared,
        transport: asyncio.Transport | None,
        gate: Gate,
        client: str,
    ) -> None:
        self.ws = ws
        self.client = client  # its address, as per-client limits count it
        # The access key's check and quotas; an open one without --access-keys.
        self.gate = gate
        self.shared = shared
        self.analysis: SessionAnalysis | None = None
        self.audience: Audience | None = None
        self.token: str | None = None  # the watch token, once issued
        self.ready_sent = False  # so the client has the secret that resumes its watchers
        self.watcher = False
        self.ender = False  # a connection that only ends a paused session (an end message)
        self.transport = transport
        self.scheduler = scheduler
        self.config = config
        self.metrics = metrics
        self.counters = Counters(metrics.frames, also=self.gate.frame)
        self.slot: Slot | None = None
        self.wanted_fps = 0.0
        self.name = "-"
        self.outbox = Outbox(
            ws,
            send_timeout=config.send_timeout,
            stats_interval=config.stats_interval,
            stats=self.stats,
            sent=self._result_sent,
            stuck=self._reader_stuck,
        )
        self._ending: SessionClosed | None = None
        # Held only so the event loop's weak reference is not the closing task's last one.
        self._closer: asyncio.Task[None] | None = None
        self._workout_sent = False
        self._watch_outbox: Outbox | None = None  # a watcher's, which serve_watcher makes
        self.receiver = Receiver(
            ws,
            idle_timeout=config.idle_timeout,
            max_session_seconds=config.max_session_seconds,
            ending=lambda: self._ending,
            holding=lambda: self.slot is not None and self.slot.holds_frame,
        )

    # -- the path of a session ---------------------------------------------------------
    async def run(self, peer: str, refusal: str | None = None) -> None:
        started = time.monotonic()
        close = SessionClosed(Close.NORMAL, CLIENT_CLOSED)
        try:
            if refusal is not None:
                raise SessionClosed(Close.POLICY, refusal)
            self.gate.check_presented()
            first = messages.first_message(await self.receiver.text_first())
            if first.get("type") == ClientType.WATCH:
                close = await self._watch(first)
                return
            if first.get("type") == ClientType.END:
                close = await self._end_paused(first)
                return
            # The key first: a client without one learns nothing more about the server.
            self.gate.identify(first)
            hello = parse_hello(first)
            options = parse_options(
                hello.message, self.shared.vmc_allow, self.shared.exercises, hello.track
            )
            replacing = self.shared.tokens.takes_over(
                options.link_key, options.resume, self.gate.name
            )
            self.gate.admit(replacing)
            self.slot = self._admit(hello, options, replacing)
            self.name = self.slot.id
            self.metrics.sessions_opened.inc()
            self.metrics.sessions_live.inc()
            logbook.started(self.name, hello.track, hello.fps, peer)
            await self._start(self.slot, hello, options)
            await self._read_frames(self.slot)
        except SessionClosed as exc:
            close = exc
        except asyncio.CancelledError:
            close = connection_lost(self.ws)
            raise
        except Exception:
            # A bug, not the client's doing: said as such, and logged once with its trace.
            log.exception("%s failed", self.name)
            close = SessionClosed(Close.INTERNAL, "the server failed on this session; see its log")
        finally:
            close = self._ending or close
            self._release(close)
            try:
                await self._say_goodbye(close)
            finally:
                # Logged even when the goodbye is cancelled (the handler of a lost connection).
                # The outbox has stopped and the slot is closed: nothing pending comes now.
                self.counters.settle()
                summary = None if self.analysis is None else self.analysis.summary()
                logbook.ended(
                    self.name,
                    close,
                    time.monotonic() - started,
                    self.counters,
                    summary,
                    peer,
                    self.shared.refusals,
                )

    async def _start(self, slot: Slot, hello: Hello, options: SessionOptions) -> None:
        """Analysis, watchers and VMC for an admitted session, then ready."""
        vmc = await open_vmc(options.vmc)
        try:
            grant = self._watch_grant(options)
        except SessionClosed:
            if vmc is not None:
                vmc.close()  # it sent nothing: no rest pose to send
            raise
        if vmc is not None:
            vmc.on_first_rig = functools.partial(self.shared.vmc_rest.taken, options.vmc, vmc)
        self.audience, self.token = grant.audience, grant.token
        self.audience.attach(self.outbox.put_control)
        self.analysis = SessionAnalysis(
            options, self.shared.exercises, vmc, grant.workout, grant.audience
        )
        fps = self.scheduler.granted_fps(slot, hello.fps)
        ready = messages.ready(
            slot.id,
            hello,
            fps,
            self.config,
            grant.token,
            grant.resume,
            grant.audience.avatar,
            resumed=grant.taken_over,
        )
        try:
            await self.ws.send_json(ready)
        except ConnectionError:
            # It said hello and hung up at once: nobody to tell, nothing went wrong here.
            raise SessionClosed(Close.NORMAL, "the client left before ready") from None
        self.ready_sent = True
        self.outbox.start(self.name)

    def _watch_grant(self, options: SessionOptions) -> Grant:
        """The watch link: the page's kept link when the hello names its key, else the last
        session's link and watchers when the hello resumes it in time, else a new link."""
        tokens, key = self.shared.tokens, self.gate.name
        grant: Grant | None = None
        if options.link_key is not None:
            grant = tokens.claim(
                options.link_key, self.name, key, self.end, self._hand_on, options.resume
            )
        elif options.resume is not None:
            grant = tokens.resume(options.resume, self.name, key, self.end, self._hand_on)
        if grant is None:
            return tokens.issue(Audience(self.name, key=key), self.end, self._hand_on)
        if grant.taken_over:
            self.metrics.sessions_resumed.labels(grant.after).inc()
            log.info(
                "%s keeps its last session's watch link and %d watchers%s",
                self.name,
                len(grant.audience.watchers),
                "" if grant.workout is None else ", and its workout",
            )
        return grant

    def _hand_on(self) -> Workout | None:
        """The workout, for the camera's next session; this one counts no more (a session
        not yet found dead may still have a frame in a worker)."""
        if self.analysis is None:
            return None
        workout, self.analysis.workout = self.analysis.workout, None
        return workout

    def _admit(self, hello: Hello, options: SessionOptions, replacing: bool) -> Slot:
        self.wanted_fps = hello.fps
        try:
            return self.scheduler.open_session(
                hello.track, self, hello.fps, options.avatar.blendshapes, replacing
            )
        except errors.CapacityError as exc:
            # Out of room (or shutting down): not a key at its own quota, also 1013, which
            # more replicas would not change (holotrack_key_refusals_total counts those).
            self.metrics.sessions_refused.inc()
            raise SessionClosed(Close.TRY_AGAIN_LATER, exc.detail) from None

    async def _read_frames(self, slot: Slot) -> None:
        while True:
            msg = await self.receiver.next()
            if msg.type is WSMsgType.TEXT:
                self._control(parse_control(str(msg.data)))
                # Messages already read wait in aiohttp's queue and are had without a pause:
                # every other session and request gets its turn between controls.
                await asyncio.sleep(0)
                continue
            if msg.type is not WSMsgType.BINARY:
                if msg.type is WSMsgType.CLOSE and msg.data == Close.PAUSED:
                    raise SessionClosed(Close.PAUSED, "its camera paused")
                return
            frame = parse_frame(msg.data, self.config.max_frame_bytes)
            self.counters.add(FrameOutcome.RECEIVED)
            if not frame.data:
                self._frame_error(frame, "bad_frame", "the frame has no image after its header")
                continue
            if self.scheduler.offer(slot, frame) is not None:
                self.counters.add(FrameOutcome.DROPPED)

    def _release(self, close: SessionClosed) -> None:
        """Everything the session holds, given back at once: nothing here waits, so a
        cancelled handler cannot leave a place, a token or a count behind."""
        self.gate.release()
        self._let_go_of_camera()
        may_come_back = self.ready_sent and close.code in RESUMABLE
        if self.token is not None:
            if may_come_back:
                self.shared.tokens.rest(
                    self.token, self.end, close.reason, self.client, int(close.code)
                )
            else:
                self.shared.tokens.revoke(self.token, self.end, close.reason)
        if self.analysis is not None:
            # Taken over, its receivers are the next session's to move: they rest only if
            # it sends them nothing, as after a pause.
            goes_on = may_come_back or isinstance(close, TakenOver)
            self.analysis.close(self.shared.vmc_rest if goes_on else None)
        if self.watcher or self.ender:
            return
        if self.slot is not None:
            if self.scheduler.close_session(self.slot) is not None:
                self.counters.add(FrameOutcome.DROPPED)
            self.metrics.sessions_live.dec()
        self.metrics.sessions_closed.labels(str(int(close.code))).inc()

    async def _say_goodbye(self, close: SessionClosed) -> None:
        """The workout, last, then the close frame."""
        await self._send_workout()
        await self.outbox.stop()
        await self._close_socket(close)

    async def _send_workout(self) -> None:
        # Once: the reader's goodbye and an end from outside may both come this way.
        if self.analysis is None or self._workout_sent:
            return
        self._workout_sent = True
        await send_workout(self.ws, self.analysis.summary(), self.config.send_timeout)

    # -- the engine's sink -------------------------------------------------------------
    def graph_built(self) -> None:
        """Nothing to do: its frames waited in its mailbox meanwhile, and its first turn
        says the rest."""

    def frame_done(self, frame: Frame, result: FrameResult) -> None:
        self.receiver.answered()
        track = self.slot.track if self.slot else "-"
        self.metrics.wait.labels(track).observe(frame.started - frame.received)
        self.metrics.inference.labels(track).observe(result.inference_ms / 1000.0)
        text = result_text(self.analysis, frame, result, self.name)
        # An ending session's watchers may already be its camera's next session's.
        if self.audience is not None and self._ending is None:
            self.audience.put(frame, text)
            self._tell_workout()
            said = None if self.analysis is None else self.analysis.emotion_news()
            if said is not None:
                self.outbox.put_control(said)
                self.audience.tell(said)
        if self.outbox.put_result(frame, text):
            # The client had not read the previous result yet: the newest one won.
            self.counters.add(FrameOutcome.DROPPED)

    def frame_failed(self, frame: Frame, error: errors.HolotrackError) -> None:
        self.receiver.answered()
        self._frame_error(frame, FRAME_ERROR_CODES.get(type(error), "model_error"), error.detail)

    def turn(self) -> None:
        self.outbox.put_control(messages.TURN)

    def lost(self, error: errors.HolotrackError) -> None:
        self.end(SessionClosed(Close.INTERNAL, error.detail))

    def end(self, close: SessionClosed) -> None:
        """Ends the session from outside its reader (worker death, shutdown, a stuck client)."""
        if self._ending is None:
            self._ending = close
            self._let_go_of_camera()
            self._closer = asyncio.create_task(self._close_from_outside(close))

    def _let_go_of_camera(self) -> None:
        # At once on an end from outside too: a code claimed meanwhile would go into an
        # outbox that sends nothing more.
        if self.audience is not None:
            self.audience.detach(self.outbox.put_control)

    async def _close_from_outside(self, close: SessionClosed) -> None:
        if self._watch_outbox is not None and close.code == Close.NORMAL:
            # The watched session ended: what it said last goes before the close.
            await self._watch_outbox.finish()
        if close.code in TOLD_THE_WORKOUT:
            # No result after it: the writer stops first.
            await self.outbox.stop()
            await self._send_workout()
        await self._close_socket(close)

    # -- the outbox's callbacks --------------------------------------------------------
    def stats(self) -> str:
        c = self.counters
        fps = self.scheduler.granted_fps(self.slot, self.wanted_fps) if self.slot else 0.0
        reps = None if self.analysis is None else self.analysis.reps()
        return messages.stats(c.received, c.processed, c.dropped, c.errors, fps, reps)

    def _result_sent(self, frame: Frame) -> None:
        self.counters.add(FrameOutcome.PROCESSED)
        track = self.slot.track if self.slot else "-"
        self.metrics.latency.labels(track).observe(time.perf_counter() - frame.received)

    def _reader_stuck(self) -> None:
        limit = errors.plain_seconds(self.config.send_timeout)
        self.end(SessionClosed(Close.POLICY, f"the client read no result for {limit} s"))

    # -- beyond frames: controls (workout, calibration, emotion), watchers ---------------------
    def _control(self, control: Control) -> None:
        if self.analysis is None:
            return
        if control.type is ClientType.CALIBRATE:
            self.outbox.put_control(self.analysis.calibrate(control))
            return
        if control.type is ClientType.EMOTION and control.emotion is not None:
            self.outbox.put_control(self.analysis.hold(control.emotion))
            return
        if control.type is ClientType.EXERCISE:
            self.analysis.switch(exercise_name(control.name, self.shared.exercises))
        if control.type in (ClientType.EXERCISE, ClientType.TARGET):
            self.analysis.aim(control.target)
        summary = self.analysis.summary()
        if summary is None:
            self.outbox.put_control(messages.error("no_exercise", NO_EXERCISE, None))
        else:
            self.outbox.put_control(messages.workout(summary))
            # A coach sees a new set or target now, not at the camera's next frame.
            if self._ending is None:
                self._tell_workout()

    def _tell_workout(self) -> None:
        """The watchers get the workout when it has moved on since they last did."""
        news = None if self.analysis is None else self.analysis.news()
        if news is not None and self.audience is not None:
            self.audience.put_workout(messages.workout(news))

    async def _watch(self, first: Mapping[str, Any]) -> SessionClosed:
        """This connection watches another session instead of sending frames."""
        self.watcher = True
        self.name = "watcher"
        self.gate.check_offered(first)
        watched = await serve_watcher(
            self.ws,
            first,
            self.shared.tokens,
            max_watchers=self.config.max_watchers,
            send_timeout=self.config.send_timeout,
            end=self.end,
            text=self.receiver.text,
            admit=self.gate.watcher,
            found=self._watching,
            unsent=paced(self.transport),
            opened=self._watch_opened,
        )
        return SessionClosed(Close.NORMAL, f"the watcher of {watched} left")

    def _watch_opened(self, outbox: Outbox) -> None:
        self._watch_outbox = outbox

    def _watching(self, session: str) -> None:
        # Its log lines name the session it watches, as its outbox's task does.
        self.name = f"watch-{session}"

    async def _end_paused(self, first: Mapping[str, Any]) -> SessionClosed:
        """This connection ends its camera's paused session for good (the page's Stop while
        paused has no connection to close with 1000): the watchers now, not after the
        grace, and the workout back to the camera, last, for its log."""
        self.ender = True
        self.name = "ender"
        secret = messages.parse_end(first)
        session, workout = self.shared.tokens.end(secret, CLIENT_CLOSED)
        log.info("%s ended for good by its camera after a pause", session)
        if workout is not None:
            await send_workout(self.ws, workout.summary(), self.config.send_timeout)
        return SessionClosed(Close.NORMAL, f"{session} ended")

    # -- details -----------------------------------------------------------------------
    def _frame_error(self, frame: Frame, code: str, message: str) -> None:
        self.counters.add(FrameOutcome.ERRORS)
        self.outbox.put_control(messages.error(code, message, frame.seq))

    async def _close_socket(self, close: SessionClosed) -> None:
        """Sends the close frame; a peer too stuck to take even that is cut off.

        aiohttp has already called the transport's graceful close when its close fails,
        and that waits forever to flush to a peer that does not read: only abort frees
        the socket and its buffers."""
        if self.ws.closed:
            return
        try:
            async with asyncio.timeout(self.config.send_timeout):
                await self.ws.close(code=close.code, message=reason_bytes(close.reason))
                # A watcher's outbox keeps its buffer short of aiohttp's limit, so a close
                # to one that reads nothing goes into that buffer without waiting; the
                # graceful close would then wait forever to flush it.
                while self.transport is not None:
                    if not self.transport.get_write_buffer_size():
                        break
                    await asyncio.sleep(PACE_SECONDS)
        except asyncio.CancelledError:
            self._abort()
            if cancelling():
                raise
        except (TimeoutError, ConnectionError, RuntimeError):
            self._abort()

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
