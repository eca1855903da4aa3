"""bench.soak's server: every session of its swarm is admitted, whatever a frame costs."""

from __future__ import annotations

import argparse

import pytest

from bench.soak import server_env
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
