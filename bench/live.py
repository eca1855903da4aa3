"""Live sessions against the model's raw throughput (issue 3): a script that prints figures.

    .venv/bin/python -m bench.live                  # holistic, 15 fps, the shared ASL video
    .venv/bin/python -m bench.live --baseline /tmp/old   # and the same against an older checkout

1. Raw: the model in-process on the same JPEG frames the swarm sends, one video-mode graph
   per worker process (swarm.calibrate), and one graph alone for the single-frame time.
2. A real server (`python -m webapp`), loaded by the real swarm (`python -m swarm`) at
   saturation (just enough sessions at --fps to exceed raw) and at 10x oversubscription,
   once per kind of client (--clients): `follow` answers turns as the page does; `ignore`
   paces itself to the granted fps with --ignore-in-flight frames in flight, as a client
   written from the protocol document alone may. With --baseline, first the same against a
   server run from that checkout (an older commit: `git worktree add /tmp/old COMMIT`), so
   before and after are measured in one run on the same calibration.
3. The verdict against the targets (issues 3 and 16), per server and kind of client:
   delivered >= 0.90 raw at saturation; at 10x, p95 capture-to-result latency <= 3x the
   single-frame time, no errors, Jain's index >= 0.9.
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

from bench.common import (
    add_workers_flag,
    free_port,
    loadavg,
    refuse_what_the_swarm_would,
    run_swarm,
    server,
)
from swarm.calibrate import calibrate
from swarm.config import SwarmConfig, default_source
from swarm.frames import load_frames

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "live"


LIVE_SERVER_ARGS = ("--max-sessions", "1000", "--max-sessions-per-client", "0")
# Oversubscription is the point here: admission by rate (--min-session-fps) is off. As an
# environment variable, so an older checkout that lacks the flag starts all the same.
LIVE_SERVER_ENV = {**os.environ, "HOLOTRACK_MIN_SESSION_FPS": "0"}
DELIVERED_TARGET = 0.90
KINDS = ("follow", "ignore")


async def swarm_run(
    port: int, args: argparse.Namespace, steps: list[int], kind: str, out: Path
) -> dict[str, Any]:
    ignoring = ["--ignore-turns", "--in-flight", str(args.ignore_in_flight)]
    return await run_swarm(
        port,
        out,
        *("--sessions", ",".join(map(str, steps)), "--fps", str(args.fps), "--track", args.track),
        *("--hold", str(args.hold), "--warmup", str(args.warmup), "--stop-after", "99"),
        *(ignoring if kind == "ignore" else []),
    )


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
    # On a shared machine the calibration may say little; the steps can then be given.
    saturation = args.saturation or math.ceil(raw / args.fps) + 1
    oversubscribed = args.oversubscribed or round(10 * raw / args.fps)
    print(
        f"raw {raw:.1f} frames/s with {args.workers} workers; one graph alone "
        f"{alone:.1f} frames/s = {single_ms:.1f} ms a frame; load {loadavg()[0]:.2f}",
        flush=True,
    )
    servers = [("baseline", Path(args.baseline))] if args.baseline else []
    servers.append(("this", ROOT))
    kinds: list[str] = args.clients
    runs: dict[str, Any] = {}
    for label, root in servers:
        port = free_port()
        log = OUT / f"server-{label}.log"
        with server(port, args.workers, LIVE_SERVER_ARGS, log=log, env=LIVE_SERVER_ENV, cwd=root):
            for kind in kinds:
                out = OUT / args.track / f"{label}-{kind}"
                before = loadavg()
                report = await swarm_run(port, args, [saturation, oversubscribed], kind, out)
                after = loadavg()
                name = f"{label}/{kind}"
                runs[name] = verdict(report, raw, single_ms, saturation, oversubscribed)
                runs[name]["load"] = [before, after]
                print_run(name, runs[name])
    summary = {
        "track": args.track,
        "fps": args.fps,
        "workers": args.workers,
        "raw_fps": raw,
        "single_frame_ms": single_ms,
        "baseline": args.baseline,
        "runs": runs,
    }
    (OUT / f"summary-{args.track}.json").write_text(json.dumps(summary, indent=2))
    print(f"raw {raw:.1f} frames/s, one frame alone {single_ms:.1f} ms")
    for name, run in runs.items():
        before, after = run["load"]
        print(
            f"{name:18s} delivered/raw {run['efficiency']:.2f}, 10x p95 "
            f"{run['oversubscribed']['latency_ms']['p95']:.0f} ms, Jain "
            f"{run['oversubscribed']['fairness']}, load {before[0]:.2f} -> {after[0]:.2f}"
        )
    ok = all(all(run["checks"].values()) for name, run in runs.items() if name.startswith("this"))
    return 0 if ok else 1


def verdict(
    report: dict[str, Any], raw: float, single_ms: float, saturation: int, oversubscribed: int
) -> dict[str, Any]:
    steps = {s["sessions"]: s for s in report["steps"]}
    sat, over = steps[saturation], steps[oversubscribed]
    delivered = max(s["delivered_fps"] for s in report["steps"])
    efficiency = delivered / raw
    p95 = over["latency_ms"]["p95"]
    checks = {
        f"delivered at saturation {delivered:.1f}/s >= {DELIVERED_TARGET:.2f} x raw {raw:.1f}/s "
        f"({efficiency:.2f})": efficiency >= DELIVERED_TARGET,
        f"10x ({oversubscribed} sessions): p95 {p95:.0f} ms <= 3 x {single_ms:.0f} ms": (
            p95 is not None and p95 <= 3 * single_ms
        ),
        f"10x: errors {over['errors']} == 0": over["errors"] == 0,
        f"10x: Jain's index {over['fairness']} >= 0.9": (over["fairness"] or 0) >= 0.9,
    }
    return {"saturation": sat, "oversubscribed": over, "efficiency": efficiency, "checks": checks}


def print_run(name: str, run: dict[str, Any]) -> None:
    print(f"-- {name}")
    for step in (run["saturation"], run["oversubscribed"]):
        lat = step["latency_ms"]
        print(
            f"{step['sessions']:4d} sessions: delivered {step['delivered_fps']:.1f}/s, "
            f"latency p50/p95/p99 {lat['p50']:.0f}/{lat['p95']:.0f}/{lat['p99']:.0f} ms, "
            f"session fps min {step['session_fps']['min']:.1f}, Jain {step['fairness']}, "
            f"dropped {step['dropped']}, errors {step['errors']}, refusals {step['refusals']}"
        )
    for text, ok in run["checks"].items():
        print(("MET     " if ok else "NOT MET ") + text)
    before, after = run["load"]
    print(f"load average during the swarm: {before[0]:.2f} -> {after[0]:.2f}", flush=True)


def client_kinds(text: str) -> list[str]:
    """--clients as a list of KINDS. Any word but `ignore` ran as `follow`, under its own
    name: `--clients folow` measured follow and labelled it folow."""
    kinds = [kind.strip() for kind in text.split(",") if kind.strip()]
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"{text!r}: name {' or '.join(KINDS)}, comma-separated")
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.live", description=__doc__)
    parser.add_argument("--track", choices=["holistic", "pose"], default="holistic")
    parser.add_argument("--fps", type=float, default=15.0)
    add_workers_flag(parser)
    parser.add_argument("--hold", type=float, default=20.0)
    # The swarm's warm-up starts once every session's graph is built (one at a time per
    # worker, 0.2-2 s each); it then lets the 10x step's grants reach their steady state.
    parser.add_argument("--warmup", type=float, default=25.0)
    parser.add_argument("--raw-seconds", type=float, default=10.0)
    parser.add_argument(
        "--clients",
        type=client_kinds,
        default=",".join(KINDS),
        help="kinds of client, each a swarm run of its own: follow (turns), ignore (the grant)",
    )
    # One frame in flight, as the independent client of issue 16 kept.
    parser.add_argument("--ignore-in-flight", type=int, default=1)
    parser.add_argument(
        "--baseline", default="", help="a checkout of an older commit to measure first"
    )
    parser.add_argument("--saturation", type=int, default=0, help="sessions (default: from raw)")
    parser.add_argument("--oversubscribed", type=int, default=0, help="sessions (default: 10x raw)")
    args = parser.parse_args()
    # --fps 0 ended the calibration in a traceback ("a calibration process died"), and
    # what the swarm refuses ended the run after it, once the server had loaded.
    given = [count for count in (args.saturation, args.oversubscribed) if count]
    refuse_what_the_swarm_would(
        parser,
        SwarmConfig(
            sessions=",".join(map(str, given)) or "1",
            fps=args.fps,
            track=args.track,
            hold=args.hold,
            warmup=args.warmup,
            in_flight=args.ignore_in_flight if "ignore" in args.clients else 1,
            calibrate_seconds=args.raw_seconds,
        ),
    )
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
