"""bench.soak refuses what its swarm would refuse before it starts a server."""

from __future__ import annotations

import argparse

import pytest

from bench import soak


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--fps", "90"], "--fps must be between 0.5 and 60"),
        (["--swarm-warmup", "nan"], "--warmup must be a finite number"),
        (["--sessions", "6000"], "every step must have 1 to 5000 sessions"),
    ],
)
def test_a_swarm_the_swarm_refuses_is_refused_before_any_server(
    argv: list[str],
    said: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def started(args: argparse.Namespace) -> int:
        raise AssertionError("a server was started")

    monkeypatch.setattr(soak, "main_async", started)
    with pytest.raises(SystemExit) as exit_info:
        soak.main(argv)
    assert exit_info.value.code == 2
    assert said in capsys.readouterr().err


def test_the_readmes_soak_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[argparse.Namespace] = []

    async def record(args: argparse.Namespace) -> int:
        seen.append(args)
        return 0

    monkeypatch.setattr(soak, "main_async", record)
    options = '{"rig": true, "blendshapes": true}'
    assert soak.main(["--minutes", "10", "--hello-options", options]) == 0
    (args,) = seen
    assert args.sessions == 3
