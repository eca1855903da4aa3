"""The benchmarks' command lines: what they run when told nothing."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

import pytest

from bench.predict import Report, print_report, verdict


class Parsed(Exception):
    """The command line a script read, stopped before it starts a server."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__()
        self.namespace = args


@pytest.mark.parametrize("script", ["bench.live", "bench.admission", "bench.predict"])
def test_a_benchmarks_default_workers_follow_the_cores_it_may_run_on(
    script: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the server's own default: pinned to 1 core of 8 (taskset, a cpuset container),
    each started 8 calibration processes and a server with 8 workers on that one core."""
    parse_args = argparse.ArgumentParser.parse_args

    def parse_and_stop(self: argparse.ArgumentParser, *given: Any, **named: Any) -> None:
        raise Parsed(parse_args(self, *given, **named))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_and_stop)
    monkeypatch.setattr(sys, "argv", [script])
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})
    module = importlib.import_module(script)
    with pytest.raises(Parsed) as parsed:
        module.main()
    assert parsed.value.namespace.workers == 1


def predict_run(users: int, other_cores: float) -> dict[str, Any]:
    """One Locust run's record as bench.predict keeps it (figures of a quick look)."""
    return {
        "users": users,
        "ok_rps_steady": 1.4,
        "efficiency_steady": 0.26,
        "ok_rps_whole_run": 1.59,
        "efficiency_whole_run": 0.29,
        "rps_whole_run": 1.59,
        "offered_ceiling_rps": 1.18,
        "p50_ms": 520.0,
        "p95_ms": 1100.0,
        "p99_ms": 1100.0,
        "failures_503": 0,
        "failures_other": 0,
        "error_rate": 0.0,
        "loadavg_before": (7.7, 6.0, 4.0),
        "loadavg_after": (7.7, 6.0, 4.0),
        "server_cpu_ms_per_ok": 127.8,
        "cpu_efficiency": 0.6,
        "cpu_cores": {"server_main": 0.02, "server_workers": 0.11, "other_processes": other_cores},
        "locust_cpu_warning": False,
        "failures_by_error": {},
    }


def test_a_quick_look_on_a_shared_machine_is_said_to_be_unreliable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # bench/README.md's quick look (--users 20) has no 80-user run, so no verdict; the
    # warning that other processes took cores was left out with it, at 1.75 cores taken.
    raw = {
        "images_per_s": 5.49,
        "workers": 1,
        "decode_ms": 23.1,
        "model_ms": 158.9,
        "cpu_ms_per_image": 77.0,
        "cores_per_worker": 0.42,
        "other_processes_cores": 1.56,
        "loadavg_before": (5.4, 4.0, 3.0),
        "loadavg_after": (6.1, 4.0, 3.0),
    }
    report = Report(settings={"cores": 2}, raw=raw, runs=[predict_run(20, 1.75)])
    report.target = verdict(report)
    assert report.target["met"] is None
    assert report.target["machine_shared"] == {"raw": 1.56, "20 users": 1.75}
    print_report(report)
    out = capsys.readouterr().out
    assert "WARNING: the machine was shared (1.56 cores during raw, 1.75 cores during 20" in out
    quiet = Report(settings={"cores": 2}, raw=raw | {"other_processes_cores": 0.1})
    quiet.runs = [predict_run(20, 0.2)]
    assert verdict(quiet)["machine_shared"] == {}


@pytest.mark.parametrize("seeds", ["1,x", "0.5"])
def test_fitness_accuracy_refuses_seeds_that_are_not_whole_numbers(
    seeds: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo in --seeds was a ValueError traceback, read after argparse had done."""
    from bench import fitness_accuracy

    with pytest.raises(SystemExit) as exit_info:
        fitness_accuracy.main(["--seeds", seeds])
    assert exit_info.value.code == 2
    assert f"--seeds wants whole numbers, comma-separated, got {seeds!r}" in capsys.readouterr().err
