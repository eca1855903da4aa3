"""A stand-in server that answers every frame at once with a result of the real size.

It measures the swarm, not a model: run `python -m swarm.echo` on one machine and the
swarm against it from another to learn how many sessions the swarm itself can drive.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
from collections.abc import Sequence
from typing import Any

from aiohttp import WSMsgType, web

from webapp.protocol import FRAME_HEADER, VERSION, ServerType

STATS_INTERVAL = web.AppKey("stats_interval", float)


def _landmarks_tail() -> str:
    """Everything after the seq of a holistic result: ~17 KB of plausible numbers."""
    rng = random.Random(0)

    def points(count: int, width: int) -> list[list[float]]:
        return [[round(rng.random(), 5) for _ in range(width)] for _ in range(count)]

    body = {
        "image": {"width": 480, "height": 360},
        "landmarks": {
            "pose": points(33, 4),
            "face": points(468, 3),
            "left_hand": points(21, 3),
            "right_hand": None,
        },
        "timing_ms": {"wait": 0.0, "decode": 0.0, "inference": 0.0},
    }
    return json.dumps(body)[1:]


_TAIL = _landmarks_tail()


async def session(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(compress=False, max_msg_size=2**22)
    await ws.prepare(request)
    hello = await ws.receive()
    if hello.type is not WSMsgType.TEXT:
        await ws.close()
        return ws
    fps = float(json.loads(hello.data).get("fps", 15))
    interval = request.app[STATS_INTERVAL]
    ready = {"type": ServerType.READY, "version": VERSION, "session": "echo", "fps": fps}
    await ws.send_str(json.dumps({**ready, "stats_interval": interval}))
    counts = {"received": 0, "processed": 0, "dropped": 0, "errors": 0}

    async def stats() -> None:
        while True:
            await asyncio.sleep(interval)
            await ws.send_str(json.dumps({"type": "stats", **counts, "pending": 0, "fps": fps}))

    reporter = asyncio.create_task(stats())
    try:
        async for message in ws:
            if message.type is not WSMsgType.BINARY:
                continue
            seq, capture_ms = FRAME_HEADER.unpack_from(message.data)
            counts["received"] += 1
            head = f'{{"type": "result", "seq": {seq}, "capture_ms": {capture_ms!r}, '
            await ws.send_str(head + _TAIL)
            counts["processed"] += 1
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
    return ws


def create_app(stats_interval: float = 2.0) -> web.Application:
    app = web.Application()
    app[STATS_INTERVAL] = stats_interval
    app.router.add_get("/ws", session)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m swarm.echo", description=__doc__)
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=8090, help="TCP port (default: %(default)s)")
    args: Any = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error("--port must be 1 to 65535")
    try:
        web.run_app(create_app(), host=args.host, port=args.port, backlog=1024, print=None)
    except OSError as exc:
        # A port in use, a host that is not this machine's: a traceback hid the one line.
        parser.error(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")


if __name__ == "__main__":
    main()
