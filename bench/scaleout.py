"""Scale-out benchmark (issue 5): the swarm against one single-worker replica directly, then
against two single-worker replicas behind nginx (deploy/cluster.py, as `make cluster`).

    .venv/bin/python -m bench.scaleout [--sessions 1,2,3,4,5,6,7,8] [--fps 15] [--hold 10]

Each setup gets the same `python -m swarm` run (holistic, paced like the page, the SLO of
swarm/README.md); its report lands in bench/out/scaleout/<setup>/. Prints, per setup, the
sustainable sessions (largest step meeting the SLO) and the delivered results/s, and the
load average before and after each run: on a shared machine the figures are indicative.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import free_port, loadavg, refuse_what_the_swarm_would, server
from deploy.cluster import Cluster, ReplicaSpec
from swarm.config import SwarmConfig

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "scaleout"
# No admission by rate, as in bench.capacity: the swarm finds what one and two replicas
# sustain, and past that the figures show the fps falling rather than sessions refused.
REPLICA_ARGS = ("--min-session-fps", "0")


@dataclass(frozen=True)
class Outcome:
    setup: str
    replicas: int
    report: dict[str, Any]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]

    @property
    def sustainable(self) -> int:
        return int(self.report.get("sustainable_sessions", 0))

    def step(self, sessions: int) -> dict[str, Any] | None:
        return next((s for s in self.report.get("steps", []) if s["sessions"] == sessions), None)

    @property
    def best_delivered(self) -> float:
        return max((float(s["delivered_fps"]) for s in self.report.get("steps", [])), default=0.0)


def swarm_argv(url: str, out: Path, args: argparse.Namespace) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    return [
        sys.executable,
        "-m",
        "swarm",
        f"--url={url}",
        f"--sessions={args.sessions}",
        f"--fps={args.fps}",
        f"--track={args.track}",
        f"--warmup={args.warmup}",
        f"--hold={args.hold}",
        f"--out={out}",
    ]


def read_report(out: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    return report


async def run_swarm(url: str, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    argv = swarm_argv(url, out, args)
    with (out / "swarm.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(*argv, cwd=ROOT, stdout=log, stderr=log)
        status = await proc.wait()
    if status != 0:
        raise RuntimeError(f"the swarm exited with {status}; see {out / 'swarm.log'}")
    return read_report(out)


async def one_replica(args: argparse.Namespace) -> Outcome:
    port = free_port()
    OUT.mkdir(parents=True, exist_ok=True)
    with server(port, 1, REPLICA_ARGS, log=OUT / "one-server.log"):
        before = loadavg()
        report = await run_swarm(f"ws://127.0.0.1:{port}/ws", OUT / "one", args)
        return Outcome("1 replica, direct", 1, report, before, loadavg())


async def two_replicas(args: argparse.Namespace) -> Outcome:
    replicas = [ReplicaSpec(free_port(), REPLICA_ARGS), ReplicaSpec(free_port(), REPLICA_ARGS)]
    async with Cluster(replicas, port=free_port(), echo=None) as cluster:
        before = loadavg()
        report = await run_swarm(cluster.ws_url, OUT / "two", args)
        return Outcome("2 replicas, nginx", 2, report, before, loadavg())


def print_outcomes(outcomes: Sequence[Outcome], args: argparse.Namespace) -> None:
    print(
        f"\n{args.track}, {args.fps:g} fps per session, steps {args.sessions}, "
        f"{args.hold:g} s hold; {os.cpu_count()} cores"
    )
    print(
        f"{'setup':<20} {'sessions':>8} {'delivered':>10} {'p95 ms':>7} {'refused':>7} {'SLO':>5}"
    )
    for outcome in outcomes:
        for step in outcome.report.get("steps", []):
            print(
                f"{outcome.setup:<20} {step['sessions']:>8} {step['delivered_fps']:>10.1f} "
                f"{step['latency_ms'].get('p95') or 0:>7.0f} {step['refusals']:>7} "
                f"{'meets' if step['passed'] else 'miss':>5}"
            )
    print()
    for outcome in outcomes:
        at = outcome.step(outcome.sustainable)
        delivered = f"{at['delivered_fps']:.1f}" if at else "-"
        print(
            f"{outcome.setup}: sustainable {outcome.sustainable} sessions at {args.fps:g} fps "
            f"({delivered} results/s delivered there; best {outcome.best_delivered:.1f}); "
            f"load average {outcome.load_before[0]:.2f} before, {outcome.load_after[0]:.2f} after"
        )
    if len(outcomes) == 2 and outcomes[0].best_delivered > 0:
        ratio = outcomes[1].best_delivered / outcomes[0].best_delivered
        print(f"two replicas deliver {ratio:.2f}x one replica's best results/s")


async def main_async(args: argparse.Namespace) -> int:
    outcomes = [await one_replica(args), await two_replicas(args)]
    print_outcomes(outcomes, args)
    summary = [
        {
            "setup": o.setup,
            "replicas": o.replicas,
            "sustainable_sessions": o.sustainable,
            "best_delivered_fps": o.best_delivered,
            "load_before": o.load_before,
            "load_after": o.load_after,
        }
        for o in outcomes
    ]
    write_summary(summary)
    return 0


def write_summary(summary: list[dict[str, Any]]) -> None:
    (OUT / "scaleout.json").write_text(json.dumps(summary, indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaleout", description=__doc__)
    parser.add_argument(
        "--sessions", default="1,2,3,4,5,6,7,8", help="swarm steps (default: %(default)s)"
    )
    parser.add_argument("--fps", type=float, default=15.0, help="per session (default: 15)")
    parser.add_argument("--track", default="holistic", choices=("holistic", "pose"))
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds per step (default: 3)")
    parser.add_argument("--hold", type=float, default=10.0, help="seconds per step (default: 10)")
    args = parser.parse_args(argv)
    refuse_what_the_swarm_would(
        parser,
        SwarmConfig(
            sessions=args.sessions,
            fps=args.fps,
            track=args.track,
            warmup=args.warmup,
            hold=args.hold,
        ),
    )
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
