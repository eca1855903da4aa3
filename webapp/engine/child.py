"""The inference worker process: owns MediaPipe graphs and runs one job at a time.

It reads `wire.Request`s from stdin and writes `wire.Reply`s to stdout; what it does with
each is the `Worker`'s business (worker.py). A crash here (even a native one) costs only
the sessions whose graphs live here.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import queue
import sys
import threading

from webapp.engine import wire
from webapp.engine.inference import connections
from webapp.engine.worker import Through, Worker
from webapp.log_format import formatter

# How often a quiet worker looks for graphs that stopped on an error with frames inside.
GRAPH_CHECK_SECONDS = 1.0


def _quiet_native_logs(verbose: bool, log_format: str) -> None:
    """glog and TFLite write straight to fd 2; send it to /dev/null unless asked. Python's
    own lines go to the server's stderr, in the server's format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    if verbose:
        logging.basicConfig(level=logging.WARNING, handlers=[handler])
        return
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    python_stderr = os.fdopen(os.dup(2), "w", buffering=1)
    handler.setStream(python_stderr)
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    sys.stderr = python_stderr
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m webapp.engine.child")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    # The protocol gets private copies of fds 0 and 1; fd 1 then points at stderr so a
    # stray print from native code cannot corrupt a reply.
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    _quiet_native_logs(args.verbose, args.log_format)
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
