"""Admission by rate against what the swarm sustains (issue 16): a script that prints figures.

    .venv/bin/python -m bench.admission                  # pose only, 15 fps, 2 workers

1. A server with no admission by rate (`HOLOTRACK_MIN_SESSION_FPS=0`) under a swarm ramp:
   the swarm's sustainable sessions (the largest step meeting its SLO, swarm/README.md).
2. A server with the default `--min-session-fps` (or --min-session-fps) under the same
   ramp: how many sessions it admits (sessions opened minus 1013 refusals, at the largest
   step), and its sustainable sessions.
The two numbers should agree: the server refuses about where quality would give out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
from typing import Any

from bench.common import (
    add_workers_flag,
    free_port,
    loadavg,
    refuse_what_the_swarm_would,
    run_swarm,
    server,
)
from bench.live import LIVE_SERVER_ARGS
from swarm.config import SwarmConfig

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "admission"


async def ramp(port: int, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    return await run_swarm(
        port,
        out,
        *("--ramp", args.ramp, "--fps", str(args.fps), "--track", args.track),
        *("--warmup", str(args.warmup), "--hold", str(args.hold)),
    )


async def main_async(args: argparse.Namespace) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    runs: dict[str, Any] = {}
    for label, minimum in (("no admission by rate", "0"), ("admission by rate", args.minimum)):
        env = {k: v for k, v in os.environ.items() if k != "HOLOTRACK_MIN_SESSION_FPS"}
        if minimum:
            env["HOLOTRACK_MIN_SESSION_FPS"] = minimum
        name = f"min-{minimum or 'default'}"
        port = free_port()
        before = loadavg()
        with server(port, args.workers, LIVE_SERVER_ARGS, env=env, log=OUT / f"{name}.log"):
            report = await ramp(port, args, OUT / name)
        after = loadavg()
        admitted = max(s["sessions"] - s["refusals"] for s in report["steps"])
        runs[label] = {
            "min_session_fps": minimum or "(default)",
            "sustainable_sessions": report["sustainable_sessions"],
            "admitted_at_most": admitted,
            "steps": [
                (s["sessions"], s["refusals"], s["delivered_fps"], s["session_fps"]["min"] or 0.0)
                for s in report["steps"]
            ],
            "load": [before, after],
        }
    (OUT / f"summary-{args.track}.json").write_text(json.dumps(runs, indent=2))
    for label, run in runs.items():
        print(
            f"{label} (--min-session-fps {run['min_session_fps']}): swarm sustainable "
            f"{run['sustainable_sessions']}, admitted at most {run['admitted_at_most']}, "
            f"load {run['load'][0][0]:.2f} -> {run['load'][1][0]:.2f}"
        )
        for sessions, refused, delivered, slowest in run["steps"]:
            print(
                f"  {sessions:3d} sessions: {refused} refused, delivered {delivered:.1f}/s, "
                f"slowest session {slowest:.1f} fps"
            )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.admission", description=__doc__)
    parser.add_argument("--track", choices=["holistic", "pose"], default="pose")
    parser.add_argument("--fps", type=float, default=15.0)
    add_workers_flag(parser)
    parser.add_argument("--ramp", default="6:13:1")
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--hold", type=float, default=10.0)
    parser.add_argument(
        "--min-session-fps", dest="minimum", default="", help="the server's (default: its own)"
    )
    args = parser.parse_args()
    refuse_what_the_swarm_would(
        parser,
        SwarmConfig(
            ramp=args.ramp, fps=args.fps, track=args.track, warmup=args.warmup, hold=args.hold
        ),
    )
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
