"""The inference worker: a child process that owns MediaPipe graphs and runs one call at a time.

It reads requests from stdin and writes replies to stdout, each a 4-byte length and a
pickle. A crash here (even a native one) costs only the sessions whose graphs live here.
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import struct
import sys
import time
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
    def __init__(self) -> None:
        from webapp import inference

        self._inference = inference
        self.still = inference.StillEngine()
        inference.warm(self.still)
        self.sessions: dict[str, inference.TrackEngine] = {}
        self.spares: dict[Track, list[inference.TrackEngine]] = {track: [] for track in Track}
        for track in Track:
            engine = inference.TrackEngine(track)
            inference.warm(engine)
            self.spares[track].append(engine)

    def handle(self, request: tuple[Any, ...]) -> tuple[Any, ...]:
        op, job_id = request[0], request[1]
        try:
            if op == "predict":
                return (job_id, "ok", self.predict(*request[2:]))
            if op == "frame":
                return (job_id, "ok", self.frame(*request[2:]))
            if op == "end":
                self.end(*request[2:])
                return (job_id, "ok", self.counts())
            if op == "counts":
                return (job_id, "ok", self.counts())
            if op == "crash":
                os.abort()
            return (job_id, "err", "internal", f"unknown operation {op!r}")
        except Exception as exc:  # every failure goes back to the caller, never kills the loop
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

    def frame(
        self, session: str, track: str, data: bytes, capture_ms: float, max_pixels: int
    ) -> dict[str, Any]:
        from webapp import imaging

        started = time.perf_counter()
        rgb = imaging.decode(data, max_pixels)
        decoded = time.perf_counter()
        engine = self.sessions.get(session)
        if engine is None:
            kind = Track(track)
            engine = self.spares[kind].pop() if self.spares[kind] else None
            engine = engine or self._inference.TrackEngine(kind)
            self.sessions[session] = engine
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
        engine = self.sessions.pop(session, None)
        if engine is None:
            return
        spares = self.spares[engine.track]
        if len(spares) < MAX_SPARES:
            engine.reset()
            spares.append(engine)
        else:
            engine.close()

    def counts(self) -> dict[str, int]:
        return {
            "graphs": 1 + len(self.sessions) + sum(len(s) for s in self.spares.values()),
            "sessions": len(self.sessions),
        }


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
    worker = Worker()
    from webapp.inference import connections

    write_message(replies, ("ready", os.getpid(), worker.counts(), connections()))
    while True:
        request = read_message(requests)
        if request is None:
            return
        write_message(replies, worker.handle(request))


if __name__ == "__main__":
    main()
