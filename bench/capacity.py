"""The README's Capacity figures: the swarm against one server, holistic and pose-only, at
15 and 5 fps, each calibrated against the model's raw throughput on the same frames.

    .venv/bin/python -m bench.capacity        # about 10 minutes on 2 cores

After each run it prints the load table per step (users, QPS, p50/p95, error rate, the
server's CPU use, memory and busy share, the knee marked: swarm/load_table.py), then one
summary line per track and rate.

Plots go to docs/capacity/, reports to bench/out/capacity/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

from bench.common import free_port, loadavg, run_swarm, server, worker_count
from bench.live import LIVE_SERVER_ARGS, LIVE_SERVER_ENV
from swarm.load_table import markdown

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "capacity"
PLOTS = ROOT / "docs" / "capacity"
# Session steps bracketing what 2 cores sustain, from the host's slow days (a holistic
# frame at 60 ms: one session at 15 fps) to its fast ones (22 ms: four); the swarm stops
# after two failing steps. Each step opens its sessions at once and their graphs are
# built one at a time per worker, hence the 12 s warm-up.
RAMPS = {
    ("holistic", 15.0): "1:6:1",
    ("holistic", 5.0): "3:21:3",
    ("pose", 15.0): "2:12:2",
    ("pose", 5.0): "5:35:5",
}


async def one(track: str, fps: float, ramp: str, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    out = OUT / f"{track}-{fps:g}fps"
    # No admission by rate: the ramp finds what the hardware sustains (bench.admission
    # compares that with what --min-session-fps admits).
    with server(port, args.workers, LIVE_SERVER_ARGS, env=LIVE_SERVER_ENV):
        before = loadavg()
        report = await run_swarm(
            port,
            out,
            *("--ramp", ramp, "--fps", str(fps), "--track", track, "--hold", str(args.hold)),
            *("--warmup", "12", "--calibrate", "--calibrate-seconds", "8"),
        )
    PLOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(out / "report.png", PLOTS / f"{track}-{fps:g}fps.png")
    print(f"\n{track}, {fps:g} fps a session, {args.workers} workers:\n{markdown(report)}\n")
    best = max(report["steps"], key=lambda s: s["delivered_fps"])
    return {
        "track": track,
        "fps": fps,
        "sustainable": report["sustainable_sessions"],
        "knee": report["knee_sessions"],
        "raw_fps": report.get("raw_fps"),
        "best_delivered_fps": best["delivered_fps"],
        "efficiency": best["delivered_fps"] / report["raw_fps"] if report.get("raw_fps") else None,
        "load": [before, loadavg()],
    }


def only_runs(text: str) -> set[tuple[str, float]]:
    """--only's TRACK:FPS list as keys of RAMPS. Matched as text, `holistic:15.0` or a
    typo ran nothing, then failed writing the summary of no run."""
    known = ", ".join(f"{track}:{fps:g}" for track, fps in RAMPS)
    wanted = set()
    for item in (c.strip() for c in text.split(",")):
        if not item:
            continue
        track, _, fps = item.partition(":")
        try:
            key = (track, float(fps))
        except ValueError:
            key = None
        if key not in RAMPS:
            raise argparse.ArgumentTypeError(f"{item!r} is none of {known}")
        wanted.add(key)
    return wanted


async def main_async(args: argparse.Namespace) -> None:
    rows = []
    wanted: set[tuple[str, float]] = args.only
    for (track, fps), ramp in RAMPS.items():
        if wanted and (track, fps) not in wanted:
            continue
        rows.append(await one(track, fps, ramp, args))
        print(json.dumps(rows[-1]), flush=True)
    chosen = ",".join(f"{track}-{fps:g}" for track, fps in RAMPS if (track, fps) in wanted)
    name = f"summary-{chosen}.json" if wanted else "summary.json"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / name).write_text(json.dumps(rows, indent=2))
    print(
        "\n| track | fps | sustainable sessions | knee | raw frames/s | best delivered/s | "
        "efficiency | load |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        eff = f"{r['efficiency']:.2f}" if r["efficiency"] is not None else "-"
        print(
            f"| {r['track']} | {r['fps']:g} | {r['sustainable']} | {r['knee'] or '-'} | "
            f"{r['raw_fps']:.1f} | "
            f"{r['best_delivered_fps']:.1f} | {eff} | "
            f"{r['load'][0][0]:.2f} -> {r['load'][1][0]:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__)
    parser.add_argument("--workers", type=worker_count, default=2)
    parser.add_argument("--hold", type=float, default=10.0)
    parser.add_argument(
        "--only", type=only_runs, default="", help="e.g. holistic:5,pose:15 (default: all)"
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
