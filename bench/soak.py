"""Soak test (issue 6): does the server's memory or latency drift over a long run?

    .venv/bin/python -m bench.soak [--minutes 10] [--workers 1] [--sessions 3] [--cycles 1000]

Starts `python -m webapp --max-sessions-per-client 0` on a free port, admission by rate off
(`HOLOTRACK_MIN_SESSION_FPS=0`, so every session of the swarm is admitted), then:

1. **Cycles** (`--cycles`, 0 to skip): connect / hello (pose) / one frame / result /
   disconnect, `--cycle-concurrency` at a time, after 50 warm-up cycles that create the
   graph spares. With `--hello-options` the cycles' hellos carry them, on `--track`.
   Memory (server + worker RSS from /metrics) and graphs before and after.
2. **Swarm**: `python -m swarm`, holistic by default, `--sessions` sessions (default three
   per worker, about what one worker sustains at 15 fps) paced like the page for
   `--minutes`, their hellos with `--hello-options` ('{"rig": true, "blendshapes": true}'
   soaks what a VTuber's session adds). Every `--sample-seconds` the server's /metrics is
   read: resident memory of the server and each worker, graphs, live sessions, and the
   frame-latency histogram.

Writes bench/out/soak.json and bench/out/soak.png (memory and p95 latency over time;
`--out` for another path) and prints the memory trend (a linear fit over the swarm phase,
and the first minute against the last), latency p95 per minute (capture to result, from
the swarm's frames.csv) and the load average: on a shared machine the latency figures are
indicative. Exits 1 when memory grew (see GROWTH_LIMIT) or the cycles left sessions or
graphs behind.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import itertools
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from bench.common import free_port, loadavg, server
from swarm.config import default_source, load_config, parse_hello_options
from swarm.frames import load_frames
from swarm.probe import with_result

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
WARMUP_CYCLES = 50
# Memory "grew" when the fitted trend adds more than this share of the starting memory
# over the run, or the last minute is this much above the first.
GROWTH_LIMIT = 0.05
# Cycles must leave memory within this of where it was after the warm-up.
CYCLE_TOLERANCE = 0.10
LATENCY_WINDOW_S = 60.0
MB = 2**20
SETTLE_TIMEOUT = 30.0


@dataclass
class Sample:
    t: float  # seconds since the swarm was started
    rss: dict[str, float]  # process -> bytes
    graphs: float
    sessions: float
    workers: float
    load1: float
    # Cumulative frame-latency histogram over all tracks: upper bound -> count.
    buckets: dict[float, float] = field(default_factory=dict)

    @property
    def total_rss(self) -> float:
        return sum(self.rss.values())


async def scrape(http: aiohttp.ClientSession, base: str, t: float) -> Sample:
    async with http.get(f"{base}/metrics") as response:
        text = await response.text()
    sample = Sample(t, {}, 0.0, 0.0, 0.0, os.getloadavg()[0])
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "holotrack_process_resident_bytes":
                sample.rss[s.labels["process"]] = s.value
            elif s.name == "holotrack_graphs":
                sample.graphs = s.value
            elif s.name == "holotrack_sessions_live":
                sample.sessions = s.value
            elif s.name == "holotrack_workers_alive":
                sample.workers = s.value
            elif s.name == "holotrack_frame_latency_seconds_bucket":
                bound = float(s.labels["le"])
                sample.buckets[bound] = sample.buckets.get(bound, 0.0) + s.value
    return sample


def histogram_quantile(q: float, before: dict[float, float], after: dict[float, float]) -> float:
    """The q-quantile (seconds) of the observations between two cumulative histograms,
    interpolated within a bucket as Prometheus does; nan when there are none."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return float("nan")
    rank = q * counts[-1]
    lower, below = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if bound == float("inf"):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


async def no_sessions(http: aiohttp.ClientSession, base: str) -> Sample:
    """A sample once no session is live (the server ends sessions just after clients go)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        sample = await scrape(http, base, 0.0)
        if sample.sessions == 0 or time.monotonic() > deadline:
            return sample
        await asyncio.sleep(0.2)


async def one_cycle(
    http: aiohttp.ClientSession, url: str, frame: bytes, args: argparse.Namespace
) -> None:
    # Pose is the cheapest session; a soak of what hello options add runs the track they need.
    track = args.track if args.hello_options else "pose"
    ws = await with_result(http, url, track, frame, args.hello_options)
    await ws.close()


async def settle(http: aiohttp.ClientSession, base: str, frame: bytes) -> tuple[float, Sample]:
    """Graphs and memory, measured the same way every time (as tests/test_faults.py does).

    Spares are topped up first (three sessions of each track at once), so the count does
    not depend on how sessions overlapped before. A worker recycles an ended graph on its
    preparer thread after answering `end`; a new session's graph is built after every
    recycling asked before it, so graphs are read while a sentinel session that has had a
    result is open (holotrack_graphs is what that result reported).
    """
    url = base.replace("http://", "ws://") + "/ws"
    await no_sessions(http, base)
    fill = await asyncio.gather(
        *(with_result(http, url, track, frame) for track in ("holistic", "pose") * 3)
    )
    for ws in fill:
        await ws.close()
    await no_sessions(http, base)
    sentinel = await with_result(http, url, "pose", frame)
    graphs = (await scrape(http, base, 0.0)).graphs
    await sentinel.close()
    return graphs, await no_sessions(http, base)


async def run_cycles(
    http: aiohttp.ClientSession,
    base: str,
    count: int,
    args: argparse.Namespace,
    frames: Sequence[bytes],
) -> None:
    url = base.replace("http://", "ws://") + "/ws"
    left = iter(range(count))

    async def runner() -> None:
        for n in left:
            await one_cycle(http, url, frames[n % len(frames)], args)

    await asyncio.gather(*(runner() for _ in range(args.cycle_concurrency)))


async def cycles_phase(
    http: aiohttp.ClientSession, base: str, args: argparse.Namespace, frames: Sequence[bytes]
) -> dict[str, Any]:
    await run_cycles(http, base, WARMUP_CYCLES, args, frames)
    graphs_before, before = await settle(http, base, frames[0])
    started = time.monotonic()
    await run_cycles(http, base, args.cycles, args, frames)
    seconds = time.monotonic() - started
    graphs_after, after = await settle(http, base, frames[0])
    change = (after.total_rss - before.total_rss) / before.total_rss
    # no_sessions gives up after SETTLE_TIMEOUT, so sessions may still be live here.
    passed = (
        abs(change) <= CYCLE_TOLERANCE and graphs_after == graphs_before and after.sessions == 0
    )
    return {
        "cycles": args.cycles,
        "concurrency": args.cycle_concurrency,
        "seconds": round(seconds, 1),
        "memory_before_mb": {k: round(v / MB, 1) for k, v in before.rss.items()},
        "memory_after_mb": {k: round(v / MB, 1) for k, v in after.rss.items()},
        "memory_change": round(change, 4),
        "graphs_before": graphs_before,
        "graphs_after": graphs_after,
        "sessions_after": after.sessions,
        "passed": passed,
    }


def hello_options(text: str) -> dict[str, Any]:
    try:
        return parse_hello_options(text)
    except ValueError as error:  # argparse would say only "invalid value"
        raise argparse.ArgumentTypeError(str(error)) from None


def swarm_argv(url: str, out: Path, args: argparse.Namespace) -> list[str]:
    hold = args.minutes * 60.0
    return [
        sys.executable,
        "-m",
        "swarm",
        f"--url={url}",
        f"--sessions={args.sessions}",
        f"--fps={args.fps}",
        f"--track={args.track}",
        f"--warmup={args.swarm_warmup}",
        f"--hold={hold}",
        f"--max-duration={hold + args.swarm_warmup + 300}",
        f"--out={out}",
        *([f"--hello-options={json.dumps(args.hello_options)}"] if args.hello_options else []),
    ]


async def swarm_phase(
    http: aiohttp.ClientSession, base: str, args: argparse.Namespace, out: Path
) -> tuple[list[Sample], int]:
    samples: list[Sample] = []
    url = base.replace("http://", "ws://") + "/ws"
    with (out / "swarm.log").open("wb") as log:
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *swarm_argv(url, out, args), cwd=ROOT, stdout=log, stderr=log
        )
        waiting = asyncio.create_task(proc.wait())
        while not waiting.done():
            samples.append(await scrape(http, base, time.monotonic() - started))
            await asyncio.wait({waiting}, timeout=args.sample_seconds)
        samples.append(await scrape(http, base, time.monotonic() - started))
    return samples, waiting.result()


def latency_windows(frames_csv: Path) -> list[dict[str, float]]:
    """Capture-to-result latency per LATENCY_WINDOW_S window of the swarm's clock."""
    by_window: dict[int, list[float]] = {}
    with frames_csv.open() as f:
        for row in csv.DictReader(f):
            if row["outcome"] == "result" and row["latency_ms"]:
                window = int(float(row["sent"]) // LATENCY_WINDOW_S)
                by_window.setdefault(window, []).append(float(row["latency_ms"]))
    return [
        {
            "start_s": w * LATENCY_WINDOW_S,
            "results": len(values),
            "p50_ms": round(float(np.percentile(values, 50)), 1),
            "p95_ms": round(float(np.percentile(values, 95)), 1),
            "p99_ms": round(float(np.percentile(values, 99)), 1),
        }
        for w, values in sorted(by_window.items())
    ]


def memory_trend(samples: Sequence[Sample]) -> dict[str, Any]:
    """Linear fit of total RSS over the samples, and the first minute against the last."""
    t = np.array([s.t for s in samples])
    mb = np.array([s.total_rss / MB for s in samples])
    slope, _ = np.polyfit(t / 60.0, mb, 1)
    minutes = (t[-1] - t[0]) / 60.0
    first = mb[t <= t[0] + 60.0].mean()
    last = mb[t >= t[-1] - 60.0].mean()
    fitted_growth = slope * minutes / max(mb[0], 1.0)
    grew = fitted_growth > GROWTH_LIMIT or (last - first) / first > GROWTH_LIMIT
    return {
        "start_mb": round(float(mb[0]), 1),
        "end_mb": round(float(mb[-1]), 1),
        "peak_mb": round(float(mb.max()), 1),
        "slope_mb_per_min": round(float(slope), 3),
        "first_minute_mb": round(float(first), 1),
        "last_minute_mb": round(float(last), 1),
        "fitted_growth": round(float(fitted_growth), 4),
        "grew": bool(grew),
    }


def server_p95(samples: Sequence[Sample]) -> list[dict[str, float]]:
    """Server-side frame latency p95 (arrival to result written) between two samples."""
    return [
        {
            "t": round(b.t, 1),
            "p95_ms": round(histogram_quantile(0.95, a.buckets, b.buckets) * 1e3, 1),
        }
        for a, b in itertools.pairwise(samples)
    ]


def plot(path: Path, samples: Sequence[Sample], windows: Sequence[dict[str, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s.t / 60.0 for s in samples]
    fig, (memory, latency, load) = plt.subplots(3, 1, figsize=(9, 10), sharex=True)
    memory.plot(minutes, [s.total_rss / MB for s in samples], label="server + workers", lw=2)
    for process in sorted({p for s in samples for p in s.rss}):
        memory.plot(minutes, [s.rss.get(process, 0.0) / MB for s in samples], label=process)
    memory.set_ylabel("resident MB")
    memory.set_ylim(bottom=0)
    memory.legend(loc="center right")
    memory.set_title("Soak: memory, latency and load over time")
    server = server_p95(samples)
    latency.plot(
        [p["t"] / 60.0 for p in server],
        [p["p95_ms"] for p in server],
        label="server p95 (arrival to result, between samples)",
        alpha=0.6,
    )
    latency.step(
        [(w["start_s"] + LATENCY_WINDOW_S) / 60.0 for w in windows],
        [w["p95_ms"] for w in windows],
        where="pre",
        label="client p95 (capture to result, per minute)",
        lw=2,
    )
    latency.set_ylabel("ms")
    latency.set_ylim(bottom=0)
    latency.legend(loc="upper right")
    load.plot(minutes, [s.load1 for s in samples], label="load average (1 min)")
    load.plot(minutes, [s.sessions for s in samples], label="live sessions")
    load.plot(minutes, [s.graphs for s in samples], label="graphs")
    load.set_xlabel("minutes since the swarm started")
    load.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def server_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment the server (and so its workers) starts with. Admission by rate is
    off: the soak holds --sessions at one worker's capacity whatever a frame costs that day,
    where --min-session-fps would refuse the third session on a slow or busy host."""
    env = dict(os.environ, HOLOTRACK_MIN_SESSION_FPS="0")
    if args.malloc_mmap_threshold:
        env["MALLOC_MMAP_THRESHOLD_"] = str(args.malloc_mmap_threshold)
    return env


async def main_async(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    load_before = loadavg()
    serving = server(
        port,
        args.workers,
        ["--max-sessions-per-client", "0"],
        log=out.with_name(out.name + "-server.log"),
        env=server_env(args),
    )
    with serving:
        async with aiohttp.ClientSession() as http:
            cycles: dict[str, Any] | None = None
            if args.cycles:
                frames = load_frames(default_source(), 480, 70, 40).jpegs
                print(f"soak: {args.cycles} cycles, {args.cycle_concurrency} at a time ...")
                cycles = await cycles_phase(http, base, args, frames)
                print(
                    f"cycles: {cycles['cycles']} in {cycles['seconds']} s; memory (MB) "
                    f"{cycles['memory_before_mb']} -> {cycles['memory_after_mb']} "
                    f"({cycles['memory_change']:+.1%}); graphs {cycles['graphs_before']:g} -> "
                    f"{cycles['graphs_after']:g}; sessions left {cycles['sessions_after']:g}; "
                    f"{'ok' if cycles['passed'] else 'FAILED'}"
                )
            print(
                f"soak: swarm, {args.sessions} {args.track} sessions at {args.fps:g} fps, "
                f"{args.minutes:g} min, {args.workers} worker(s), hello options "
                f"{json.dumps(args.hello_options)} ..."
            )
            swarm_out = out.with_name(out.name + "-swarm")
            swarm_out.mkdir(parents=True, exist_ok=True)
            samples, swarm_status = await swarm_phase(http, base, args, swarm_out)
    load_after = loadavg()
    report: dict[str, Any] = json.loads((swarm_out / "report.json").read_text())
    step = report["steps"][0] if report.get("steps") else {}
    windows = latency_windows(swarm_out / "frames.csv")
    # The trend is taken while every session is streaming: after the swarm's warm-up and
    # before its sessions end (their graphs are recycled then, which moves memory).
    steady = [
        s for s in samples if s.t >= args.swarm_warmup + 5.0 and s.sessions == args.sessions
    ] or samples
    trend = memory_trend(steady)
    summary: dict[str, Any] = {
        "settings": vars(args),
        "cores": os.cpu_count(),
        "load_before": load_before,
        "load_after": load_after,
        "load_during_max": max(s.load1 for s in samples),
        "cycles": cycles,
        "swarm_status": swarm_status,
        "swarm": {
            k: step.get(k)
            for k in (
                "sessions",
                "delivered_fps",
                "latency_ms",
                "session_fps",
                "dropped",
                "errors",
                "refusals",
                "reconciled",
                "passed",
                "server_wait_ms",
            )
        },
        "memory": trend,
        "latency_per_minute": windows,
        "server_p95": server_p95(samples),
        "samples": [asdict(s) | {"buckets": None} for s in samples],
    }
    summary["written"] = [str(out.with_suffix(".json")), str(out.with_suffix(".png"))]
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(out.with_suffix(".png"), samples, windows)
    print_summary(summary)
    failed = trend["grew"] or (cycles is not None and not cycles["passed"]) or swarm_status != 0
    return 1 if failed else 0


def print_summary(summary: dict[str, Any]) -> None:
    memory, swarm = summary["memory"], summary["swarm"]
    print(
        f"\nmemory (server + workers): {memory['start_mb']} MB at the start of the steady "
        f"phase, {memory['end_mb']} MB at the end, peak {memory['peak_mb']} MB; trend "
        f"{memory['slope_mb_per_min']:+.2f} MB/min; first minute {memory['first_minute_mb']} "
        f"MB, last minute {memory['last_minute_mb']} MB: "
        f"{'GREW' if memory['grew'] else 'flat'}"
    )
    latency = swarm.get("latency_ms") or {}
    print(
        f"swarm: {swarm.get('sessions')} sessions, {swarm.get('delivered_fps')} results/s, "
        f"latency p50/p95/p99 {latency.get('p50')}/{latency.get('p95')}/{latency.get('p99')} "
        f"ms, dropped {swarm.get('dropped')}, errors {swarm.get('errors')}, refusals "
        f"{swarm.get('refusals')}, reconciled {swarm.get('reconciled')}"
    )
    print(
        "p95 latency per minute (ms): "
        + ", ".join(f"{w['p95_ms']:g}" for w in summary["latency_per_minute"])
    )
    before, after = summary["load_before"], summary["load_after"]
    print(
        f"load average {before[0]:.2f} before, {after[0]:.2f} after, "
        f"{summary['load_during_max']:.2f} at most during; {summary['cores']} cores"
    )
    print("written: " + ", ".join(summary["written"]))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="swarm phase (default 10)")
    parser.add_argument("--workers", type=int, default=1, help="server workers (default 1)")
    parser.add_argument(
        "--sessions", type=int, default=0, help="swarm sessions (default: 3 per worker)"
    )
    parser.add_argument("--fps", type=float, default=15.0, help="per session (default 15)")
    parser.add_argument("--track", default="holistic", choices=("holistic", "pose"))
    parser.add_argument("--swarm-warmup", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument(
        "--sample-seconds", type=float, default=5.0, help="metrics every (default 5)"
    )
    parser.add_argument(
        "--hello-options",
        type=hello_options,
        default={},
        help="a JSON object added to every hello of the cycles and the swarm "
        """(e.g. '{"rig": true, "blendshapes": true}'); default: none""",
    )
    parser.add_argument("--cycles", type=int, default=1000, help="0 to skip (default 1000)")
    parser.add_argument("--cycle-concurrency", type=int, default=10, help="(default 10)")
    parser.add_argument(
        "--out",
        default=str(OUT / "soak"),
        help="report path without suffix: .json, .png and a -swarm folder (default: %(default)s)",
    )
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument(
        "--malloc-mmap-threshold",
        type=int,
        default=0,
        help="start the server with MALLOC_MMAP_THRESHOLD_ set to this many bytes, to "
        "compare allocator settings (131072 costs ~13%% a frame); default: glibc's own, "
        "with the workers trimming their heap after each closed graph",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.sessions = args.sessions or 3 * args.workers
    # The swarm starts after the server and the cycles, minutes in: a rate or length it
    # refuses ended the soak there, in swarm.log, with exit status 1. Its own check, now.
    load_config(swarm_argv("ws://127.0.0.1:1/ws", Path(args.out), args)[3:], {})
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
