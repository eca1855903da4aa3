"""bench.live's --clients: the kinds of client it runs, or a refusal before it calibrates."""

from __future__ import annotations

import argparse
import sys

import pytest

from bench import live


def parsed(monkeypatch: pytest.MonkeyPatch, *argv: str) -> argparse.Namespace:
    seen: list[argparse.Namespace] = []

    async def record(args: argparse.Namespace) -> int:
        seen.append(args)
        return 0

    monkeypatch.setattr(live, "main_async", record)
    monkeypatch.setattr(sys, "argv", ["python -m bench.live", *argv])
    with pytest.raises(SystemExit) as exit_info:
        live.main()
    assert exit_info.value.code == 0
    (args,) = seen
    return args


def test_clients_are_the_kinds_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parsed(monkeypatch).clients == ["follow", "ignore"]
    assert parsed(monkeypatch, "--clients", " ignore ").clients == ["ignore"]


@pytest.mark.parametrize("clients", ["folow", "follow,ignored", ","])
def test_a_kind_of_client_there_is_none_of_is_refused(
    clients: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Any word but "ignore" ran as follow under its own name, after a minute's calibration.
    async def started(args: argparse.Namespace) -> int:
        raise AssertionError("the benchmark started")

    monkeypatch.setattr(live, "main_async", started)
    monkeypatch.setattr(sys, "argv", ["python -m bench.live", "--clients", clients])
    with pytest.raises(SystemExit) as exit_info:
        live.main()
    assert exit_info.value.code == 2
    said = f"argument --clients: {clients!r}: name follow or ignore, comma-separated"
    assert said in capsys.readouterr().err
