"""Settings: every flag has an environment twin, flags win, bad values are refused."""

from __future__ import annotations

import dataclasses
import glob
import importlib.metadata
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from webapp.analysis.fitness.loader import DATA
from webapp.config import Config, env_name, json_logs_asked, load_config, unknown_twins


def test_help_lists_every_setting_with_its_environment_twin() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "webapp", "--help"], capture_output=True, text=True, check=True
    ).stdout
    flat = " ".join(shown.split())
    for f in dataclasses.fields(Config):
        assert "--" + f.name.replace("_", "-") in flat
        assert env_name(f.name) in flat


def test_default_workers_follow_the_cores_the_process_may_run_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pinned to 1 core of 8 (taskset, a cpuset container), it started 8 workers."""
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})
    assert Config().workers == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7})
    assert Config().workers == 8


def test_help_does_not_call_an_empty_default_none() -> None:
    """--help showed an empty setting as "(default: none)", where "none" is a value of its
    own: the swarm's --metrics-url reads it as off, and --allowed-origins=none, the default
    as --help showed it, let no browser in, the server's own pages included."""
    for command in ("webapp", "swarm", "webapp.vmc.relay"):
        shown = subprocess.run(
            [sys.executable, "-m", command, "--help"], capture_output=True, text=True, check=True
        ).stdout
        flat = " ".join(shown.split())
        assert "(default: none)" not in flat, command
        if command == "webapp":
            assert "[HOLOTRACK_ALLOWED_ORIGINS] (default: empty)" in flat


def test_a_misspelt_twin_is_named_with_the_one_it_may_mean() -> None:
    """HOLOTRACK_MAX_SESSION=4 (no S) was ignored without a word: the server ran with 40."""
    said = unknown_twins(
        {
            "HOLOTRACK_MAX_SESSION": "4",
            "HOLOTRACK_XYZ": "1",
            "HOLOTRACK_PORT": "9000",
            "HOLOTRACK_SWARM_URL": "ws://h/ws",
            "HOLOTRACK_RELAY_TOKEN": "t",
            "HOLOTRACK_CLUSTER_PORT": "8000",
            "HOLOTRACK_MEDIA": "/media",
            "PATH": "/bin",
        }
    )
    assert said == [
        "HOLOTRACK_MAX_SESSION is no setting of the server and is ignored; "
        "did you mean HOLOTRACK_MAX_SESSIONS?",
        "HOLOTRACK_XYZ is no setting of the server and is ignored",
    ]


def test_the_server_warns_of_a_twin_that_is_no_setting_as_it_starts() -> None:
    ran = subprocess.run(
        # --port 0 ends the start once the settings are read: no worker is started.
        [sys.executable, "-m", "webapp", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOLOTRACK_WORKRS": "1"},
    )
    assert ran.returncode == 2
    assert (
        "WARNING webapp: HOLOTRACK_WORKRS is no setting of the server and is ignored; "
        "did you mean HOLOTRACK_WORKERS?" in ran.stderr
    )


def test_flags_win_over_environment_over_defaults() -> None:
    env = {"HOLOTRACK_PORT": "9001", "HOLOTRACK_WORKERS": "3", "HOLOTRACK_NO_CACHE": "1"}
    config = load_config(["--port", "9002"], environ=env)
    assert config.port == 9002
    assert config.workers == 3
    assert config.no_cache is True
    assert load_config([], environ={}).port == Config().port
    # A switch the environment turned on is turned off by its flag, and on by it alone.
    assert load_config(["--no-cache=no"], environ=env).no_cache is False
    assert load_config(["--no-cache", "--port", "9002"], environ={}).no_cache is True
    assert (
        load_config(["--trust-proxy=false"], environ={"HOLOTRACK_TRUST_PROXY": "1"}).trust_proxy
        is False
    )


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["--workers", "0"], {}),
        ([], {"HOLOTRACK_MAX_PIXELS": "many"}),
        ([], {"HOLOTRACK_NO_CACHE": "perhaps"}),
        (["--no-cache=perhaps"], {}),
        (["--log-format", "xml"], {}),
    ],
)
def test_bad_values_are_refused_with_exit_code_2(argv: list[str], env: dict[str, str]) -> None:
    with pytest.raises(SystemExit) as exited:
        load_config(argv, environ=env)
    assert exited.value.code == 2


@pytest.mark.parametrize(
    ("argv", "env", "said"),
    [
        ([], {"HOLOTRACK_WORKERS": "abc"}, "HOLOTRACK_WORKERS: 'abc' is not a whole number"),
        ([], {"HOLOTRACK_WORKERS": ""}, "HOLOTRACK_WORKERS: '' is not a whole number"),
        ([], {"HOLOTRACK_MAX_FPS": "fast"}, "HOLOTRACK_MAX_FPS: 'fast' is not a number"),
        (["--workers", "1.5"], {}, "argument --workers: '1.5' is not a whole number"),
        (["--max-fps", "fast"], {}, "argument --max-fps: 'fast' is not a number"),
    ],
)
def test_a_value_that_is_no_number_is_said_in_words(
    argv: list[str], env: dict[str, str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """HOLOTRACK_WORKERS=abc said "invalid literal for int() with base 10: 'abc'", Python's
    words for a programmer, and --workers 1.5 argparse's "invalid int value"."""
    with pytest.raises(SystemExit) as exited:
        load_config(argv, environ=env)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert said in err
    assert "int()" not in err
    assert "invalid" not in err


def test_the_avatar_limits_have_their_environment_twins() -> None:
    env = {"HOLOTRACK_MAX_AVATAR_MB": "8", "HOLOTRACK_AVATAR_MEMORY_MB": "0"}
    config = load_config([], environ=env)
    assert (config.max_avatar_mb, config.avatar_memory_mb) == (8, 0)
    assert (Config().max_avatar_mb, Config().avatar_memory_mb) == (32, 256)


def test_cv2_is_the_headless_build_that_needs_no_libgl() -> None:
    names = {(d.metadata["Name"] or "").lower() for d in importlib.metadata.distributions()}
    assert "opencv-python-headless" in names
    assert "opencv-contrib-python" not in names
    (binary,) = glob.glob(str(Path(cv2.__file__).parent / "cv2*.so"))
    linked = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    assert "libGL" not in linked


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("", {"holistic": 10.0, "pose": 15.0}),  # env var set but empty: the defaults
        (None, {"holistic": 10.0, "pose": 15.0}),
        ("8", {"holistic": 8.0, "pose": 8.0}),
        ("0", {"holistic": 0.0, "pose": 0.0}),
        ("pose=20", {"holistic": 10.0, "pose": 20.0}),
        (" holistic = 6.5 , pose=12", {"holistic": 6.5, "pose": 12.0}),
    ],
)
def test_min_session_fps_is_one_rate_or_one_per_track(
    given: str | None, expected: dict[str, float]
) -> None:
    env = {} if given is None else {"HOLOTRACK_MIN_SESSION_FPS": given}
    config = load_config([], environ=env)
    assert {str(track): rate for track, rate in config.min_fps.items()} == expected


@pytest.mark.parametrize(
    "bad", ["hands=5", "fast", "pose=x", "pose=-1", "-2", "holistic=nan", "inf", "pose=inf"]
)
def test_a_bad_min_session_fps_is_refused_naming_the_flag(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        load_config(["--min-session-fps", bad], environ={})
    assert exited.value.code == 2
    assert "--min-session-fps" in capsys.readouterr().err


def test_a_negative_cache_size_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """-1 was taken, and silently meant no cache."""
    with pytest.raises(SystemExit) as exited:
        load_config(["--cache-entries", "-1"], environ={})
    assert exited.value.code == 2
    assert "--cache-entries must be 0 (no cache, as --no-cache) or more" in (
        capsys.readouterr().err
    )
    assert load_config(["--cache-entries", "0"], environ={}).cache_entries == 0


@pytest.mark.parametrize("bad", ["-1", "nan", "3601"])
def test_a_watch_grace_out_of_bounds_is_refused(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        load_config(["--watch-grace", bad], environ={})
    assert exited.value.code == 2
    assert "--watch-grace must be 0 to 3600 seconds" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "bad", "said"),
    [
        ("--heartbeat", "-1", "--heartbeat must be at least 1 s"),
        ("--heartbeat", "nan", "--heartbeat must be at least 1 s"),
        ("--heartbeat", "0.015", "--heartbeat must be at least 1 s"),
        ("--stats-interval", "0.002", "--stats-interval must be at least 0.1 s"),
        ("--stats-interval", "nan", "--stats-interval must be at least 0.1 s"),
        ("--idle-timeout", "nan", "--idle-timeout must be a positive number"),
        ("--request-timeout", "inf", "--request-timeout must be a positive number"),
        ("--max-fps", "nan", "--max-fps must be a positive number"),
        ("--port", "70000", "--port must be 1 to 65535"),
        ("--port", "-5", "--port must be 1 to 65535"),
        ("--max-avatar-mb", "0", "--max-avatar-mb must be at least 1"),
        ("--avatar-memory-mb", "-1", "--avatar-memory-mb must be 0 (no uploaded avatars) or more"),
        ("--video-waiting-seconds", "nan", "--video-waiting-seconds must be 0 (no waiting lines)"),
    ],
)
def test_numbers_no_server_can_run_with_are_refused(
    flag: str, bad: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A review: a negative heartbeat ended every session at once (1006), a NaN idle timeout
    put NaN (not JSON) in every ready and turned the limit off, a port out of range was a
    traceback after the workers had started."""
    with pytest.raises(SystemExit) as exited:
        load_config([flag, bad], environ={})
    assert exited.value.code == 2
    assert said in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--video-max-seconds", "1e306"], "--video-max-seconds must be at most 86400 (a day)"),
        (["--video-max-fps", "1e308"], "--video-max-fps must be at most 1000"),
    ],
)
def test_video_limits_whose_products_overflow_are_refused(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each started a server whose every POST /api/video was a 500 with an OverflowError
    traceback: the frames a video may keep, seconds x rate, were no longer a number."""
    with pytest.raises(SystemExit) as exited:
        load_config(argv, environ={})
    assert exited.value.code == 2
    assert said in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--max-watchers", "-1"], "--max-watchers must be 0 (no watchers) or more"),
        (
            ["--max-sessions-per-client", "-1"],
            "--max-sessions-per-client must be 0 (no limit) or more",
        ),
        (["--vmc-allow", "127.0.0.1"], "--vmc-allow: '127.0.0.1' is not HOST:PORT"),
        (["--vmc-allow", "127.0.0.1:39539,host:0"], "--vmc-allow: 'host:0' has no port"),
        (
            ["--self-signed", "--local-http-port", "70000"],
            "--local-http-port must be a free port other than --port",
        ),
    ],
)
def test_limits_and_lists_no_server_can_use_are_refused(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each refused at the start naming its flag, not met later as a watcher refused with
    "already has -1 watchers", a hello's VMC receiver that can never match, or a bind
    that fails once the workers have loaded."""
    with pytest.raises(SystemExit) as exited:
        load_config(argv, environ={})
    assert exited.value.code == 2
    assert said in capsys.readouterr().err


def test_the_bounds_of_the_limits_are_taken() -> None:
    """Each limit's own end of its range is a setting, not a refusal."""
    config = load_config(
        [
            *("--max-watchers", "0", "--max-sessions-per-client", "0"),
            *("--watch-grace", "3600", "--heartbeat", "1", "--stats-interval", "0.1"),
            *("--vmc-allow", "127.0.0.1:1,[::1]:65535"),
            *("--self-signed", "--local-http-port", "65535"),
        ],
        environ={},
    )
    assert (config.max_watchers, config.max_sessions_per_client) == (0, 0)
    assert (config.watch_grace, config.heartbeat, config.stats_interval) == (3600, 1, 0.1)
    assert config.local_http_port == 65535
    assert load_config(["--watch-grace", "0"], environ={}).watch_grace == 0


def test_avatar_memory_smaller_than_one_avatar_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With --avatar-memory-mb 8 and the default --max-avatar-mb 32, a 10 MiB avatar was
    refused 503 avatar_memory_full ("try again once other links end") on an empty server."""
    with pytest.raises(SystemExit) as exited:
        load_config(["--avatar-memory-mb", "8"], environ={})
    assert exited.value.code == 2
    assert (
        "--avatar-memory-mb must be 0 (no uploaded avatars) or at least --max-avatar-mb (32)"
        in (capsys.readouterr().err)
    )
    assert load_config(["--avatar-memory-mb", "8", "--max-avatar-mb", "8"], environ={})
    assert load_config(["--avatar-memory-mb", "0"], environ={}).avatar_memory_mb == 0


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_mistake_in_the_exercises_file_stops_the_start_in_one_line(
    tmp_path: Path, log_format: str
) -> None:
    """An operator adding an exercise by editing the file reads what is wrong with it, as
    for any other setting that stops the start, not a traceback."""
    broken = tmp_path / "exercises.toml"
    broken.write_text(DATA.read_text().replace("partial = 135", "partial = 180"))
    start = (
        "import runpy, sys\n"
        "from pathlib import Path\n"
        "from webapp.analysis.fitness import loader\n"
        f"loader.load_exercises.__wrapped__.__defaults__ = (Path({str(broken)!r}),)\n"
        f"sys.argv = ['webapp', '--workers', '1', '--log-format', {log_format!r}]\n"
        "runpy.run_module('webapp', run_name='__main__')\n"
    )
    ran = subprocess.run([sys.executable, "-c", start], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 2, ran.stderr
    assert "Traceback" not in ran.stderr
    said = "exercises data, exercises.squat: partial must lie strictly between start and turn"
    if log_format == "text":
        assert ran.stderr.splitlines() == [f"python -m webapp: error: {said}"]
        return
    last = json.loads(ran.stderr.splitlines()[-1])
    assert last["levelname"] == "CRITICAL"
    assert last["message"] == f"cannot start: {said}"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_port_in_use_is_one_line_and_exit_code_2(log_format: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        flags = ["--port", str(port), "--workers", "1", "--log-format", log_format]
        ran = subprocess.run(
            [sys.executable, "-m", "webapp", *flags],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert ran.returncode == 2
    assert "Traceback" not in ran.stderr
    said = f"cannot listen on http://127.0.0.1:{port}"
    if log_format == "text":
        assert f"python -m webapp: error: {said}" in ran.stderr
        return
    # Every line a log collector can read, the reason in the last.
    lines = [json.loads(line) for line in ran.stderr.splitlines()]
    assert lines[-1]["levelname"] == "CRITICAL"
    assert lines[-1]["message"].startswith(f"cannot start: {said}")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_refused_setting_is_said_as_the_log_format_asks(log_format: str) -> None:
    """Under --log-format json a refused setting (a compose file's HOLOTRACK_HEARTBEAT=0.015)
    was argparse's usage and error, lines of text a log collector reading JSON drops."""
    ran = subprocess.run(
        [sys.executable, "-m", "webapp", "--log-format", log_format],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOLOTRACK_HEARTBEAT": "0.015"},
    )
    assert ran.returncode == 2
    said = "--heartbeat must be at least 1 s"
    if log_format == "text":
        assert ran.stderr.startswith("usage: python -m webapp")
        assert f"python -m webapp: error: {said}" in ran.stderr
        return
    lines = [json.loads(line) for line in ran.stderr.splitlines()]
    assert lines[-1]["levelname"] == "CRITICAL"
    assert lines[-1]["message"].startswith(f"cannot start: {said}")


@pytest.mark.parametrize(
    ("flags", "env", "said"),
    [
        (["--log-format", "json"], {"HOLOTRACK_PORT": "abc"}, "HOLOTRACK_PORT: 'abc' is not a"),
        ([], {"HOLOTRACK_LOG_FORMAT": "json", "HOLOTRACK_PORT": "abc"}, "HOLOTRACK_PORT:"),
        (["--log-format=json", "--port", "abc"], {}, "argument --port: 'abc' is not a whole"),
    ],
)
def test_a_setting_that_cannot_be_read_is_one_json_line_when_json_is_asked(
    flags: list[str], env: dict[str, str], said: str
) -> None:
    """A value that is not even a number (a compose file's HOLOTRACK_PORT=abc) stops the
    start before there is a Config: it was argparse's text, which a JSON collector drops."""
    ran = subprocess.run(
        [sys.executable, "-m", "webapp", *flags],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )
    assert ran.returncode == 2
    lines = [json.loads(line) for line in ran.stderr.splitlines()]
    assert lines[-1]["levelname"] == "CRITICAL"
    assert lines[-1]["message"].startswith(f"cannot start: {said}")


@pytest.mark.parametrize(
    ("argv", "env", "asked"),
    [
        ([], {}, False),
        ([], {"HOLOTRACK_LOG_FORMAT": "json"}, True),
        (["--log-format", "json"], {}, True),
        (["--log-format=text"], {"HOLOTRACK_LOG_FORMAT": "json"}, False),
        (["--log-format"], {"HOLOTRACK_LOG_FORMAT": "json"}, True),
    ],
)
def test_json_logs_are_asked_for_by_the_flag_before_its_environment_twin(
    argv: list[str], env: dict[str, str], asked: bool
) -> None:
    assert json_logs_asked(argv, env) is asked


@pytest.mark.parametrize("env", [{}, {"HOLOTRACK_LOG_FORMAT": "json"}])
def test_a_log_format_flag_with_no_value_is_said_by_the_servers_own_parser(
    env: dict[str, str],
) -> None:
    """A "--log-format" left without its value was refused by the early look for JSON, as
    "__main__.py" with a usage of that one flag, not by the server's parser."""
    ran = subprocess.run(
        [sys.executable, "-m", "webapp", "--log-format"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )
    assert ran.returncode == 2
    said = "argument --log-format: expected one argument"
    if not env:
        assert ran.stderr.startswith("usage: python -m webapp")
        assert f"python -m webapp: error: {said}" in ran.stderr
        return
    lines = [json.loads(line) for line in ran.stderr.splitlines()]
    assert lines[-1]["message"] == f"cannot start: {said}"


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("track.example.org", "'track.example.org' is not an origin"),
        ("https://a.example/app, https://b.example:99999", "'https://a.example/app', "),
        ("https://*.example.org", "'https://*.example.org' is not an origin"),
        ("https://a.example, http://*:8080", "'http://*:8080' is not an origin"),
    ],
)
def test_allowed_origins_that_are_no_origins_stop_the_start(
    given: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bare host name, or a pattern as a CORS setting takes (https://*.example.org),
    matches no browser's Origin: the server would refuse every page from it."""
    with pytest.raises(SystemExit) as exited:
        load_config(["--allowed-origins", given], environ={})
    assert exited.value.code == 2
    assert f"--allowed-origins: {said}" in capsys.readouterr().err
    assert load_config(["--allowed-origins", "*"], environ={}).allowed_origins == "*"
    assert load_config(["--allowed-origins", "https://a.example:8443, http://[::1]"], environ={})


@pytest.mark.parametrize("given", ["localhost:8080", "http://0.0.0.0", "[::1]", "127.0.0.1 "])
def test_a_host_with_a_port_scheme_or_space_stops_the_start(
    given: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Taken, each failed to bind and then ended in a ValueError traceback (exit 1) while
    the server named the address in its one-line reason, its workers already started."""
    with pytest.raises(SystemExit) as exited:
        load_config(["--host", given], environ={})
    assert exited.value.code == 2
    assert f"--host {given!r} is not an address or host name" in capsys.readouterr().err
    for fine in ("", "0.0.0.0", "::1", "localhost", "holotrack_app"):
        assert load_config(["--host", fine], environ={}).host == fine


def test_an_origin_pattern_is_told_to_list_each_origin(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        load_config(["--allowed-origins", "https://*.example.org"], environ={})
    assert "a pattern matches nothing: list each origin" in capsys.readouterr().err


def test_a_star_among_origins_is_told_it_stands_alone(capsys: pytest.CaptureFixture[str]) -> None:
    """It was told a pattern matches nothing, where * alone is what it meant."""
    with pytest.raises(SystemExit):
        load_config(["--allowed-origins", "https://a.example, *"], environ={})
    said = capsys.readouterr().err
    assert "'*' is not an origin" in said
    assert "* stands alone, for any" in said
    assert "pattern" not in said


def test_an_empty_state_dir_with_self_signed_stops_the_start(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Path("") is the working folder: the certificate's private key was written there."""
    with pytest.raises(SystemExit) as exited:
        load_config(["--self-signed"], environ={"HOLOTRACK_STATE_DIR": ""})
    assert exited.value.code == 2
    assert "--state-dir must name a folder" in capsys.readouterr().err
    assert load_config([], environ={"HOLOTRACK_STATE_DIR": ""}).state_dir == ""


def test_a_frame_limit_past_what_aiohttp_can_hold_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """aiohttp keeps a WebSocket message's limit in 32 bits: --max-frame-bytes 5000000000
    started a server whose every /ws upgrade was a 500 with an OverflowError traceback."""
    with pytest.raises(SystemExit) as exited:
        load_config(["--max-frame-bytes", "5000000000"], environ={})
    assert exited.value.code == 2
    assert "--max-frame-bytes must be 1 to 2147483648 (2 GiB)" in capsys.readouterr().err
    assert load_config(["--max-frame-bytes", "2147483648"], environ={}).max_frame_bytes == 2**31
