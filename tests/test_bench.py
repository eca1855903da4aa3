"""The benchmarks' command lines: what they run when told nothing."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

import pytest


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
