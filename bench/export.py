"""What an export costs (issue 15): converting a large recording, and what a live session
feels meanwhile.

A real recording first: a live session on a real server (`python -m webapp`, one worker)
with "rig" and "exercise", fed the shared ASL video in lockstep, its results kept as the
pages' Record button keeps them. Its lines are repeated (time moving on) up to --bytes,
the size a browser may record and the server accepts by default. Then, in this process,
parse / BVH / CSV are timed; and on the server, a live session's frame round trips are
timed alone and then while POST /api/export converts that recording (both in this run, so
their ratio holds under whatever load the machine has). Prints figures; exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import aiohttp
import cv2

from bench.common import free_port, loadavg, server
from swarm.config import DEFAULT_VIDEO, media_dir
from webapp.export.bvh import to_bvh
from webapp.export.recording import parse_text
from webapp.export.table import to_csv
from webapp.protocol import FRAME_HEADER

WIDTH = 480
STEP_MS = 1000.0 / 15.0


def frames(count: int) -> list[bytes]:
    capture = cv2.VideoCapture(str(media_dir() / DEFAULT_VIDEO))
    out: list[bytes] = []
    while len(out) < count:
        ok, bgr = capture.read()
        if not ok:
            break
        height = round(bgr.shape[0] * WIDTH / bgr.shape[1])
        ok, jpeg = cv2.imencode(
            ".jpg", cv2.resize(bgr, (WIDTH, height)), [cv2.IMWRITE_JPEG_QUALITY, 70]
        )
        out.append(jpeg.tobytes())
    capture.release()
    return out


async def result(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    while True:
        message = await ws.receive()
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise SystemExit(f"the session closed: {message.type} {message.extra}")
        data: dict[str, Any] = json.loads(message.data)
        if data["type"] == "result":
            return data


async def open_session(http: aiohttp.ClientSession, base: str) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(base.replace("http", "ws") + "/ws")
    await ws.send_json(
        {"type": "hello", "version": 1, "track": "holistic", "fps": 15, "rig": True,
         "exercise": "bicep_curl"}
    )  # fmt: skip
    return ws


async def round_trips(
    ws: aiohttp.ClientWebSocketResponse,
    images: list[bytes],
    seq: int,
    until: asyncio.Task[Any] | None,
) -> tuple[list[float], list[dict[str, Any]]]:
    """Lockstep frames: all of them, or (with `until`) round and round until it is done."""
    times: list[float] = []
    results: list[dict[str, Any]] = []
    i = 0
    while i < len(images) or (until is not None and not until.done()):
        sent = time.perf_counter()
        await ws.send_bytes(FRAME_HEADER.pack(seq, seq * STEP_MS) + images[i % len(images)])
        results.append(await result(ws))
        times.append((time.perf_counter() - sent) * 1000.0)
        seq, i = seq + 1, i + 1
    return times, results


def recording(results: list[dict[str, Any]], size: int) -> str:
    lines: list[str] = []
    total, n = 0, 0
    start = results[0]["capture_ms"]
    span = results[-1]["capture_ms"] - start + STEP_MS
    while True:
        r = results[n % len(results)]
        line = {"frame": n, "time_ms": (n // len(results)) * span + r["capture_ms"] - start,
                "landmarks": r["landmarks"], "image": r["image"], "rig": r["rig"],
                "fitness": r["fitness"]}  # fmt: skip
        text = json.dumps(line, separators=(",", ":"))
        if total + len(text) + 1 > size:
            return "\n".join(lines) + "\n"
        lines.append(text)
        total, n = total + len(text) + 1, n + 1


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


async def run(size: int, count: int) -> None:
    images = frames(count)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with server(port, 1, ["--max-export-bytes", str(size)]):
        async with aiohttp.ClientSession() as http:
            ws = await open_session(http, base)
            await round_trips(ws, images[:5], 0, None)  # warm-up: the graph's first frames
            alone, results = await round_trips(ws, images, 5, None)
            text = recording(results, size)
            lines = text.count("\n")
            print(f"recording: {lines} lines, {len(text)} bytes (real lines repeated)")
            for label, fmt in (("csv", "csv"), ("bvh", "bvh")):
                started = time.perf_counter()

                async def post(fmt: str = fmt) -> int:
                    async with http.post(
                        f"{base}/api/export?format={fmt}", data=text.encode(),
                        headers={"Content-Type": "application/x-ndjson"},
                    ) as reply:  # fmt: skip
                        await reply.read()
                        return reply.status

                export = asyncio.create_task(post())
                during, _ = await round_trips(ws, images, 10_000, export)
                status = await export
                took = time.perf_counter() - started
                before, meanwhile = statistics.median(alone), statistics.median(during)
                print(
                    f"POST /api/export?format={label}: {status} in {took:.1f} s; live round "
                    f"trip median {before:.0f} -> {meanwhile:.0f} ms (x{meanwhile / before:.2f}), "
                    f"p95 {pct(alone, 0.95):.0f} -> {pct(during, 0.95):.0f} ms, "
                    f"{len(during)} frames"
                )
            await ws.close()
    started = time.perf_counter()
    parsed = parse_text(text)
    parse_s = time.perf_counter() - started
    started = time.perf_counter()
    to_bvh(parsed)
    bvh_s = time.perf_counter() - started
    started = time.perf_counter()
    to_csv(parsed)
    csv_s = time.perf_counter() - started
    print(f"in process: parse {parse_s:.1f} s, BVH {bvh_s:.1f} s, CSV {csv_s:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.export", description=__doc__)
    parser.add_argument("--bytes", type=int, default=32 * 1024 * 1024, help="recording size")
    parser.add_argument("--frames", type=int, default=60, help="real frames to record")
    args = parser.parse_args()
    print(f"load average before: {loadavg()}")
    asyncio.run(run(args.bytes, args.frames))
    print(f"load average after: {loadavg()}")


if __name__ == "__main__":
    main()
