"""What every benchmark needs: a free port, the load average, and a real server to load.

`server()` starts `python -m webapp` the way an operator would and returns once GET
/healthz answers, which is after every worker has started and warmed its graphs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from swarm.config import SwarmConfig, validate
from webapp.defaults import default_workers
from webapp.flags import for_argparse, parse_int

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 300.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _at_least_one_worker(text: str) -> int:
    count = parse_int(text)
    if count < 1:
        raise ValueError(f"{text!r}: a server needs at least 1 worker")
    return count


# --workers of a benchmark: 0 was refused by the server it starts, after the model's
# calibration had run a minute ("the server exited with 2; see None").
worker_count = for_argparse(_at_least_one_worker)


def add_workers_flag(parser: argparse.ArgumentParser) -> None:
    """--workers, by default as the server's own: os.cpu_count() counts the host's cores,
    and under taskset or a cpuset container started a process for each on the few given."""
    parser.add_argument(
        "--workers",
        type=worker_count,
        default=default_workers(),
        help="server workers and calibration processes (default: %(default)s, one per core "
        "this process may run on)",
    )


def refuse_what_the_swarm_would(parser: argparse.ArgumentParser, swarm: SwarmConfig) -> None:
    """Stops at the command line on swarm settings the swarm would refuse: it runs only once
    a server has loaded its models, and a step list or rate it refused ended the run there,
    as "the swarm exited with 2" or a traceback about its missing report."""
    problems = validate(swarm)
    if problems:
        parser.error("; ".join(problems))


def loadavg() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages, to two decimals as /proc/loadavg shows them."""
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def server(
    port: int,
    workers: int,
    extra: Sequence[str] = (),
    *,
    log: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
) -> Iterator[subprocess.Popen[bytes]]:
    """A `python -m webapp` on 127.0.0.1:`port`, serving until the block ends.

    Its output goes to `log`, or nowhere; `cwd` may be another checkout. The wait for
    /healthz blocks, which is fine before any load starts.
    """
    command = [sys.executable, "-m", "webapp", "--port", str(port), "--workers", str(workers)]
    with contextlib.ExitStack() as stack:
        output = stack.enter_context(log.open("wb")) if log else subprocess.DEVNULL
        proc = subprocess.Popen(
            [*command, *extra],
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _healthy(f"http://127.0.0.1:{port}/healthz"):
            if proc.poll() is not None:
                raise SystemExit(f"the server exited with {proc.returncode}; see {log}")
            if time.monotonic() > deadline:
                raise SystemExit(f"the server did not answer /healthz in time; see {log}")
            time.sleep(0.5)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def run_swarm(port: int, out: Path, *options: str) -> dict[str, Any]:
    """`python -m swarm` against the server on `port`, with `options`, until it ends; the
    report it wrote to `out`. A report left there by an earlier run is removed first, so a
    swarm that dies before writing one fails here instead of lending its old figures."""
    (out / "report.json").unlink(missing_ok=True)
    swarm = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "swarm",
        "--url",
        f"ws://127.0.0.1:{port}/ws",
        *options,
        "--out",
        str(out),
    )
    await swarm.wait()
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    return report
