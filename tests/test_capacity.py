"""bench.capacity's --only: the runs it names, or a refusal before any server starts."""

from __future__ import annotations

import argparse
import sys

import pytest

from bench import capacity


@pytest.mark.parametrize(
    ("only", "runs"),
    [
        ("holistic:5,pose:15", {("holistic", 5.0), ("pose", 15.0)}),
        ("holistic:15.0", {("holistic", 15.0)}),
        ("", set()),
    ],
)
def test_only_names_the_runs_it_keeps(
    only: str, runs: set[tuple[str, float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[argparse.Namespace] = []

    async def record(args: argparse.Namespace) -> None:
        seen.append(args)

    monkeypatch.setattr(capacity, "main_async", record)
    monkeypatch.setattr(sys, "argv", ["python -m bench.capacity", "--only", only])
    capacity.main()
    (args,) = seen
    assert args.only == runs


@pytest.mark.parametrize("only", ["holistic:10", "holstic:5", "pose"])
def test_only_refuses_a_run_there_is_none_of(
    only: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # "holistic:15.0" or a typo matched nothing: no run, then a traceback writing the
    # summary of none (FileNotFoundError) or an empty one.
    async def started(args: argparse.Namespace) -> None:
        raise AssertionError("a run started")

    monkeypatch.setattr(capacity, "main_async", started)
    monkeypatch.setattr(sys, "argv", ["python -m bench.capacity", "--only", only])
    with pytest.raises(SystemExit) as exit_info:
        capacity.main()
    assert exit_info.value.code == 2
    said = f"argument --only: {only!r} is none of holistic:15, holistic:5, pose:15, pose:5"
    assert said in capsys.readouterr().err
