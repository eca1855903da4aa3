"""The inference worker: a child process that owns MediaPipe graphs and runs one job at a time.

It reads `wire.Request`s from stdin and writes `wire.Reply`s to stdout. A crash here (even
a native one) costs only the sessions whose graphs live here.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from webapp.engine import imaging, pipelined, wire
from webapp.engine.graphs import GraphPool
from webapp.engine.inference import StillEngine, TrackEngine, connections, warm
from webapp.errors import HolotrackError

log = logging.getLogger("webapp.worker")
# How often a quiet worker looks for graphs that stopped on an error with frames inside.
GRAPH_CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class Through:
    """A frame added with `overlap` came out of its graph; posted from one of its threads."""

    job_id: int
    outputs: pipelined.Outputs


@dataclass
class _Flight:
    session: str
    engine: TrackEngine
    started: float
    decoded: float
    size: tuple[int, int]


class Worker:
    """Stills and frames run on the main thread, one at a time; graphs are opened, and
    counted, on the pool's preparer thread, which answers through `send` itself.

    A frame sent with `overlap` is only decoded and added to its graph here; when it is
    through, `post` hands a `Through` to the main loop, which answers it with `through`.
    """

    def __init__(
        self, send: Callable[[wire.Reply], None], post: Callable[[Through], None] | None = None
    ) -> None:
        self._send = send
        self._post = post
        self._flights: dict[int, _Flight] = {}
        self._ending: dict[str, int] = {}  # EndGraph's job id, held until its frames are out
        self.still = StillEngine()
        warm(self.still)
        self.pool = GraphPool()

    def handle(self, request: wire.Request) -> wire.Reply | None:
        """The reply, or None when the preparer thread will send it."""
        job_id, job = request.job_id, request.job
        try:
            match job:
                case wire.RunStill(data=data, max_pixels=max_pixels):
                    return wire.Done(job_id, self.predict(data, max_pixels))
                case wire.RunFrame(overlap=True) if self._post is not None:
                    self._add_frame(job_id, job)
                case wire.RunFrame():
                    return wire.Done(job_id, self.frame(job))
                case wire.OpenGraph(session=session, track=track):
                    self._later(job_id, self.pool.open, session, track)
                case wire.EndGraph(session=session):
                    if self._in_flight(session):
                        self._ending[session] = job_id  # a graph is reset only once idle
                    else:
                        self._end(job_id, session)
                case wire.CountGraphs():
                    self._later(job_id, self.pool.counts)
                case _:
                    return wire.Failed(job_id, "internal", f"unknown job {job!r}")
        except Exception as exc:  # every failure goes back to the caller, never kills the loop
            return _failure(job_id, type(job).__name__, exc)
        return None

    def _end(self, job_id: int, session: str) -> None:
        self.pool.end(session)
        # Counted after the recycling just queued, so graphs of ended sessions are counted
        # where they end up.
        self._later(job_id, self.pool.counts)

    def _in_flight(self, session: str) -> bool:
        return any(flight.session == session for flight in self._flights.values())

    def _add_frame(self, job_id: int, job: wire.RunFrame) -> None:
        started = time.perf_counter()
        rgb = imaging.decode(job.data, job.max_pixels)
        decoded = time.perf_counter()
        engine = self.pool.get(job.session, job.track)
        size = (int(rgb.shape[1]), int(rgb.shape[0]))
        self._flights[job_id] = _Flight(job.session, engine, started, decoded, size)
        post = self._post
        assert post is not None
        try:
            engine.submit(rgb, job.capture_ms, lambda outputs: post(Through(job_id, outputs)))
        except Exception as exc:
            # The graph failed: the frames already in it will never come out either.
            for other, flight in list(self._flights.items()):
                if flight.engine is engine:
                    del self._flights[other]
                    self._send(_failure(other, "RunFrame", exc))
            self._settle(job.session)

    def through(self, event: Through) -> None:
        """Answers a frame added with `overlap`, now that its graph is done with it."""
        flight = self._flights.pop(event.job_id, None)
        if flight is None:
            return
        try:
            result = wire.FrameResult(
                graphs=self.pool.counts().graphs,
                width=flight.size[0],
                height=flight.size[1],
                landmarks=flight.engine.landmarks(event.outputs),
                decode_ms=(flight.decoded - flight.started) * 1000.0,
                inference_ms=(time.perf_counter() - flight.decoded) * 1000.0,
            )
            self._send(wire.Done(event.job_id, result))
        except Exception as exc:
            self._send(_failure(event.job_id, "RunFrame", exc))
        self._settle(flight.session)

    def check_graphs(self) -> None:
        """Frames in a graph that stopped on an error are answered with it, not awaited."""
        for job_id, flight in list(self._flights.items()):
            if job_id in self._flights and flight.engine.failed():
                error = RuntimeError(flight.engine.error())
                for other, lost in list(self._flights.items()):
                    if lost.engine is flight.engine:
                        del self._flights[other]
                        self._send(_failure(other, "RunFrame", error))
                self._settle(flight.session)

    def _settle(self, session: str) -> None:
        """An EndGraph that waited for this session's frames runs once the last is out."""
        if session in self._ending and not self._in_flight(session):
            self._end(self._ending.pop(session), session)

    def _later(self, job_id: int, work: Callable[..., Any], *args: Any) -> None:
        self.pool.prepare(self._answer, job_id, work, *args)

    def _answer(self, job_id: int, work: Callable[..., Any], *args: Any) -> None:
        try:
            self._send(wire.Done(job_id, work(*args)))
        except Exception as exc:
            self._send(_failure(job_id, work.__name__, exc))

    def predict(self, data: bytes, max_pixels: int) -> wire.StillResult:
        started = time.perf_counter()
        rgb = imaging.decode(data, max_pixels)
        decoded = time.perf_counter()
        landmarks = self.still.process(rgb)
        done = time.perf_counter()
        warnings = []
        if not landmarks.found_anything():
            warnings.append({"code": "no_person", "message": "no person was found in the image"})
        score = imaging.sharpness(rgb)
        if score < imaging.BLUR_THRESHOLD:
            warnings.append(
                {
                    "code": "blurred",
                    "message": f"the image is strongly blurred (sharpness {score:.1f} < "
                    f"{imaging.BLUR_THRESHOLD:.0f}); landmarks may be inaccurate",
                }
            )
        return wire.StillResult(
            width=int(rgb.shape[1]),
            height=int(rgb.shape[0]),
            landmarks=landmarks,
            warnings=warnings,
            decode_ms=(decoded - started) * 1000.0,
            inference_ms=(done - decoded) * 1000.0,
        )

    def frame(self, job: wire.RunFrame) -> wire.FrameResult:
        started = time.perf_counter()
        rgb = imaging.decode(job.data, job.max_pixels)
        decoded = time.perf_counter()
        engine = self.pool.get(job.session, job.track)
        landmarks = engine.process(rgb, job.capture_ms)
        done = time.perf_counter()
        return wire.FrameResult(
            graphs=self.pool.counts().graphs,
            width=int(rgb.shape[1]),
            height=int(rgb.shape[0]),
            landmarks=landmarks,
            decode_ms=(decoded - started) * 1000.0,
            inference_ms=(done - decoded) * 1000.0,
        )

    def close(self) -> None:
        self.pool.close()
        self.still.close()


def _failure(job_id: int, what: str, exc: Exception) -> wire.Failed:
    if isinstance(exc, HolotrackError):
        return wire.Failed(job_id, exc.code, exc.detail)
    log.exception("job %s (%s) failed", job_id, what)
    return wire.Failed(job_id, "model_error", f"{type(exc).__name__}: {exc}")


def _quiet_native_logs(verbose: bool) -> None:
    """glog and TFLite write straight to fd 2; send it to /dev/null unless asked."""
    if verbose:
        return
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    python_stderr = os.fdopen(os.dup(2), "w", buffering=1)
    logging.basicConfig(stream=python_stderr, level=logging.WARNING)
    sys.stderr = python_stderr
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m webapp.engine.child")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    # The protocol gets private copies of fds 0 and 1; fd 1 then points at stderr so a
    # stray print from native code cannot corrupt a reply.
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    _quiet_native_logs(args.verbose)
    write_lock = threading.Lock()

    def send(message: wire.Reply | wire.Ready) -> None:
        # A parent that exited while a job ran has no one left to answer: the next read
        # finds stdin closed and the worker ends there, without a traceback on the way.
        with write_lock, contextlib.suppress(BrokenPipeError):
            replies.write(wire.encode(message))
            replies.flush()

    # Requests and frames coming out of their graphs meet in one line the main thread serves.
    events: queue.SimpleQueue[object] = queue.SimpleQueue()

    def read() -> None:
        while isinstance(request := wire.read_from(requests), wire.Request):
            events.put(request)
        events.put(None)

    worker = Worker(send, events.put)
    send(wire.Ready(os.getpid(), worker.pool.counts(), connections()))
    threading.Thread(target=read, name="requests", daemon=True).start()
    while True:
        try:
            event = events.get(timeout=GRAPH_CHECK_SECONDS)
        except queue.Empty:
            worker.check_graphs()
            continue
        if isinstance(event, Through):
            worker.through(event)
        elif isinstance(event, wire.Request):
            reply = worker.handle(event)
            if reply is not None:
                send(reply)
        else:
            worker.close()
            return


if __name__ == "__main__":
    main()
