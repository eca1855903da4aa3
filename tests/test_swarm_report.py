"""The swarm's settings, frames and written report, without a server."""

from __future__ import annotations

import csv
import json
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest

from swarm.calibrate import Calibration
from swarm.config import SwarmConfig, load_config
from swarm.frames import SourceError, load_frames
from swarm.records import CSV_FIELDS, FrameRecord, Outcome, SessionRecord
from swarm.report import table, write_all
from swarm.runner import RunResult
from swarm.stats import Slo, Window, summarize_step
from tests.media import ASL_VIDEO, STILLS
from tests.videos import stored_sideways

# -- settings ------------------------------------------------------------------------------


def test_defaults_follow_the_issue() -> None:
    config = load_config([], environ={})
    assert config.url == "ws://127.0.0.1:8080/ws"
    assert config.steps == (1, 2, 4, 8)
    assert (config.fps, config.track, config.mode, config.width, config.quality) == (
        15.0,
        "holistic",
        "paced",
        480,
        70,
    )
    assert (config.slo_fps_ratio, config.slo_session_share, config.slo_p95_ms) == (0.9, 0.95, 250)
    assert config.slo_max_errors == 0
    assert Path(config.source).name == ASL_VIDEO.name


def test_flags_win_over_env_twins_which_win_over_defaults() -> None:
    env = {
        "HOLOTRACK_SWARM_FPS": "10",
        "HOLOTRACK_SWARM_TRACK": "pose",
        "HOLOTRACK_SWARM_HOLD": "4",
    }
    config = load_config(["--fps", "12", "--calibrate"], environ=env)
    assert (config.fps, config.track, config.hold, config.calibrate) == (12.0, "pose", 4.0, True)


def test_the_media_folder_follows_holotrack_media(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOLOTRACK_MEDIA", "/elsewhere")
    assert SwarmConfig().source == "/elsewhere/asl_signer_intel_640x480_30fps.mp4"


def test_a_ramp_replaces_the_session_list() -> None:
    assert load_config(["--ramp", "10:50:20"], environ={}).steps == (10, 30, 50)
    assert load_config(["--sessions", "3, 5"], environ={}).steps == (3, 5)


def test_sessions_given_as_a_flag_win_over_a_ramp_from_the_environment() -> None:
    env = {"HOLOTRACK_SWARM_RAMP": "1:3:1"}
    assert load_config(["--sessions", "2"], environ=env).steps == (2,)
    assert load_config([], environ=env).steps == (1, 2, 3)
    assert load_config(["--sessions", "2", "--ramp", "4:6:2"], environ=env).steps == (4, 6)
    listed = {"HOLOTRACK_SWARM_SESSIONS": "9"}
    assert load_config(["--ramp", "4:6:2"], environ=listed).steps == (4, 6)


@pytest.mark.parametrize(
    ("ramp", "said"),
    [
        ("1:1000000", "every step must have 1 to 5000 sessions"),
        ("1:5000:1", "at most 100 steps"),
    ],
)
def test_a_ramp_far_too_long_is_refused_without_building_it(
    ramp: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its counts were made a tuple first: 1:1000000000 took tens of GB, then MemoryError."""
    tracemalloc.start()
    try:
        with pytest.raises(SystemExit) as exit_info:
            load_config(["--ramp", ramp], environ={})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert exit_info.value.code == 2
    assert said in capsys.readouterr().err.splitlines()[-1]
    # A million counts as a tuple of ints is over 30 MB.
    assert peak < 2_000_000


@pytest.mark.parametrize(
    "argv",
    [
        ["--url", "http://127.0.0.1:8080/ws"],
        ["--sessions", "0,2"],
        ["--ramp", "5:1:1"],
        ["--fps", "100"],
        ["--mode", "flood"],
        ["--slo-session-share", "1.5"],
        ["--hold", "0"],
        ["--hello-options", "{rig: true}"],
        ["--hello-options", "[1, 2]"],
        ["--hello-options", '{"fps": 30}'],
    ],
)
def test_bad_settings_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        load_config(argv, environ={})
    assert exit_info.value.code == 2


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--hold", "inf"], "--hold"),
        (["--hold", "nan"], "--hold"),
        (["--warmup", "nan"], "--warmup"),
        (["--drain", "inf"], "--drain"),
        (["--spawn-rate", "nan"], "--spawn-rate"),
        (["--max-duration", "inf"], "--max-duration"),
        (["--slo-p95-ms", "nan"], "--slo-p95-ms"),
        (["--slo-fps-ratio", "nan"], "--slo-fps-ratio"),
        (["--calibrate-seconds", "inf"], "--calibrate-seconds"),
        (["--connect-timeout", "nan"], "--connect-timeout"),
        # One step of 1 session: 0.01 s to spawn, 3 s warm-up, 1000 s hold, 2 s drain, 5 s
        # for the final stats, past the 900 s the run may take.
        (["--sessions", "1", "--hold", "1000"], "--max-duration"),
        (["--warmup", "8", "--hold", "8", "--max-duration", "20"], "--max-duration"),
        # int()'s own words ("invalid literal for int() with base 10") named no flag.
        (["--sessions", "1,x"], "--sessions wants whole numbers"),
        (["--sessions", "2.5"], "--sessions wants whole numbers"),
        (["--ramp", "1:x:2"], "--ramp wants whole numbers"),
        (["--ramp", "1:4:0.5"], "--ramp wants whole numbers"),
    ],
)
def test_a_bad_number_or_a_step_longer_than_the_run_is_refused_naming_its_flag(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        load_config(argv, environ={})
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err.splitlines()[-1]


def test_a_number_that_is_not_finite_is_refused_from_the_environment_too() -> None:
    with pytest.raises(SystemExit) as exit_info:
        load_config([], environ={"HOLOTRACK_SWARM_WARMUP": "nan"})
    assert exit_info.value.code == 2


def test_a_step_that_just_fits_the_run_is_accepted() -> None:
    # 1 / 100 s to spawn + 3 + 10 + 2 + 5 s for the final stats.
    assert load_config(["--sessions", "1", "--max-duration", "20.01"], environ={})


def test_hello_options_go_into_every_hello_and_the_report() -> None:
    env = {"HOLOTRACK_SWARM_HELLO_OPTIONS": '{"rig": true, "blendshapes": true}'}
    config = load_config([], environ=env)
    assert config.extra_hello == {"rig": True, "blendshapes": True}
    assert load_config([], environ={}).extra_hello == {}


def test_bad_env_values_are_refused() -> None:
    with pytest.raises(SystemExit):
        load_config([], environ={"HOLOTRACK_SWARM_FPS": "fast"})


# -- frames --------------------------------------------------------------------------------


def test_video_frames_are_encoded_once_as_the_page_sends_them() -> None:
    frames = load_frames(ASL_VIDEO, width=480, quality=70, max_frames=12)
    assert len(frames) == 12
    assert (frames.width, frames.height, frames.source_fps) == (480, 360, 30.0)
    for jpeg in frames.jpegs:
        assert jpeg.startswith(b"\xff\xd8\xff")
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape[:2] == (360, 480)
    smaller = load_frames(ASL_VIDEO, width=480, quality=30, max_frames=12)
    assert smaller.mean_bytes < frames.mean_bytes


def test_a_phone_video_stored_sideways_is_sent_upright(tmp_path: Path) -> None:
    upright = load_frames(ASL_VIDEO, width=160, quality=90, max_frames=1)
    sideways = stored_sideways(ASL_VIDEO, tmp_path / "sideways.mp4", 1)
    turned = load_frames(sideways, width=160, quality=90, max_frames=1)
    assert (turned.width, turned.height) == (upright.width, upright.height) == (160, 120)
    first, second = (
        cv2.imdecode(np.frombuffer(f.jpegs[0], np.uint8), cv2.IMREAD_GRAYSCALE)
        for f in (upright, turned)
    )
    assert np.mean(cv2.absdiff(first, second)) < 5.0


def test_a_session_walks_the_video_at_its_real_speed() -> None:
    frames = load_frames(ASL_VIDEO, width=160, quality=70, max_frames=30)
    assert frames.at(start=0, elapsed=0.5, tick=7) == 15  # half a second of a 30 fps video
    assert frames.at(start=20, elapsed=0.5, tick=7) == 5  # wraps around


def test_an_image_folder_gives_one_frame_per_image(tmp_path: Path) -> None:
    for i, still in enumerate(STILLS[:3]):
        (tmp_path / f"{i}{still.suffix}").write_bytes(still.read_bytes())
    (tmp_path / "notes.txt").write_text("not an image")
    frames = load_frames(tmp_path, width=480, quality=70, max_frames=10)
    assert len(frames) == 3
    assert frames.at(start=1, elapsed=9.0, tick=4) == 2  # a folder has no clock: one per send


def test_a_missing_or_empty_source_says_so(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="neither"):
        load_frames(tmp_path / "nothing.mp4", 480, 70, 10)
    with pytest.raises(SourceError, match="no frames"):
        load_frames(tmp_path, 480, 70, 10)
    fake = tmp_path / "video.mp4"
    fake.write_text("not a video")
    with pytest.raises(SourceError, match=r"cannot open|no frames"):
        load_frames(fake, 480, 70, 1)


# -- the written report --------------------------------------------------------------------


def _run() -> tuple[SwarmConfig, RunResult]:
    config = SwarmConfig(fps=10, hold=10, sessions="1,2")
    slo = Slo.from_config(config)
    run = RunResult(started_at="2024-01-01T00:00:00+00:00")
    window = Window(10.0, 20.0)
    for count, fps in ((1, 10), (2, 5)):
        sessions = [SessionRecord(count, i, opened=0.0) for i in range(count)]
        frames = [
            FrameRecord(count, i, seq, 10 + seq / fps, 10.1 + seq / fps, Outcome.RESULT)
            for i in range(count)
            for seq in range(int(10 * fps))
        ]
        frames.append(FrameRecord(count, 0, 999, 19.99, None, Outcome.DROPPED, "unanswered"))
        run.steps.append(summarize_step(count, frames, sessions, window, slo))
        run.frames.extend(frames)
        run.sessions.extend(sessions)
    return config, run


def test_the_report_holds_the_flags_steps_and_verdict(tmp_path: Path) -> None:
    config, run = _run()
    frames = load_frames(ASL_VIDEO, 160, 70, 3)
    report = write_all(tmp_path, config, frames, run)
    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk == json.loads(json.dumps(report))
    assert on_disk["flags"]["fps"] == 10
    assert on_disk["flags"]["slo-p95-ms"] == 250
    assert on_disk["sustainable_sessions"] == 1
    assert "raw_fps" not in on_disk
    first, second = on_disk["steps"]
    for key in ("sessions", "delivered_fps", "latency_ms", "session_fps", "fairness"):
        assert key in first
    for key in ("dropped", "errors", "refusals"):
        assert isinstance(first[key], int)
    assert set(first["latency_ms"]) == {"p50", "p95", "p99"}
    assert set(first["session_fps"]) == {"min", "p5", "median"}
    assert (first["sessions"], first["delivered_fps"], first["passed"]) == (1, 10.0, True)
    assert (second["sessions"], second["delivered_fps"], second["passed"]) == (2, 10.0, False)
    assert first["dropped"] == 1

    with (tmp_path / "frames.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert tuple(rows[0]) == CSV_FIELDS
    assert len(rows) == len(run.frames)
    assert {r["outcome"] for r in rows} == {"result", "dropped"}
    assert (tmp_path / "sessions.csv").read_text().count("\n") == 1 + 3
    assert (tmp_path / "report.png").read_bytes().startswith(b"\x89PNG")

    text = table(report)
    assert "sustainable sessions: 1 at 10 fps" in text
    assert "FAIL" in text


def test_a_calibrated_report_gives_raw_fps_and_efficiency(tmp_path: Path) -> None:
    config, run = _run()
    frames = load_frames(ASL_VIDEO, 160, 70, 3)
    report = write_all(tmp_path, config, frames, run, Calibration(2, 5.0, (20.0, 20.0)))
    assert report["raw_fps"] == 40.0
    assert report["efficiency"] == 0.25
    assert report["steps"][0]["efficiency"] == 0.25
    assert "raw model throughput on this machine: 40 frames/s" in table(report)
