"""bench.scaleout's replicas: every session of its swarm is admitted, so its steps past the
sustainable one show the fps falling, as deploy/README.md says, not sessions refused."""

from __future__ import annotations

import pytest

from bench.scaleout import REPLICA_ARGS
from webapp.config import load_config
from webapp.protocol import Track


def test_the_scaleout_replicas_admit_every_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOLOTRACK_MIN_SESSION_FPS", raising=False)  # conftest sets it
    config = load_config(list(REPLICA_ARGS), {})
    assert config.min_fps == {Track.HOLISTIC: 0.0, Track.POSE: 0.0}
