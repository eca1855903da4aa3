"""bench.soak: every session of its swarm is admitted, whatever a frame costs, and its hello
options (a VTuber's rig and blendshapes) reach the swarm."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench.soak import build_parser, server_env, swarm_argv
from swarm.config import load_config as swarm_config
from swarm.config import validate
from webapp.config import load_config
from webapp.protocol import Track


def test_the_soak_server_admits_every_session_of_its_swarm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Three holistic sessions on one worker: with admission by rate, a host where a frame
    # takes over 33 ms refused the third, and the soak ran at two thirds of its load.
    monkeypatch.delenv("HOLOTRACK_MIN_SESSION_FPS", raising=False)  # conftest sets it
    env = server_env(argparse.Namespace(malloc_mmap_threshold=0))
    assert load_config([], env).min_fps == {Track.HOLISTIC: 0.0, Track.POSE: 0.0}
    assert "MALLOC_MMAP_THRESHOLD_" not in env


def test_the_allocator_setting_still_reaches_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOLOTRACK_MIN_SESSION_FPS", raising=False)
    env = server_env(argparse.Namespace(malloc_mmap_threshold=131072))
    assert env["MALLOC_MMAP_THRESHOLD_"] == "131072"
    assert env["HOLOTRACK_MIN_SESSION_FPS"] == "0"


def test_the_soak_gives_its_hello_options_to_the_swarm(tmp_path: Path) -> None:
    options = ["--sessions", "3", "--hello-options", '{"rig": true, "blendshapes": true}']
    args = build_parser().parse_args(options)
    argv = swarm_argv("ws://127.0.0.1:1/ws", tmp_path, args)
    config = swarm_config(argv[argv.index("swarm") + 1 :], {})
    assert config.extra_hello == {"rig": True, "blendshapes": True}
    assert validate(config) == []


def test_the_soak_refuses_hello_options_that_are_not_an_object() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--hello-options", "[1]"])
