"""bench.admission refuses what its swarm would refuse before it starts a server."""

from __future__ import annotations

import argparse
import sys

import pytest

from bench import admission


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--ramp", "2:x:2"], "--ramp wants whole numbers START:STOP:STEP"),
        (["--ramp", "8:2:2"], "does not count upwards"),
        (["--fps", "0.1"], "--fps must be between 0.5 and 60"),
    ],
)
def test_a_ramp_the_swarm_refuses_is_refused_before_any_server(
    argv: list[str],
    said: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def started(args: argparse.Namespace) -> None:
        raise AssertionError("a server was started")

    monkeypatch.setattr(admission, "main_async", started)
    monkeypatch.setattr(sys, "argv", ["python -m bench.admission", *argv])
    with pytest.raises(SystemExit) as exit_info:
        admission.main()
    assert exit_info.value.code == 2
    assert said in capsys.readouterr().err


def test_the_readmes_ramp_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[argparse.Namespace] = []

    async def record(args: argparse.Namespace) -> None:
        seen.append(args)

    monkeypatch.setattr(admission, "main_async", record)
    monkeypatch.setattr(sys, "argv", ["python -m bench.admission", "--ramp", "2:8:2"])
    admission.main()
    (args,) = seen
    assert args.ramp == "2:8:2"
