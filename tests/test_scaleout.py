"""bench.scaleout's replicas: every session of its swarm is admitted, so its steps past the
sustainable one show the fps falling, as deploy/README.md says, not sessions refused."""

from __future__ import annotations

import argparse

import pytest

from bench import scaleout
from bench.scaleout import REPLICA_ARGS
from webapp.config import load_config
from webapp.protocol import Track


def test_the_scaleout_replicas_admit_every_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOLOTRACK_MIN_SESSION_FPS", raising=False)  # conftest sets it
    config = load_config(list(REPLICA_ARGS), {})
    assert config.min_fps == {Track.HOLISTIC: 0.0, Track.POSE: 0.0}


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--sessions", "1,x"], "--sessions wants whole numbers of sessions"),
        (["--fps", "90"], "--fps must be between 0.5 and 60"),
        (["--hold", "nan"], "--hold must be a finite number"),
    ],
)
def test_a_step_list_the_swarm_refuses_is_refused_before_any_server(
    argv: list[str],
    said: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def started(args: argparse.Namespace) -> int:
        raise AssertionError("a server was started")

    monkeypatch.setattr(scaleout, "main_async", started)
    with pytest.raises(SystemExit) as exit_info:
        scaleout.main(argv)
    assert exit_info.value.code == 2
    assert said in capsys.readouterr().err


def test_the_default_steps_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[argparse.Namespace] = []

    async def record(args: argparse.Namespace) -> int:
        seen.append(args)
        return 0

    monkeypatch.setattr(scaleout, "main_async", record)
    assert scaleout.main([]) == 0
    (args,) = seen
    assert args.sessions == "1,2,3,4,5,6,7,8"
