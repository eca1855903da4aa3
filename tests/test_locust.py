"""locustfile.py as an operator runs it: Locust's own command line against a real server.

Each user class runs alone (chosen by name), headless, for 15 s, and Locust's CSV stats
must show requests that succeeded and no failure.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bench.common import ROOT, free_port, server

RUN_SECONDS = 15
USERS = 2
T = TypeVar("T")


@pytest.fixture(scope="module")
def host() -> Iterator[str]:
    port = free_port()
    with server(port, 1):
        yield f"http://127.0.0.1:{port}"


def locust(
    host: str, out: Path, *args: str, seconds: int = RUN_SECONDS, status: int = 0
) -> dict[str, dict[str, str]]:
    """Runs Locust; returns its CSV stats by request name, the aggregate row as well."""
    command = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless"]
    command += ["-u", str(USERS), "-r", str(USERS), "-t", f"{seconds}s", "--host", host]
    command += ["--csv", str(out / "run"), "--only-summary", "--loglevel", "WARNING", *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    # Locust exits 1 when any request failed.
    assert done.returncode == status, done.stderr[-3000:]
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


def test_a_live_source_with_no_frames_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    source = tmp_path / "missing.mp4"
    command = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless"]
    command += ["-u", "1", "-t", "3s", "--host", f"http://127.0.0.1:{free_port()}"]
    command += ["LiveUser", "--live-source", str(source)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"locustfile: --live-source: {source} is neither a video file nor a folder of images"
    )


@pytest.mark.parametrize("fps", ["0", "100", "nan"])
def test_a_live_fps_the_protocol_refuses_is_one_line_before_any_session(fps: str) -> None:
    """Every session was closed 4001 at its hello and retried each second for the whole run."""
    command = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless"]
    command += ["-u", "1", "-t", "3s", "--host", f"http://127.0.0.1:{free_port()}"]
    command += ["LiveUser", "--live-fps", fps]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"locustfile: --live-fps must be 0.5 to 60, got {float(fps):g}"
    )


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


def test_the_web_ui_offers_the_live_options_and_shows_live_requests(host: str) -> None:
    """Locust's own web UI, as `locust -f locustfile.py` opens it, with the test started."""
    port = free_port()
    command = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfile.py")]
    command += ["--web-host", "127.0.0.1", "--web-port", str(port), "--autostart"]
    command += ["--autoquit", "1", "-u", str(USERS), "-r", str(USERS), "-t", f"{RUN_SECONDS}s"]
    command += ["--host", host, "LiveUser", "--live-track", "pose", "--live-fps", "5"]
    ui = f"http://127.0.0.1:{port}"
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL) as proc:
        try:
            page = until(lambda: get(ui + "/"), what="the web UI's page")
            for option in ("live_track", "live_fps", "live_source"):
                assert option in page
            frames = until(lambda: _frames_shown(ui), what="frames in the web UI's stats")
            assert frames["num_failures"] == 0
            assert proc.wait(timeout=RUN_SECONDS + 60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def _frames_shown(ui: str) -> dict[str, Any] | None:
    body = get(ui + "/stats/requests")
    if body is None:
        return None
    stats = {s["name"]: s for s in json.loads(body)["stats"]}
    frames = stats.get("frame pose")
    return frames if frames and frames["num_requests"] >= 5 else None


def get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return str(reply.read().decode())
    except (urllib.error.URLError, OSError):
        return None


def until(check: Callable[[], T | None], what: str, within: float = 90.0) -> T:
    """Polls `check` twice a second until it returns something (Locust runs apart)."""
    deadline = time.monotonic() + within
    while (found := check()) is None:
        assert time.monotonic() < deadline, f"{what}: not within {within:g} s"
        time.sleep(0.5)
    return found


@pytest.fixture(scope="module")
def full_host() -> Iterator[str]:
    port = free_port()
    with server(port, 1, ["--max-sessions", "1"]):
        yield f"http://127.0.0.1:{port}"


def test_a_refused_session_is_a_failed_session_request(full_host: str, tmp_path: Path) -> None:
    live = ("LiveUser", "--live-track", "pose", "--live-fps", "5")
    stats = locust(full_host, tmp_path, *live, seconds=8, status=1)
    with (tmp_path / "run_failures.csv").open() as stream:
        failures = list(csv.DictReader(stream))
    # One user holds the only session; the other is refused, and retries once a second.
    (refused,) = failures
    assert refused["Name"] == "session pose"
    assert refused["Error"].startswith("SessionClosed('closed 1013")
    assert int(refused["Occurrences"]) >= 2
    assert int(stats["session pose"]["Request Count"]) == 1 + int(refused["Occurrences"])
    assert int(stats["frame pose"]["Request Count"]) > 0
    assert int(stats["frame pose"]["Failure Count"]) == 0


def test_a_host_without_a_scheme_is_a_failed_session_once_a_second(tmp_path: Path) -> None:
    """It raised in a loop with no wait, thousands of tracebacks and no failed request."""
    host = f"127.0.0.1:{free_port()}"
    live = ("LiveUser", "--live-track", "pose")
    stats = locust(host, tmp_path, *live, seconds=3, status=1)
    with (tmp_path / "run_failures.csv").open() as stream:
        (failure,) = list(csv.DictReader(stream))
    assert failure["Name"] == "session pose"
    assert failure["Error"].startswith("BadHost(")
    assert f"--host wants http://HOST:PORT or https://HOST:PORT, got '{host}'" in failure["Error"]
    # Two users, a try each at once and then one a second, for 3 s.
    assert 2 <= int(failure["Occurrences"]) <= 2 * 5
    assert stats["session pose"]["Failure Count"] == failure["Occurrences"]
