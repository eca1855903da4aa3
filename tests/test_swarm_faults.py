"""Faults a reviewer found in the swarm: each test fails on the code before its fix.

Runs go against the in-process echo server (swarm.echo), which answers at once: no model.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from swarm import echo, load_table
from swarm.config import SwarmConfig, load_config
from swarm.frames import FrameSet, load_frames
from swarm.knee import knee_line
from swarm.load_table import markdown
from swarm.report import build_report, table
from swarm.runner import Runner, RunResult
from tests.media import ASL_VIDEO
from tests.test_swarm_report import _run
from webapp.defaults import default_workers

MakeServer = Callable[[web.Application], Awaitable[TestServer]]

# A run clock that reads 2**20 s (12 days, a host's uptime on a monotonic clock): between
# 2**20 and 2**21 every float is a multiple of 2**-32, so (start + 0.7) - start is 0.7
# rounded to that grid for any start, and that is below 0.7. The trap is then certain,
# not a matter of where the window happens to start.
LATE = 2.0**20
HOLD = 0.7


@functools.cache
def frames() -> FrameSet:
    return load_frames(ASL_VIDEO, width=160, quality=70, max_frames=5)


async def echo_url(aiohttp_server: MakeServer, app: web.Application | None = None) -> str:
    server = await aiohttp_server(app or echo.create_app(stats_interval=0.3))
    return f"ws://{server.host}:{server.port}/ws"


def late_runner(url: str, **settings: Any) -> Runner:
    config = SwarmConfig(
        url=url, fps=15.0, warmup=0.0, hold=HOLD, drain=0.5, metrics_url="none", stop_after=10
    )
    runner = Runner(dataclasses.replace(config, **settings), frames())
    runner.clock.origin -= LATE
    return runner


# -- a whole hold is not cut short ---------------------------------------------------------


async def test_a_hold_that_ran_to_its_end_is_not_cut_short_whatever_the_rounding(
    aiohttp_server: MakeServer,
) -> None:
    assert (LATE + HOLD) - LATE < HOLD  # the rounding that marked whole holds cut short
    runner = late_runner(await echo_url(aiohttp_server), sessions="1,1,1")
    run = await runner.run()
    assert [s.interrupted for s in run.steps] == [False, False, False]
    assert run.stopped == ""
    assert all(s.window_s == HOLD for s in run.steps)


async def test_a_hold_interrupted_is_still_cut_short(aiohttp_server: MakeServer) -> None:
    runner = late_runner(await echo_url(aiohttp_server), sessions="1,1", hold=30.0)
    task = asyncio.create_task(runner.run())
    await runner.holding.wait()
    runner.interrupt()
    run = await task
    (summary,) = run.steps
    assert summary.interrupted
    assert not summary.passed
    assert summary.window_s < 30.0
    assert run.stopped == "interrupted"


# -- one replica of several not read -------------------------------------------------------


def metrics_app() -> web.Application:
    """The echo server, with a /metrics whose counters grow at every read."""
    registry = CollectorRegistry()
    cpu = Counter("holotrack_process_cpu_seconds", "", ["process"], registry=registry)
    rss = Gauge("holotrack_process_resident_bytes", "", ["process"], registry=registry)
    busy = Counter("holotrack_pool_busy_seconds", "", registry=registry)
    Gauge("holotrack_workers", "", registry=registry).set(1)
    rss.labels("server").set(300e6)

    async def metrics(request: web.Request) -> web.Response:
        cpu.labels("server").inc(0.2)
        busy.inc(0.1)
        return web.Response(body=generate_latest(registry), content_type="text/plain")

    app = echo.create_app(stats_interval=0.3)
    app.router.add_get("/metrics", metrics)
    return app


async def one_step_unknown(url: str, metrics_url: str) -> dict[str, Any]:
    """The report of a one-session run whose server figures could not be read: cpu, rss
    and busy are unknown, not partial."""
    runner = late_runner(url, sessions="1", metrics_url=metrics_url)
    run = await runner.run()
    report = build_report(runner.config, frames(), run, None)
    (step,) = report["steps"]
    assert (step["server_cpu_percent"], step["server_rss_bytes"], step["busy_ratio"]) == (
        None,
        None,
        None,
    )
    return report


async def test_a_replica_not_read_leaves_the_servers_figures_unknown_not_partial(
    aiohttp_server: MakeServer,
) -> None:
    url = await echo_url(aiohttp_server, metrics_app())
    read = url.replace("ws://", "http://").replace("/ws", "/metrics")
    # As a proxy that does not pass /metrics answers: 404.
    unread = read.replace("/metrics", "/elsewhere")
    report = await one_step_unknown(url, f"{read},{unread}")
    (step,) = report["steps"]
    # What the replica read did say is kept, under its place in --metrics-url.
    assert step["server_processes"]["0/server"]["rss_bytes"] == 300e6
    lines = table(report).splitlines()
    cells = dict(zip(*(re.split(r"\s{2,}", line.strip()) for line in lines[:2]), strict=True))
    assert (cells["server cpu"], cells["rss MB"], cells["busy"]) == ("-", "-", "-")
    (note,) = [line for line in lines if line.startswith("server cpu, rss and busy unknown")]
    assert "2 replicas could not all be read" in note
    assert f"{unread} answered 404" in note


# -- a malformed address is a bad flag -----------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--url", "ws://[::1/ws"], "--url 'ws://[::1/ws' is not a valid address"),
        (["--url", "ws://127.0.0.1:99999/ws"], "--url 'ws://127.0.0.1:99999/ws' is not a valid"),
        (["--url", "ws://:8080/ws"], "--url 'ws://:8080/ws' names no host"),
        (
            ["--metrics-url", "http://:9090/metrics"],
            "--metrics-url 'http://:9090/metrics' names no",
        ),
        (["--metrics-url", "http://[bad"], "--metrics-url 'http://[bad' is not a valid address"),
        (
            ["--metrics-url", "http://127.0.0.1:9/metrics,http://[::1/metrics"],
            "--metrics-url 'http://[::1/metrics' is not a valid address",
        ),
    ],
)
def test_a_malformed_address_is_refused_as_a_bad_flag(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        load_config(argv, environ={})
    assert exit_info.value.code == 2
    assert said in capsys.readouterr().err.splitlines()[-1]


@pytest.mark.parametrize("origin", ["http://a\r\nX-Injected: 1", "http://a\x00b", "http://a\x7f"])
def test_an_origin_no_header_may_carry_is_refused_as_a_bad_flag(
    origin: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each session's connect raised aiohttp's ValueError, logged as a task's traceback,
    and the run ended with no error counted and nothing measured."""
    with pytest.raises(SystemExit) as exit_info:
        load_config(["--origin", origin], environ={})
    assert exit_info.value.code == 2
    said = capsys.readouterr().err.splitlines()[-1]
    assert f"--origin {origin!r} holds a control character" in said
    # What a header may carry is sent, for the server to judge (1008, naming it).
    assert load_config(["--origin", "http://a\tb c"], environ={}).origin == "http://a\tb c"


# -- the knee is one step ------------------------------------------------------------------


def repeated_count_run() -> tuple[SwarmConfig, RunResult]:
    """Three steps of 2 sessions: the second delivers most, and no later step beats it."""
    config, run = _run()
    template = run.steps[1]
    assert template.sessions == 2
    steps = [dataclasses.replace(template, delivered_fps=fps) for fps in (20.0, 24.0, 23.0)]
    return dataclasses.replace(config, sessions="2,2,2"), RunResult(run.started_at, steps)


def test_with_a_repeated_session_count_only_the_knee_step_is_marked() -> None:
    config, run = repeated_count_run()
    report = build_report(config, frames(), run, None)
    assert report["knee_sessions"] == 2
    assert [s["knee"] for s in report["steps"]] == [False, True, False]
    marked = [line for line in table(report).splitlines() if line.endswith("<- knee")]
    assert len(marked) == 1
    assert "24.0" in marked[0].split()
    assert knee_line(report).startswith("knee: 2 sessions, 24.0 fps delivered")
    (row,) = [line for line in markdown(report).splitlines()[2:] if line.endswith("| knee |")]
    assert row.startswith("| 2 | 24.0 |")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (None, "cannot read"),
        ("nope", "is not JSON"),
        ("{}", "is not a swarm's report.json (KeyError: 'steps')"),
        ('{"steps": 5}', "is not a swarm's report.json (TypeError"),
    ],
)
def test_load_table_says_in_one_line_what_is_wrong_with_its_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None, said: str
) -> None:
    """A missing file, or one that is no swarm report, ended in a traceback."""
    report = tmp_path / "report.json"
    if text is not None:
        report.write_text(text)
    with pytest.raises(SystemExit) as ended:
        load_table.main([str(report)])
    assert ended.value.code == 1
    err = capsys.readouterr().err
    assert said in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


# -- another program's /metrics is named as such ---------------------------------------------


async def test_a_metrics_url_of_another_program_says_why_the_figures_are_unknown(
    aiohttp_server: MakeServer,
) -> None:
    """Prometheus text without the server's figures: the table's "-" came with no reason."""

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text="process_cpu_seconds_total 12.5\n", content_type="text/plain")

    app = echo.create_app(stats_interval=0.3)
    app.router.add_get("/metrics", metrics)
    url = await echo_url(aiohttp_server, app)
    read = url.replace("ws://", "http://").replace("/ws", "/metrics")
    report = await one_step_unknown(url, read)
    assert report["metrics_problems"] == [
        f"{read}: no holotrack_process_cpu_seconds_total, holotrack_process_resident_bytes "
        "or holotrack_workers (not a Holotrack server?)"
    ]
    assert any(
        line.startswith("server cpu, rss and busy unknown") for line in table(report).splitlines()
    )


# -- calibration stays within the machine --------------------------------------------------


def test_more_calibration_processes_than_cores_are_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--calibrate-workers 1000000 began starting a million model processes; past the cores
    the process may run on they only share them."""
    cores = default_workers()
    too_many = ["--calibrate", "--calibrate-workers", str(cores + 1)]
    with pytest.raises(SystemExit) as exit_info:
        load_config(too_many, environ={})
    assert exit_info.value.code == 2
    said = capsys.readouterr().err.splitlines()[-1]
    assert f"--calibrate-workers must be 0 (one per core) to {cores}" in said
    assert load_config(["--calibrate", "--calibrate-workers", str(cores)], environ={})
    # Without --calibrate the setting is not used: a profile's twin stops no run.
    assert load_config(["--calibrate-workers", str(cores + 1)], environ={})
