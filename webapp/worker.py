"""The inference worker: a child process that owns MediaPipe graphs and runs one call at a time.

It reads requests from stdin and writes replies to stdout, each a 4-byte length and a
pickle. A crash here (even a native one) costs only the sessions whose graphs live here.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import logging
import os
import pickle
import struct
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

from webapp.protocol import Track

HEADER = struct.Struct("<I")
MAX_SPARES = 2
log = logging.getLogger("webapp.worker")


def read_message(stream: BinaryIO) -> Any:
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (size,) = HEADER.unpack(head)
    body = stream.read(size)
    return pickle.loads(body)


def write_message(stream: BinaryIO, message: Any) -> None:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(body)) + body)
    stream.flush()


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


class Worker:
    """Owns the graphs. Requests run one at a time on the main thread, except that graphs
    for new sessions are built and primed, and ended ones reset, on a preparer thread, so
    a burst of new sessions does not stall the frames of those already running."""

    def __init__(self, send: Callable[[tuple[Any, ...]], None]) -> None:
        from webapp import inference

        self._inference = inference
        self._send = send
        self._lock = threading.Lock()  # sessions and spares, shared with the preparer
        self._preparer = ThreadPoolExecutor(1, thread_name_prefix="prepare")
        self.still = inference.StillEngine()
        inference.warm(self.still)
        self.sessions: dict[str, inference.TrackEngine] = {}
        self.spares: dict[Track, list[inference.TrackEngine]] = {track: [] for track in Track}
        for track in Track:
            engine = inference.TrackEngine(track)
            inference.warm(engine)
            self.spares[track].append(engine)

    def handle(self, request: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """The reply, or None when the preparer thread will send it."""
        op, job_id = request[0], request[1]
        try:
            if op == "predict":
                return (job_id, "ok", self.predict(*request[2:]))
            if op == "frame":
                return (job_id, "ok", self.frame(*request[2:]))
            if op == "open":
                self._preparer.submit(self._guarded, job_id, self.open, *request[2:])
                return None
            if op == "end":
                self.end(*request[2:])
            if op in ("end", "counts"):
                # On the preparer thread, after every reset or close asked before, so
                # graphs of ended sessions are counted where they end up.
                self._preparer.submit(self._guarded, job_id, self.counts)
                return None
            if op == "crash":
                os.abort()
            return (job_id, "err", "internal", f"unknown operation {op!r}")
        except Exception as exc:  # every failure goes back to the caller, never kills the loop
            return self._failure(job_id, op, exc)

    def _guarded(self, job_id: int, work: Callable[..., Any], *args: Any) -> None:
        try:
            self._send((job_id, "ok", work(*args)))
        except Exception as exc:
            self._send(self._failure(job_id, work.__name__, exc))

    def _failure(self, job_id: int, op: str, exc: Exception) -> tuple[Any, ...]:
        from webapp.errors import HolotrackError

        if isinstance(exc, HolotrackError):
            return (job_id, "err", exc.code, exc.detail)
        log.exception("job %s (%s) failed", job_id, op)
        return (job_id, "err", "model_error", f"{type(exc).__name__}: {exc}")

    def predict(self, data: bytes, max_pixels: int) -> dict[str, Any]:
        from webapp import imaging

        started = time.perf_counter()
        rgb = imaging.decode(data, max_pixels)
        decoded = time.perf_counter()
        landmarks = self.still.process(rgb)
        done = time.perf_counter()
        warnings = []
        if not self._inference.found_anything(landmarks):
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
        return {
            "width": int(rgb.shape[1]),
            "height": int(rgb.shape[0]),
            "landmarks": landmarks,
            "warnings": warnings,
            "decode_ms": (decoded - started) * 1000.0,
            "inference_ms": (done - decoded) * 1000.0,
        }

    def open(self, session: str, track: str) -> dict[str, int]:
        """A primed graph for a new session: a spare if one is ready, else a new one."""
        kind = Track(track)
        with self._lock:
            engine = self.spares[kind].pop() if self.spares[kind] else None
        if engine is None:
            engine = self._inference.TrackEngine(kind)
            engine.prime()
        with self._lock:
            self.sessions[session] = engine
        return self.counts()

    def frame(
        self, session: str, track: str, data: bytes, capture_ms: float, max_pixels: int
    ) -> dict[str, Any]:
        from webapp import imaging

        started = time.perf_counter()
        rgb = imaging.decode(data, max_pixels)
        decoded = time.perf_counter()
        with self._lock:
            engine = self.sessions.get(session)
        if engine is None:
            self.open(session, track)
            engine = self.sessions[session]
        landmarks = engine.process(rgb, capture_ms)
        done = time.perf_counter()
        return {
            "graphs": self.counts()["graphs"],
            "width": int(rgb.shape[1]),
            "height": int(rgb.shape[0]),
            "landmarks": landmarks,
            "decode_ms": (decoded - started) * 1000.0,
            "inference_ms": (done - decoded) * 1000.0,
        }

    def end(self, session: str) -> None:
        with self._lock:
            engine = self.sessions.pop(session, None)
        if engine is not None:
            self._preparer.submit(self._recycle, engine)

    def _recycle(self, engine: Any) -> None:
        """Reset and primed off the main thread; kept as a spare, or closed if enough are."""
        with self._lock:
            keep = len(self.spares[engine.track]) < MAX_SPARES
        if not keep:
            engine.close()
            _return_freed_memory()
            return
        engine.reset()
        engine.prime()
        with self._lock:
            self.spares[engine.track].append(engine)

    def close(self) -> None:
        self._preparer.shutdown(wait=True)
        with self._lock:
            engines = [*self.sessions.values(), *(e for s in self.spares.values() for e in s)]
            self.sessions.clear()
            for spares in self.spares.values():
                spares.clear()
        for engine in engines:
            engine.close()
        self.still.close()

    def counts(self) -> dict[str, int]:
        with self._lock:
            spares = sum(len(s) for s in self.spares.values())
            return {"graphs": 1 + len(self.sessions) + spares, "sessions": len(self.sessions)}


def _find_malloc_trim() -> Callable[[int], int] | None:
    library = ctypes.util.find_library("c")
    return getattr(ctypes.CDLL(library), "malloc_trim", None) if library else None


_malloc_trim = _find_malloc_trim()


def _return_freed_memory() -> None:
    """glibc keeps a closed graph's memory in its heap arenas: after 1000 sessions came and
    went a worker held 38% more than before (bench/soak.py), and 500 sessions took one from
    2.0 to 2.5 GB even with two arenas. Trimming after each close hands it back; fixing
    MALLOC_MMAP_THRESHOLD_ instead did too, but made every frame ~13% slower. Runs on the
    preparer thread, where its 15-60 ms delays no frame."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m webapp.worker")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    # The protocol gets private copies of fds 0 and 1; fd 1 then points at stderr so a
    # stray print from native code cannot corrupt a reply.
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    _quiet_native_logs(args.verbose)
    write_lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with write_lock:
            write_message(replies, message)

    worker = Worker(send)
    from webapp.inference import connections

    send(("ready", os.getpid(), worker.counts(), connections()))
    while True:
        request = read_message(requests)
        if request is None:
            worker.close()
            return
        reply = worker.handle(request)
        if reply is not None:
            send(reply)


if __name__ == "__main__":
    main()
