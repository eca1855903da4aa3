"""locustfile.py as an operator runs it: Locust's own command line against a real server.

Each user class runs alone (chosen by name), headless, for 15 s, and Locust's CSV stats
must show requests that succeeded and no failure.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.common import ROOT, free_port, server

RUN_SECONDS = 15
USERS = 2


@pytest.fixture(scope="module")
def host() -> Iterator[str]:
    port = free_port()
    with server(port, 1):
        yield f"http://127.0.0.1:{port}"


def locust(host: str, out: Path, *args: str) -> dict[str, dict[str, str]]:
    """Runs Locust; returns its CSV stats by request name, the aggregate row as well."""
    command = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless"]
    command += ["-u", str(USERS), "-r", str(USERS), "-t", f"{RUN_SECONDS}s", "--host", host]
    command += ["--csv", str(out / "run"), "--only-summary", "--loglevel", "WARNING", *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    # Locust exits 1 when any request failed.
    assert done.returncode == 0, done.stderr[-3000:]
    with (out / "run_stats.csv").open() as stream:
        return {row["Name"]: row for row in csv.DictReader(stream)}


def test_predict_users_get_landmarks(host: str, tmp_path: Path) -> None:
    stats = locust(host, tmp_path, "PredictUser")
    row = stats["/predict"]
    assert row["Type"] == "POST"
    # Two users, each waiting 1 to 3 s between uploads, for 15 s.
    assert int(row["Request Count"]) >= USERS * RUN_SECONDS // 4
    assert int(row["Failure Count"]) == 0
    assert float(row["Median Response Time"]) > 0
    assert set(stats) == {"/predict", "Aggregated"}


def test_live_users_hold_sessions_at_the_granted_rate(host: str, tmp_path: Path) -> None:
    fps = 5.0
    stats = locust(host, tmp_path, "LiveUser", "--live-track", "pose", "--live-fps", f"{fps:g}")
    session, frames = stats["session pose"], stats["frame pose"]
    assert (session["Type"], frames["Type"]) == ("WS", "WS")
    assert int(session["Request Count"]) == USERS
    assert int(session["Failure Count"]) == 0
    assert int(frames["Failure Count"]) == 0
    count = int(frames["Request Count"])
    # Paced to the granted rate, never faster. With one frame in flight a session sends
    # its next frame when the result is back and the frame is due, so on a loaded machine
    # (results slower than 1 / fps) it gets fewer; one a second is far below either.
    assert USERS * (RUN_SECONDS - 5) <= count <= USERS * fps * RUN_SECONDS + USERS
    assert float(frames["Requests/s"]) <= USERS * fps * 1.05
    # Capture to result is a real round trip through the model.
    median = float(frames["Median Response Time"])
    assert 1 < median < 1000
