"""Locust scenarios for Holotrack: still images on POST /predict, live sessions on /ws.

    .venv/bin/locust -f locustfile.py --host http://127.0.0.1:8080                # web UI on :8089
    .venv/bin/locust -f locustfile.py --headless -u 4 -r 4 -t 60s --host http://127.0.0.1:8080 \\
        LiveUser --live-track pose --live-fps 10

`PredictUser` is the seed article's scenario (bench/reference_locustfile.py): it uploads a
photo of a person (every .jpg/.jpeg/.png in media/, or matching the glob $PREDICT_IMAGES)
as multipart field `file`, expects `landmarks` in the answer and waits 1 to 3 s.

`LiveUser` is one camera session in protocol v1 (docs/protocol.md): hello, ready, then
frames of the ASL video in media/ cut as the page sends them (480 px wide, JPEG quality
70), one in flight, paced to the fps the server grants in `ready` and `stats` (at most
--live-fps); `turn` messages are ignored, as a client written from the protocol's first
pages would. Each frame is one Locust request named "frame <track>" whose response time is
capture to result, so Locust's charts and percentiles are the latency a person sees. The
handshake is a request named "session <track>" (connect to ready); a refusal (close 1013,
or HTTP 503 from a proxy) is its failure, and the user tries again a second later.

Run from the repository's root: the scenarios read media/ and the protocol's constants.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import json
import os
import random
import struct
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import gevent
import websocket
from locust import HttpUser, User, between, events, task
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment

from swarm.config import default_source, media_dir
from swarm.frames import FrameSet, SourceError, load_frames
from webapp.protocol import FRAME_HEADER, VERSION, ClientType, ServerType

# As the page sends frames, and as many as the swarm cuts, so both meet the same frames.
WIDTH, QUALITY, MAX_FRAMES = 480, 70, 300
# Seconds a session may take to connect and answer its hello, and a frame its result.
CONNECT_TIMEOUT = 15.0
RESULT_TIMEOUT = 10.0
RETRY_SECONDS = 1.0
STILL_SUFFIXES = (".jpg", ".jpeg", ".png")
# The rates a hello may ask for (docs/protocol.md); the server closes any other with 4001.
MIN_FPS, MAX_FPS = 0.5, 60.0


def _options(parser: LocustArgumentParser) -> None:
    parser.add_argument(
        "--live-track",
        choices=("holistic", "pose"),
        default="holistic",
        env_var="LOCUST_LIVE_TRACK",
        help="LiveUser: what each session asks for",
    )
    parser.add_argument(
        "--live-fps",
        type=float,
        default=15.0,
        env_var="LOCUST_LIVE_FPS",
        help="LiveUser: frames/s each session asks for (0.5 to 60)",
    )
    parser.add_argument(
        "--live-source",
        default="",
        env_var="LOCUST_LIVE_SOURCE",
        help="LiveUser: video file or image folder to cut frames from (default: media/'s ASL "
        "video)",
    )


def _preload(environment: Environment, **_: Any) -> None:
    """Cuts the frames before the run's clock starts: it takes seconds of CPU (12 s for 300
    frames on a loaded two-core machine), which would otherwise come out of `-t`."""
    if LiveUser in environment.user_classes:
        fps = getattr(environment.parsed_options, "live_fps", 15.0)
        # Written so that NaN fails too. Outside the range every session was closed 4001 at
        # its hello and tried again each second for the whole run: a failed run, not a load.
        if not MIN_FPS <= fps <= MAX_FPS:
            raise SystemExit(
                f"locustfile: --live-fps must be {MIN_FPS:g} to {MAX_FPS:g}, got {fps:g}"
            )
        source = getattr(environment.parsed_options, "live_source", "")
        try:
            live_frames(source)
        except SourceError as exc:
            # Locust prints a handler's exception as a traceback and runs on with no frames.
            raise SystemExit(f"locustfile: --live-source: {exc}") from None
        # gevent's loop caches "now" between iterations, and this blocked it for seconds:
        # without a refresh, the timer of `-t` would start that much in the past.
        gevent.get_hub().loop.update_now()


# Locust's EventHook.add_listener has no annotations.
events.init_command_line_parser.add_listener(_options)  # type: ignore[no-untyped-call]
events.init.add_listener(_preload)  # type: ignore[no-untyped-call]


@functools.cache
def live_frames(source: str) -> FrameSet:
    return load_frames(source or default_source(), WIDTH, QUALITY, MAX_FRAMES)


@functools.cache
def stills() -> tuple[bytes, ...]:
    """Every photo in $PREDICT_IMAGES (a glob), else in media/: the reference's rule."""
    pattern = os.environ.get("PREDICT_IMAGES", str(media_dir() / "*"))
    paths = sorted(p for p in glob.glob(pattern) if p.lower().endswith(STILL_SUFFIXES))
    if not paths:
        raise SystemExit(f"locustfile: no .jpg, .jpeg or .png matches {pattern}")
    return tuple(Path(p).read_bytes() for p in paths)


class BadHost(ValueError):
    """--host is not an http:// or https:// address, so there is no /ws to reach."""


def ws_url(host: str) -> str:
    """The /ws endpoint of the server at `host` (http:// becomes ws://, https:// wss://)."""
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadHost(f"--host wants http://HOST:PORT or https://HOST:PORT, got {host!r}")
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws", "", ""))


class PredictUser(HttpUser):
    wait_time = between(1, 3)

    @task
    def upload_image(self) -> None:
        data = random.choice(stills())
        with self.client.post(
            "/predict",
            files={"file": ("test.jpg", data, "image/jpeg")},
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            try:
                body = response.json()
            except ValueError as exc:
                response.failure(f"not JSON: {exc}")
                return
            if "landmarks" not in body:
                response.failure("no landmarks in the answer")


class SessionClosed(Exception):
    """The server closed the session; 1013 is a refusal (full, or shutting down)."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"closed {code}: {reason}" if code else "closed without a code")
        self.code = code


class FrameFailed(Exception):
    """The server answered a frame with an error message."""


class LiveUser(User):
    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.track: str = getattr(options, "live_track", "holistic")
        self.asked_fps: float = getattr(options, "live_fps", 15.0)
        self.frames = live_frames(getattr(options, "live_source", ""))
        self.ws: websocket.WebSocket | None = None
        self.fps = self.asked_fps
        self.seq = 0
        self.first_frame = random.randrange(len(self.frames))
        self.opened = 0.0
        self.due = 0.0

    def on_stop(self) -> None:
        self._close()

    def wait_time(self) -> float:
        """Until the next frame is due at the granted rate (Locust stops a user while it waits)."""
        return max(0.0, self.due - time.perf_counter())

    @task
    def frame(self) -> None:
        if self.ws is None:
            self._open()
            return
        seq = self.seq
        self.seq = (self.seq + 1) % 2**32
        index = self.frames.at(self.first_frame, time.perf_counter() - self.opened, seq)
        captured = time.perf_counter()
        self.due = captured + 1.0 / self.fps
        name = f"frame {self.track}"
        try:
            self.ws.send_binary(
                FRAME_HEADER.pack(seq, captured * 1000.0) + self.frames.jpegs[index]
            )
            while True:
                message, size, received = self._receive()
                kind = message.get("type")
                if kind == ServerType.STATS and message.get("fps"):
                    self.fps = min(self.asked_fps, float(message["fps"]))
                elif kind == ServerType.RESULT and message.get("seq") == seq:
                    self._fire(name, received - captured, size)
                    return
                elif kind == ServerType.ERROR and message.get("seq") == seq:
                    error = FrameFailed(f"{message.get('code')}: {message.get('message')}")
                    self._fire(name, received - captured, size, error)
                    return
        except (SessionClosed, websocket.WebSocketException, OSError) as exc:
            self._fire(name, time.perf_counter() - captured, 0, exc)
            self._close()
            self.due = time.perf_counter() + RETRY_SECONDS

    def _open(self) -> None:
        started = time.perf_counter()
        name = f"session {self.track}"
        hello = {"type": ClientType.HELLO, "version": VERSION, "track": self.track}
        try:
            self.ws = websocket.create_connection(ws_url(self.host or ""), timeout=CONNECT_TIMEOUT)
            self.ws.send(json.dumps({**hello, "fps": self.asked_fps}))
            while True:
                message, size, received = self._receive()
                if message.get("type") == ServerType.READY:
                    break
        # BadHost too: uncaught, a host typed without http:// (or none given) raised at
        # once with no wait before the next try, thousands of tracebacks a second and not
        # one failed request in the stats.
        except (SessionClosed, websocket.WebSocketException, OSError, BadHost) as exc:
            self._fire(name, time.perf_counter() - started, 0, exc)
            self._close()
            self.due = time.perf_counter() + RETRY_SECONDS
            return
        self._fire(name, received - started, size)
        self.ws.settimeout(RESULT_TIMEOUT)
        self.fps = min(self.asked_fps, float(message.get("fps") or self.asked_fps))
        self.opened = self.due = received

    def _receive(self) -> tuple[dict[str, Any], int, float]:
        """The next text message, its size and when it came; SessionClosed at a close."""
        assert self.ws is not None
        while True:
            opcode, data = self.ws.recv_data()
            received = time.perf_counter()
            if opcode == websocket.ABNF.OPCODE_TEXT:
                message: dict[str, Any] = json.loads(data)
                return message, len(data), received
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
                raise SessionClosed(code, data[2:].decode("utf-8", "replace"))

    def _close(self) -> None:
        if self.ws is not None:
            ws, self.ws = self.ws, None
            # Already gone: nothing left to tell the server.
            with contextlib.suppress(websocket.WebSocketException, OSError):
                ws.close()

    def _fire(
        self, name: str, seconds: float, size: int, exception: Exception | None = None
    ) -> None:
        self.environment.events.request.fire(
            request_type="WS",
            name=name,
            response_time=seconds * 1000.0,
            response_length=size,
            exception=exception,
            context={},
        )
