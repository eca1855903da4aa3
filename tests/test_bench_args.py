"""The benchmarks' command lines: a typo is refused in argparse's words before any server
starts or any calibration runs, and what the READMEs run is read as meant."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

Run = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def run_main(monkeypatch: pytest.MonkeyPatch, script: str, argv: list[str], run: Run) -> None:
    """Runs `script`'s main() on `argv` with `run` in place of what it would start."""
    module = importlib.import_module(script)
    monkeypatch.setattr(module, "main_async", run)
    monkeypatch.setattr(sys, "argv", [f"python -m {script}", *argv])
    try:
        module.main()
    except SystemExit as done:
        if done.code not in (0, None):
            raise


def parsed(monkeypatch: pytest.MonkeyPatch, script: str, *argv: str) -> argparse.Namespace:
    seen: list[argparse.Namespace] = []

    async def record(args: argparse.Namespace) -> int:
        seen.append(args)
        return 0

    run_main(monkeypatch, script, list(argv), record)
    (args,) = seen
    return args


@pytest.mark.parametrize(
    ("script", "argv", "said"),
    [
        # The swarm runs once a server has loaded its models (after a soak's 1000 cycles):
        # a setting it refused ended the run there, as "the swarm exited with 2".
        ("bench.soak", ["--fps", "90"], "--fps must be between 0.5 and 60"),
        ("bench.soak", ["--swarm-warmup", "nan"], "--warmup must be a finite number"),
        ("bench.soak", ["--sessions", "6000"], "every step must have 1 to 5000 sessions"),
        ("bench.admission", ["--ramp", "2:x:2"], "--ramp wants whole numbers START:STOP:STEP"),
        ("bench.admission", ["--ramp", "8:2:2"], "does not count upwards"),
        ("bench.admission", ["--fps", "0.1"], "--fps must be between 0.5 and 60"),
        ("bench.scaleout", ["--sessions", "1,x"], "--sessions wants whole numbers of sessions"),
        ("bench.scaleout", ["--fps", "90"], "--fps must be between 0.5 and 60"),
        ("bench.scaleout", ["--hold", "nan"], "--hold must be a finite number"),
        # "holistic:15.0" or a typo matched no run: none ran, then a traceback writing the
        # summary of none (FileNotFoundError).
        *[
            (
                "bench.capacity",
                ["--only", only],
                f"argument --only: {only!r} is none of holistic:15, holistic:5, pose:15, pose:5",
            )
            for only in ("holistic:10", "holstic:5", "pose")
        ],
        # A traceback from the calibration ("a calibration process died"), or the swarm's
        # refusal once the server had loaded.
        ("bench.live", ["--fps", "0"], "--fps must be between 0.5 and 60"),
        ("bench.live", ["--hold", "nan"], "--hold must be a finite number"),
        ("bench.live", ["--saturation", "-1"], "every step must have 1 to 5000 sessions"),
        ("bench.live", ["--raw-seconds", "0"], "--calibrate-seconds must be positive"),
        # The server's refusal of 0 workers, once the calibration had run.
        *[
            (script, ["--workers", "0"], "argument --workers: '0': a server needs at least 1")
            for script in ("bench.live", "bench.capacity", "bench.admission")
        ],
        # Any word but "ignore" ran as follow under its own name, after a minute's calibration.
        *[
            (
                "bench.live",
                ["--clients", clients],
                f"argument --clients: {clients!r}: name follow or ignore, comma-separated",
            )
            for clients in ("folow", "follow,ignored", ",")
        ],
    ],
)
def test_a_setting_the_benchmark_cannot_run_is_refused_before_it_starts(
    script: str,
    argv: list[str],
    said: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def started(args: argparse.Namespace) -> int:
        raise AssertionError("the benchmark started")

    with pytest.raises(SystemExit) as exit_info:
        run_main(monkeypatch, script, argv, started)
    assert exit_info.value.code == 2
    assert said in capsys.readouterr().err


def test_what_the_readmes_run_is_read_as_meant(monkeypatch: pytest.MonkeyPatch) -> None:
    options = '{"rig": true, "blendshapes": true}'
    soak = parsed(monkeypatch, "bench.soak", "--minutes", "10", "--hello-options", options)
    assert soak.sessions == 3
    assert parsed(monkeypatch, "bench.admission", "--ramp", "2:8:2").ramp == "2:8:2"
    assert parsed(monkeypatch, "bench.scaleout").sessions == "1,2,3,4,5,6,7,8"
    assert parsed(monkeypatch, "bench.live").clients == ["follow", "ignore"]
    assert parsed(monkeypatch, "bench.live", "--clients", " ignore ").clients == ["ignore"]


@pytest.mark.parametrize(
    ("only", "runs"),
    [
        ("holistic:5,pose:15", {("holistic", 5.0), ("pose", 15.0)}),
        ("holistic:15.0", {("holistic", 15.0)}),
        ("", set()),
    ],
)
def test_capacity_only_names_the_runs_it_keeps(
    only: str, runs: set[tuple[str, float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert parsed(monkeypatch, "bench.capacity", "--only", only).only == runs
