"""Can a session that asked for little take more? A script that prints figures.

    .venv/bin/python -m bench.asked_rate                       # this checkout
    .venv/bin/python -m bench.asked_rate --baseline /tmp/old   # and an older one, same run

One server with one worker and the default --min-session-fps (holistic 10), and on it:
--honest sessions that ask 15 fps and send at the rate granted, as the page does, and
--greedy sessions that ask 0.5 fps (so admission counts them as nearly free) and then send
a frame every 5 ms. For --seconds it counts each session's results: the honest sessions'
delivered fps and p50/p95 latency, the greedy ones' delivered fps. With --baseline, the
same first against a server run from that checkout (`git worktree add /tmp/old COMMIT`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import free_port, loadavg, server
from swarm.config import default_source
from swarm.frames import load_frames
from webapp.protocol import FRAME_HEADER
from webapp.ws_close import sent_code

ROOT = Path(__file__).resolve().parent.parent
HONEST_FPS = 15.0
GREEDY_FPS = 0.5
GREEDY_GAP = 0.005  # seconds between a greedy session's frames


class Refused(Exception):
    """A session the server turned away: the figures need every session admitted."""


async def ready(ws: aiohttp.ClientWebSocketResponse, fps: float) -> float:
    await ws.send_json({"type": "hello", "version": 1, "track": "holistic", "fps": fps})
    while (msg := await ws.receive()).type is aiohttp.WSMsgType.TEXT:
        message = json.loads(msg.data)
        if message["type"] == "ready":
            return float(message["fps"])
    reason = msg.extra if msg.type is aiohttp.WSMsgType.CLOSE and msg.extra else ""
    raise Refused(f"the session was refused: close code {sent_code(ws, msg)} {reason}".rstrip())


async def session(
    url: str, frames: tuple[bytes, ...], asked: float, gap: float | None, start: asyncio.Event
) -> dict[str, Any]:
    """One session for as long as `start` is set then cleared: sends every `gap` seconds,
    or at its granted rate when `gap` is None; its results' latencies and its span."""
    sent: dict[int, float] = {}
    latencies: list[float] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url + "/ws") as ws:
        granted = await ready(ws, asked)

        async def read() -> None:
            nonlocal granted
            async for msg in ws:
                message = json.loads(msg.data)
                if message["type"] == "result" and start.is_set():
                    latencies.append(time.perf_counter() - sent[message["seq"]])
                elif message["type"] == "stats":
                    granted = float(message["fps"])

        reader = asyncio.create_task(read())
        await start.wait()
        began, seq = time.perf_counter(), 0
        while start.is_set():
            sent[seq] = time.perf_counter()
            await ws.send_bytes(FRAME_HEADER.pack(seq, seq * 10.0) + frames[seq % len(frames)])
            seq += 1
            await asyncio.sleep(gap if gap is not None else 1.0 / granted)
        span = time.perf_counter() - began
        reader.cancel()
    return {"latencies": latencies, "span": span}


async def run(
    url: str, frames: tuple[bytes, ...], honest_count: int, greedy_count: int, seconds: float
) -> dict[str, Any]:
    start = asyncio.Event()
    honest = [
        asyncio.create_task(session(url, frames, HONEST_FPS, None, start))
        for _ in range(honest_count)
    ]
    greedy = [
        asyncio.create_task(session(url, frames, GREEDY_FPS, GREEDY_GAP, start))
        for _ in range(greedy_count)
    ]
    await asyncio.sleep(3.0)  # every hello answered and every graph built
    start.set()
    await asyncio.sleep(seconds)
    start.clear()
    # Every session's outcome, so that a refusal is said once, not beside a traceback of
    # each other session's exception that nobody retrieved.
    runs = await asyncio.gather(*honest, *greedy, return_exceptions=True)
    for outcome in runs:
        if isinstance(outcome, BaseException):
            raise outcome
    ended = [r for r in runs if not isinstance(r, BaseException)]
    honest_runs, greedy_runs = ended[:honest_count], ended[honest_count:]
    ms = sorted(x * 1000.0 for r in honest_runs for x in r["latencies"])
    return {
        "honest_fps": [len(r["latencies"]) / r["span"] for r in honest_runs],
        "greedy_fps": [len(r["latencies"]) / r["span"] for r in greedy_runs],
        "honest_p50_ms": statistics.median(ms) if ms else float("nan"),
        "honest_p95_ms": ms[int(0.95 * (len(ms) - 1))] if ms else float("nan"),
    }


async def main(args: argparse.Namespace) -> None:
    frames = load_frames(default_source(), width=480, quality=70, max_frames=60).jpegs
    checkouts = ([("baseline", Path(args.baseline))] if args.baseline else []) + [
        ("this checkout", ROOT)
    ]
    for name, root in checkouts:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with server(port, 1, cwd=root):
            alone = await run(url, frames, args.honest, 0, args.seconds)
            beside = await run(url, frames, args.honest, args.greedy, args.seconds)
        for phase, figures in (("alone", alone), (f"beside {args.greedy} greedy", beside)):
            honest = ", ".join(f"{fps:.1f}" for fps in figures["honest_fps"])
            greedy = ", ".join(f"{fps:.1f}" for fps in figures["greedy_fps"]) or "-"
            print(
                f"{name}, {phase}: honest {honest} fps, p50 {figures['honest_p50_ms']:.0f} ms, "
                f"p95 {figures['honest_p95_ms']:.0f} ms; greedy {greedy} fps"
            )
        kept = sum(beside["honest_fps"]) / sum(alone["honest_fps"])
        print(f"{name}: the honest sessions kept {kept:.2f} of their fps beside the greedy")
    print(
        f"honest: ask {HONEST_FPS:g} fps, send at the grant; greedy: ask {GREEDY_FPS:g} fps, "
        f"send every {GREEDY_GAP * 1000:g} ms; {args.seconds:g} s a phase; loadavg={loadavg()}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.asked_rate")
    parser.add_argument("--honest", type=int, default=2)
    parser.add_argument("--greedy", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--baseline", help="an older checkout to measure first")
    args = parser.parse_args()
    try:
        asyncio.run(main(args))
    except Refused as exc:
        raise SystemExit(
            f"bench.asked_rate: {exc}. The server's admission by rate judged this machine "
            f"too slow or too busy for {args.honest} sessions at {HONEST_FPS:g} fps on one "
            "worker: run it on a quiet machine, or with fewer --honest"
        ) from None
