"""One session at 30 fps against a real one-worker server: old code, new code, new code with
`--overlap-frames`, in alternating rounds of one run (issue 16, "one session, one person").

    .venv/bin/python -m bench.inflight_server --old /tmp/h16p-old   # a worktree of the old code

Each round (every other one in reverse order) starts each server in turn (`python -m
webapp --workers 1`), loads it with the real swarm (`python -m swarm --sessions 1 --fps
30`), and stops it, so only one runs at a time. One graph's in-process sequential rate
(`swarm.calibrate`, one process, decode included) is measured before the first round and
after the last, on the same frames; every rate is printed as a ratio to it and to the old
server's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import free_port, server
from swarm.calibrate import calibrate
from swarm.config import default_source
from swarm.frames import load_frames

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "inflight"


def swarm(port: int, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "swarm",
            "--url",
            f"ws://127.0.0.1:{port}/ws",
            "--sessions",
            "1",
            "--fps",
            str(args.fps),
            "--hold",
            str(args.hold),
            "--warmup",
            str(args.warmup),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    step: dict[str, Any] = json.loads((out / "report.json").read_text())["steps"][0]
    return step


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inflight_server")
    parser.add_argument("--old", type=Path, required=True, help="a worktree of the old code")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--hold", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--raw-seconds", type=float, default=10.0)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    variants = {
        "old": (args.old.resolve(), []),
        "new": (ROOT, []),
        "new --overlap-frames": (ROOT, ["--overlap-frames"]),
    }
    jpegs = load_frames(default_source(), 480, 70, 300).jpegs
    loads = [os.getloadavg()]
    raw = [calibrate(jpegs, "holistic", args.fps, args.raw_seconds, 1).raw_fps]
    steps: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for round_ in range(args.rounds):
        # Every other round runs them in reverse, so a machine getting busier or quieter
        # during the run favours none of them.
        order = list(enumerate(variants.items()))
        for index, (name, (tree, extra)) in order if round_ % 2 == 0 else order[::-1]:
            port = free_port()
            out = OUT / f"r{round_}-v{index}"
            log = OUT / f"server-r{round_}-v{index}.log"
            with server(port, 1, extra, log=log, cwd=tree):
                steps[name].append(swarm(port, args, out))
            loads.append(os.getloadavg())
    raw.append(calibrate(jpegs, "holistic", args.fps, args.raw_seconds, 1).raw_fps)
    sequential = statistics.mean(raw)
    print(
        f"one graph in-process, sequential: {' and '.join(f'{r:.1f}' for r in raw)} frames/s "
        f"(before, after); {len(jpegs)} frames from {default_source()}"
    )
    old_fps = statistics.mean(s["delivered_fps"] for s in steps["old"])
    for name, runs in steps.items():
        fps = statistics.mean(s["delivered_fps"] for s in runs)
        p50 = statistics.mean(s["latency_ms"]["p50"] for s in runs)
        p95 = statistics.mean(s["latency_ms"]["p95"] for s in runs)
        each = ", ".join(f"{s['delivered_fps']:.1f}" for s in runs)
        print(
            f"{name:<22} {fps:5.1f} frames/s ({each}): x{fps / sequential:.2f} sequential, "
            f"x{fps / old_fps:.2f} old; latency p50 {p50:.0f} p95 {p95:.0f} ms; "
            f"dropped {sum(s['dropped'] for s in runs)}, errors {sum(s['errors'] for s in runs)}"
        )
    print("load average (1, 5, 15 min) at the start and after each server:")
    print("  " + "; ".join(f"{a:.2f} {b:.2f} {c:.2f}" for a, b, c in loads))
    (OUT / "summary.json").write_text(json.dumps({"raw": raw, "steps": steps, "load": loads}))


if __name__ == "__main__":
    main()
