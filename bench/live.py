"""Live sessions against the model's raw throughput (issue 3): a script that prints figures.

    .venv/bin/python -m bench.live                  # holistic, 15 fps, the shared ASL video

1. Raw: the model in-process on the same JPEG frames the swarm sends, one video-mode graph
   per worker process (swarm.calibrate), and one graph alone for the single-frame time.
2. A real server (`python -m webapp`), loaded by the real swarm (`python -m swarm`) at
   saturation (just enough sessions at --fps to exceed raw) and at 10x oversubscription.
3. The verdict against the targets: delivered >= 0.85 raw at saturation; at 10x, p95
   capture-to-result latency <= 3x the single-frame time, no errors, Jain's index >= 0.9.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from bench.common import free_port, loadavg, server
from swarm.calibrate import calibrate
from swarm.config import default_source
from swarm.frames import load_frames

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "live"


LIVE_SERVER_ARGS = ("--max-sessions", "1000", "--max-sessions-per-client", "0")


async def run_swarm(port: int, args: argparse.Namespace, steps: list[int]) -> dict[str, Any]:
    out = OUT / args.track
    swarm = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "swarm",
        "--url",
        f"ws://127.0.0.1:{port}/ws",
        "--sessions",
        ",".join(map(str, steps)),
        "--fps",
        str(args.fps),
        "--track",
        args.track,
        "--hold",
        str(args.hold),
        "--warmup",
        str(args.warmup),
        "--stop-after",
        "99",
        "--out",
        str(out),
    )
    await swarm.wait()
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    return report


async def main_async(args: argparse.Namespace) -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    frames = load_frames(default_source(), 480, 70, 300)
    jpegs = frames.jpegs
    print(
        f"load {loadavg()[0]:.2f}: calibrating {args.track} on {len(jpegs)} frames ...", flush=True
    )
    raw = calibrate(jpegs, args.track, args.fps, args.raw_seconds, args.workers).raw_fps
    alone = calibrate(jpegs, args.track, args.fps, args.raw_seconds, 1).raw_fps
    single_ms = 1000.0 / alone
    saturation = math.ceil(raw / args.fps) + 1
    oversubscribed = round(10 * raw / args.fps)
    print(
        f"raw {raw:.1f} frames/s with {args.workers} workers; one graph alone "
        f"{alone:.1f} frames/s = {single_ms:.1f} ms a frame; load {loadavg()[0]:.2f}",
        flush=True,
    )
    port = free_port()
    with server(port, args.workers, LIVE_SERVER_ARGS, log=OUT / "server.log"):
        before = loadavg()
        report = await run_swarm(port, args, [saturation, oversubscribed])
        after = loadavg()
    steps = {s["sessions"]: s for s in report["steps"]}
    sat, over = steps[saturation], steps[oversubscribed]
    delivered = max(s["delivered_fps"] for s in report["steps"])
    efficiency = delivered / raw
    p95 = over["latency_ms"]["p95"]
    checks = {
        f"delivered at saturation {delivered:.1f}/s >= 0.85 x raw {raw:.1f}/s "
        f"({efficiency:.2f})": efficiency >= 0.85,
        f"10x ({oversubscribed} sessions): p95 {p95:.0f} ms <= 3 x {single_ms:.0f} ms": (
            p95 is not None and p95 <= 3 * single_ms
        ),
        f"10x: errors {over['errors']} == 0": over["errors"] == 0,
        f"10x: Jain's index {over['fairness']} >= 0.9": (over["fairness"] or 0) >= 0.9,
    }
    summary = {
        "track": args.track,
        "fps": args.fps,
        "workers": args.workers,
        "raw_fps": raw,
        "single_frame_ms": single_ms,
        "saturation": sat,
        "oversubscribed": over,
        "efficiency": efficiency,
        "checks": checks,
        "load": [before, after],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"summary-{args.track}.json").write_text(json.dumps(summary, indent=2))
    for step in (sat, over):
        lat = step["latency_ms"]
        print(
            f"{step['sessions']:4d} sessions: delivered {step['delivered_fps']:.1f}/s, "
            f"latency p50/p95/p99 {lat['p50']:.0f}/{lat['p95']:.0f}/{lat['p99']:.0f} ms, "
            f"session fps min {step['session_fps']['min']:.1f}, Jain {step['fairness']}, "
            f"dropped {step['dropped']}, errors {step['errors']}, refusals {step['refusals']}"
        )
    for text, ok in checks.items():
        print(("MET     " if ok else "NOT MET ") + text)
    print(f"load average during the swarm: {before[0]:.2f} -> {after[0]:.2f}")
    return 0 if all(checks.values()) else 1


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.live", description=__doc__)
    parser.add_argument("--track", choices=["holistic", "pose"], default="holistic")
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--hold", type=float, default=20.0)
    # Sessions opened at once wait for their graphs to be built (about 0.1-0.6 s each,
    # one at a time per worker); the warm-up lets the 10x step reach its steady state.
    parser.add_argument("--warmup", type=float, default=25.0)
    parser.add_argument("--raw-seconds", type=float, default=10.0)
    sys.exit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
