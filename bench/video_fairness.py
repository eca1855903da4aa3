"""Is POST /api/video fair to live sessions? A script that prints figures (issue 15).

    .venv/bin/python -m bench.video_fairness            # one worker, 15 fps, 20 s a phase

One server with one worker (so the video and the live session share a lane: the worst
case), then in the same run:
1. a live session alone for --seconds: frames sent at --fps, results counted;
2. the same, while a long video (the shared ASL video, looped by re-uploading it) streams
   through POST /api/video; the video's own frames per second are counted too.
It prints the live session's delivered fps in both phases, their ratio and the p50/p95
latency, with the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path

import aiohttp

from bench.common import free_port, loadavg, server
from swarm.config import default_source
from swarm.frames import load_frames
from webapp.protocol import FRAME_HEADER
from webapp.ws_close import sent_code

# Fairness is what is measured, so admission by rate is off: with it, the live session is
# refused beside the video whenever one worker cannot give both --min-session-fps.
SERVER_ENV = {**os.environ, "HOLOTRACK_MIN_SESSION_FPS": "0"}


async def live_phase(
    url: str, frames: tuple[bytes, ...], fps: float, seconds: float
) -> dict[str, float]:
    sent: dict[int, float] = {}
    latencies: list[float] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url + "/ws") as ws:
        await ws.send_json({"type": "hello", "version": 1, "track": "holistic", "fps": fps})
        while True:
            msg = await ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                raise SystemExit(
                    f"the live session got no ready: closed {sent_code(ws, msg)} {msg.extra}"
                )
            if json.loads(msg.data)["type"] == "ready":
                break

        async def read() -> None:
            async for msg in ws:
                message = json.loads(msg.data)
                if message["type"] == "result":
                    latencies.append(time.perf_counter() - sent[message["seq"]])

        reader = asyncio.create_task(read())
        start = time.perf_counter()
        seq = 0
        while time.perf_counter() - start < seconds:
            sent[seq] = time.perf_counter()
            header = FRAME_HEADER.pack(seq, seq * 1000.0 / fps)
            await ws.send_bytes(header + frames[seq % len(frames)])
            seq += 1
            await asyncio.sleep(max(0.0, start + seq / fps - time.perf_counter()))
        elapsed = time.perf_counter() - start
        reader.cancel()
    ms = sorted(x * 1000.0 for x in latencies)
    return {
        "sent_fps": seq / elapsed,
        "delivered_fps": len(latencies) / elapsed,
        "p50_ms": statistics.median(ms) if ms else float("nan"),
        "p95_ms": ms[int(0.95 * (len(ms) - 1))] if ms else float("nan"),
    }


async def video_loop(
    url: str, body: bytes, stop: asyncio.Event, started: asyncio.Event, counts: dict[str, int]
) -> None:
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            headers = {"Content-Type": "video/mp4"}
            async with http.post(url + "/api/video", data=body, headers=headers) as reply:
                assert reply.status == 200, await reply.text()
                async for line in reply.content:
                    if stop.is_set():
                        return
                    if line.startswith(b'{"frame"'):
                        counts["frames"] += 1
                        started.set()


async def main(args: argparse.Namespace, frames: tuple[bytes, ...], body: bytes) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with server(port, args.workers, env=SERVER_ENV):
        await live_phase(url, frames, args.fps, 3.0)  # warm up
        alone = await live_phase(url, frames, args.fps, args.seconds)
        stop, started, counts = asyncio.Event(), asyncio.Event(), {"frames": 0}
        video = asyncio.create_task(video_loop(url, body, stop, started, counts))
        await started.wait()
        before, since = counts["frames"], time.perf_counter()
        beside = await live_phase(url, frames, args.fps, args.seconds)
        video_fps = (counts["frames"] - before) / (time.perf_counter() - since)
        stop.set()
        await video
    load = loadavg()
    print(f"workers={args.workers} fps={args.fps} seconds={args.seconds} loadavg={load}")
    for name, phase in (("alone", alone), ("beside a video", beside)):
        print(
            f"live {name:>15}: delivered {phase['delivered_fps']:.2f} fps of "
            f"{phase['sent_fps']:.2f} sent, p50 {phase['p50_ms']:.0f} ms, "
            f"p95 {phase['p95_ms']:.0f} ms"
        )
    print(f"video beside it: {video_fps:.2f} fps")
    share = beside["delivered_fps"] / (beside["delivered_fps"] + video_fps)
    print(f"live share of the frames run while both went: {share:.2f}")
    print(f"ratio live(beside)/live(alone): {beside['delivered_fps'] / alone['delivered_fps']:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.video_fairness")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    frames = load_frames(default_source(), width=480, quality=70, max_frames=60).jpegs
    asyncio.run(main(parser.parse_args(), frames, Path(default_source()).read_bytes()))
