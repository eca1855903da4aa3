"""A short swarm against a live server running the real model, and the command line."""

from __future__ import annotations

import _thread
import asyncio
import concurrent.futures
import csv
import dataclasses
import functools
import io
import json
import math
import multiprocessing
import multiprocessing.process
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientConnectionResetError, web
from aiohttp._websocket.writer import WebSocketWriter
from aiohttp.test_utils import TestServer

from swarm import echo
from swarm.__main__ import NO_ANSWER, main, processes
from swarm.calibrate import calibrate
from swarm.config import SwarmConfig
from swarm.frames import FrameSet, load_frames
from swarm.records import FrameRecord, Outcome
from swarm.report import build_report, write_all
from swarm.runner import Runner, RunResult
from swarm.stats import StepSummary, percentile
from swarm.user import FALLBACK_MIN_SECONDS
from tests.conftest import MakeClient
from tests.live import closing_at_hello
from tests.media import ASL_VIDEO
from webapp.config import Config
from webapp.keys import SCHEDULER
from webapp.protocol import Close


@functools.cache
def frames() -> FrameSet:
    return load_frames(ASL_VIDEO, width=480, quality=70, max_frames=60)


# A few sessions at a low rate for a few seconds: enough to cross every path of the swarm,
# light enough for a shared two-core machine.
# One worker, and sessions beyond what it serves at a usable rate on purpose: no admission
# by rate (--min-session-fps) in the way.
SERVER = Config(workers=1, stats_interval=0.5, min_session_fps="0")
SHORT = SwarmConfig(fps=4.0, warmup=0.5, hold=2.5, drain=3.0)


async def swarm_against(make_client: MakeClient, server: Config, **settings: Any) -> Runner:
    client = await make_client(server)
    url = f"ws://{client.host}:{client.port}/ws"
    return Runner(dataclasses.replace(SHORT, url=url, **settings), frames())


def assert_figures_agree_with_records(run: RunResult, summary: StepSummary) -> None:
    """Recomputes a step's figures from the records alone, as anyone could from frames.csv."""
    frames = [f for f in run.frames if f.step == summary.sessions]
    assert all(f.outcome is not None for f in frames), "a frame was left without an outcome"
    measured = [f for f in frames if summary.window_start <= f.sent < summary.window_end]
    counted = Counter(f.outcome for f in measured)
    assert summary.sent == len(measured)
    assert summary.results == counted[Outcome.RESULT]
    assert summary.dropped == counted[Outcome.DROPPED]
    assert summary.results + summary.dropped + counted[Outcome.ERROR] == summary.sent
    seconds = summary.window_end - summary.window_start
    assert summary.delivered_fps == pytest.approx(summary.results / seconds, abs=0.01)
    latencies = [
        (f.received - f.sent) * 1000
        for f in measured
        if f.outcome is Outcome.RESULT and f.received is not None
    ]
    assert summary.latency_ms["p95"] == pytest.approx(percentile(latencies, 95), abs=0.01)
    for session in summary.per_session:
        own = [f for f in measured if f.session == session.session]
        assert session.sent == len(own)
        results = sum(1 for f in own if f.outcome is Outcome.RESULT)
        assert session.fps == pytest.approx(results / seconds, rel=1e-3)


def measured(run: RunResult, summary: StepSummary) -> list[FrameRecord]:
    return [
        f
        for f in run.frames
        if f.step == summary.sessions and summary.window_start <= f.sent < summary.window_end
    ]


def assert_sent_on_turns(
    run: RunResult, summary: StepSummary, *, every_session: bool = True
) -> None:
    """Sessions heard turns and answered them at once; other frames were rare fallbacks.

    A lane invites only when its line of waiting frames runs dry. In a step of a few
    seconds with a short warm-up, a loaded machine may keep that line busy with frames the
    clients sent on their own clocks before any turn, and then no turn comes at all; the
    sessions pace themselves, as the protocol lets them (assert_paced_like_the_page). Such
    a step passes `every_session=False`: the turns that do come are still checked."""
    frames = measured(run, summary)
    sessions = [s for s in run.sessions if s.step == summary.sessions]
    assert summary.turns == sum(s.turns for s in sessions)
    on_turn = [f for f in frames if f.turn is not None]
    assert summary.on_turn == len(on_turn)
    if every_session:
        assert all(s.turns > 0 for s in sessions)
        assert on_turn
    # Before its first turn a session paces itself, as the protocol says; a session that
    # joined with the step may still be waiting for its graph as the window opens.
    first_turn: dict[int, float] = {}
    for f in on_turn:
        assert f.turn is not None
        first_turn[f.session] = min(first_turn.get(f.session, f.turn), f.turn)
    after_first = [f for f in frames if f.sent >= first_turn.get(f.session, math.inf)]
    assert len(on_turn) >= 0.8 * len(after_first)
    # Sent when the turn was read, unless two frames were in flight; after the first turn,
    # at most one fallback per session per second of the window.
    prompt = sum(1 for f in on_turn if f.sent - (f.turn or 0.0) < 0.1)
    assert prompt >= 0.8 * len(on_turn)
    fallbacks = len(after_first) - len(on_turn)
    assert fallbacks <= summary.sessions * (summary.window_s / FALLBACK_MIN_SECONDS + 1)


def assert_paced_like_the_page(run: RunResult, config: SwarmConfig) -> None:
    """Never faster than the target rate, never more than `in_flight` frames unanswered."""
    for summary in run.steps:
        for session in summary.per_session:
            assert session.sent <= config.fps * summary.window_s + 1
    by_session: dict[tuple[int, int], list[FrameRecord]] = {}
    for frame in run.frames:
        by_session.setdefault((frame.step, frame.session), []).append(frame)
    for frames in by_session.values():
        for i, frame in enumerate(frames):
            waiting = [
                f
                for f in frames[:i]
                if f.outcome is Outcome.RESULT and (f.received or 0) > frame.sent
            ]
            assert len(waiting) < config.in_flight


async def test_every_frame_ends_as_result_drop_or_error_and_figures_agree(
    make_client: MakeClient, tmp_path: Path
) -> None:
    runner = await swarm_against(make_client, SERVER, sessions="2,3")
    run = await runner.run()
    assert [s.sessions for s in run.steps] == [2, 3]
    assert {f.outcome for f in run.frames} <= {Outcome.RESULT, Outcome.DROPPED, Outcome.ERROR}
    for summary in run.steps:
        assert summary.results > 0
        assert (summary.errors, summary.refusals, summary.unmatched) == (0, 0, 0)
        assert_figures_agree_with_records(run, summary)
        # The server's own final counters equal the swarm's for every session.
        assert summary.reconciled == summary.sessions
        assert summary.stats_mismatches == 0
        assert summary.server["received"] == sum(
            1 for f in run.frames if f.step == summary.sessions
        )
        assert_sent_on_turns(run, summary, every_session=False)

    assert_paced_like_the_page(run, runner.config)

    report = write_all(tmp_path, runner.config, runner.frames, run)
    with (tmp_path / "frames.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == len(run.frames)
    assert Counter(r["outcome"] for r in rows) == Counter(f.outcome for f in run.frames)
    assert json.loads((tmp_path / "report.json").read_text())["steps"][0]["sessions"] == 2
    # How many passed depends on the machine; the verdict is the largest step that did.
    passed = [s.sessions for s in run.steps if s.passed]
    assert report["sustainable_sessions"] == max(passed, default=0)


async def test_hello_options_size_the_server_for_what_sessions_ask(
    make_client: MakeClient,
) -> None:
    # VTuber sessions: the rig and ARKit blendshapes in every result, served like any other.
    shaped = '{"rig": true, "blendshapes": true}'
    runner = await swarm_against(make_client, SERVER, sessions="2", hello_options=shaped)
    (summary,) = (await runner.run()).steps
    assert summary.results > 0
    assert (summary.errors, summary.refusals) == (0, 0)
    # The options reach the server, which judges them: a bad one ends every session at hello.
    runner = await swarm_against(make_client, SERVER, sessions="2", hello_options='{"rig": 1}')
    run = await runner.run()
    assert [s.close_code for s in run.sessions] == [4001, 4001]
    assert all("rig must be true or false" in s.error for s in run.sessions)


async def test_a_full_server_refuses_and_refusals_are_not_errors(
    make_client: MakeClient,
) -> None:
    runner = await swarm_against(
        make_client, Config(workers=1, max_sessions=1, stats_interval=0.5), sessions="3"
    )
    run = await runner.run()
    (summary,) = run.steps
    assert summary.refusals == 2
    assert summary.errors == 0
    assert summary.close_codes == {}
    refused = [s for s in run.sessions if s.refused]
    assert [s.close_code for s in refused] == [1013, 1013]
    assert all(not s.error for s in run.sessions)
    (served,) = [s for s in summary.per_session if not s.refused]
    assert served.results > 0
    # Two of three sessions were not held: the step cannot meet the SLO.
    assert summary.served_share == pytest.approx(1 / 3, abs=1e-3)
    assert not summary.passed


async def test_the_servers_close_code_is_kept_even_when_the_close_cannot_be_answered(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the server has dropped the connection, aiohttp's reply to its close fails and
    puts 1006 in close_code: the swarm said 1006 where the server had said why. Forced here
    as aiohttp meets it then, on a session the server ends mid-run (4004, too long)."""
    answer = WebSocketWriter.close

    async def connection_gone(writer: WebSocketWriter, *args: Any, **kwargs: Any) -> None:
        if not writer.use_mask:  # the server's
            return await answer(writer, *args, **kwargs)
        raise ClientConnectionResetError("Cannot write to closing transport")

    monkeypatch.setattr(WebSocketWriter, "close", connection_gone)
    runner = await swarm_against(
        make_client, Config(workers=1, max_session_seconds=1.5), sessions="1"
    )
    (session,) = (await runner.run()).sessions
    assert session.close_code == Close.RENEW
    assert session.error == f"server closed the session: {Close.RENEW}"


async def test_the_firehose_exercises_the_stale_frame_path(make_client: MakeClient) -> None:
    runner = await swarm_against(
        make_client,
        SERVER,
        sessions="2",
        fps=40.0,
        mode="firehose",
    )
    run = await runner.run()
    (summary,) = run.steps
    assert all(f.outcome is not None for f in run.frames)
    assert summary.results > 0
    # Whatever the server dropped, its counters and the records say the same.
    assert summary.reconciled == 2
    assert summary.server["dropped"] == sum(1 for f in run.frames if f.outcome is Outcome.DROPPED)
    # The firehose hears the turns and ignores them on purpose.
    assert summary.turns > 0
    assert summary.on_turn == 0


async def test_following_turns_keeps_latency_low_when_sessions_outnumber_the_worker(
    make_client: MakeClient,
) -> None:
    """Six sessions at 15 fps on one worker, which serves a few frames a second to each.

    The same swarm runs twice at the same time, against two servers of one worker each, so
    both meet the same machine: once following turns, once ignoring them (the page before
    turns). Bounds are relative to the server's own measured time per frame and to the
    other run, never absolute: the machine is shared.

    The warm-up is long enough for every session to have heard its first turn: a lane
    invites only a session with no frame waiting, so on a slow host one that paces itself
    can go a few seconds uninvited (once, with a 3-second warm-up, one of six heard none).
    It starts once every session has had its first answer (its graph built): in CI one of
    six once heard no turn in 13 s, on a host where graphs were built seconds apart.
    """
    server = SERVER
    settings: dict[str, Any] = {"sessions": "6", "fps": 15.0, "warmup": 6.0, "hold": 6.0}
    following = await swarm_against(make_client, server, **settings)
    ignoring = await swarm_against(make_client, server, ignore_turns=True, **settings)
    runs = await asyncio.gather(following.run(), ignoring.run())
    (with_turns,), (without,) = (run.steps for run in runs)
    for summary in (with_turns, without):
        assert (summary.errors, summary.refusals, summary.unmatched) == (0, 0, 0)
        assert summary.results > 0
        assert summary.reconciled == 6
    assert_sent_on_turns(runs[0], with_turns)
    assert without.turns > 0
    assert without.on_turn == 0

    # Invited frames wait at most about one frame of another session: capture to result
    # takes at most about three times the server's work on one frame.
    results = [f for f in measured(runs[0], with_turns) if f.outcome is Outcome.RESULT]
    work = [(f.decode_ms or 0.0) + (f.inference_ms or 0.0) for f in results]
    latency = [f.latency_ms or 0.0 for f in results]
    assert percentile(latency, 50) <= 3 * percentile(work, 50), (with_turns.latency_ms, work)
    # Uninvited frames come at random moments and wait behind others'. Granted what the
    # worker really does (issue 16), they keep it busy, so the median shows it; the tail
    # is as long for both on a loaded host.
    fast, slow = with_turns.latency_ms, without.latency_ms
    assert fast["p50"] is not None
    assert slow["p50"] is not None
    assert fast["p50"] < slow["p50"], (fast, slow)
    # Clients that ignore turns are granted what the worker really does (issue 16), so
    # they are served a comparable amount; the grant is steered every 2 s, so in a window
    # this short it may not have settled (bench.live measures it properly).
    assert without.results >= 0.5 * with_turns.results, (with_turns.results, without.results)


async def test_the_window_opens_once_every_session_has_had_its_first_answer(
    make_client: MakeClient,
) -> None:
    """Graphs are built one at a time per worker, seconds apart on a loaded host (26
    sessions on two workers: the last first results 27-29 s after opening), so a window
    opened on the clock alone can measure sessions not yet served. Here the worker is
    stopped until the step waits for answers; with no warm-up the window would otherwise
    open before any."""
    client = await make_client(SERVER)
    worker = client.app[SCHEDULER].workers[0]
    url = f"ws://{client.host}:{client.port}/ws"
    runner = Runner(dataclasses.replace(SHORT, url=url, sessions="3", warmup=0.0), frames())
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        task = asyncio.create_task(runner.run())
        await runner.answering.wait()
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    run = await task
    (summary,) = run.steps
    first: dict[int, float] = {}
    for f in run.frames:
        if f.received is not None:
            first[f.session] = min(first.get(f.session, f.received), f.received)
    assert sorted(first) == [0, 1, 2]
    # The summary rounds the window's times to 6 digits and all_answered_s to 3.
    assert max(first.values()) <= summary.window_start + 1e-6
    assert summary.all_answered_s is not None
    answered = max(first.values()) - min(s.opened for s in run.sessions)
    assert summary.all_answered_s >= answered - 1e-3
    assert summary.results > 0


async def test_an_interrupted_run_keeps_what_it_measured(make_client: MakeClient) -> None:
    runner = await swarm_against(make_client, SERVER, sessions="1,2", hold=30.0)
    task = asyncio.create_task(runner.run())
    await runner.holding.wait()
    runner.interrupt()
    run = await task
    assert run.interrupted
    assert run.stopped == "interrupted"
    (summary,) = run.steps
    assert summary.interrupted
    assert not summary.passed
    assert all(f.outcome is not None for f in run.frames)


async def test_many_sessions_against_the_echo_server_all_reconcile(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> None:
    server = await aiohttp_server(echo.create_app(stats_interval=0.3))
    url = f"ws://{server.host}:{server.port}/ws"
    config = dataclasses.replace(SHORT, url=url, sessions="40", fps=15.0, hold=1.0, spawn_rate=1e3)
    run = await Runner(config, frames()).run()
    (summary,) = run.steps
    assert summary.results == summary.sent > 0
    assert (summary.dropped, summary.errors, summary.refusals) == (0, 0, 0)
    assert summary.reconciled == 40
    assert summary.passed


def test_the_command_line_writes_a_report_even_when_nothing_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "out"
    argv = ["--url", f"ws://127.0.0.1:{port}/ws", "--sessions", "2,4,8", "--hold", "0.2"]
    argv += ["--warmup", "0", "--max-frames", "5", "--out", str(out)]
    assert main(argv) == NO_ANSWER != 0
    report = json.loads((out / "report.json").read_text())
    # Two failing steps in a row end the run.
    assert [s["sessions"] for s in report["steps"]] == [2, 4]
    assert report["stopped"] == "2 failing steps in a row"
    assert report["steps"][0]["errors"] == 2
    assert report["sustainable_sessions"] == 0
    assert all(s["all_answered_s"] is None for s in report["steps"])
    cause = f"no session connected (6 tried): cannot connect to 127.0.0.1:{port}: "
    assert report["no_answer"] == cause + "Connection refused"
    assert report["knee_sessions"] is None
    assert {p.name for p in out.iterdir()} >= {"report.json", "frames.csv", "report.png"}
    captured = capsys.readouterr()
    assert "sustainable sessions: 0 at 15 fps" in captured.out
    assert report["no_answer"] in captured.out.splitlines()
    assert "knee: unknown, no step delivered a result" in captured.out.splitlines()
    assert "ramp further" not in captured.out
    assert "every session answered" not in captured.err
    assert "2 of 2 sessions never answered" in captured.err
    assert "2 sessions: 0 fps delivered, no latency (no result), 2 errors" in captured.err
    assert "None" not in captured.err


async def test_sessions_closed_at_hello_are_not_said_to_have_failed_to_connect(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> None:
    # As the server closes a hello it refuses (`--hello-options '{"exercise": "nope"}'`):
    # the line said "no session connected", which sends one looking at the network.
    server = await closing_at_hello(aiohttp_server, 4001, 'unknown exercise "nope"')
    url = f"ws://{server.host}:{server.port}/ws"
    config = dataclasses.replace(SHORT, url=url, sessions="2", hold=0.5, drain=0.5)
    run = await Runner(config, frames(), progress=io.StringIO()).run()
    report = build_report(config, frames(), run, None)
    assert report["no_answer"] == (
        "no session was answered (2 of 2 connected, none got a result): "
        'closed at hello: 4001 unknown exercise "nope"'
    )


async def test_sessions_that_connect_but_get_no_answer_are_said_to(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> None:
    async def ready_then_close(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()
        await ws.send_json({"type": "ready", "version": 1, "session": "s", "fps": 4.0})
        await ws.receive()  # the first frame
        await ws.close(code=1011)
        return ws

    app = web.Application()
    app.router.add_get("/ws", ready_then_close)
    server = await aiohttp_server(app)
    url = f"ws://{server.host}:{server.port}/ws"
    progress = io.StringIO()
    config = dataclasses.replace(SHORT, url=url, sessions="2", hold=0.5, drain=0.5)
    run = await Runner(config, frames(), progress=progress).run()
    report = build_report(config, frames(), run, None)
    assert report["no_answer"] == (
        "no session was answered (2 of 2 connected, none got a result): "
        "server closed the session: 1011"
    )
    assert run.steps[0].all_answered_s is None
    assert "2 of 2 sessions never answered" in progress.getvalue()


def test_an_out_folder_that_cannot_be_written_is_refused_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    argv = ["--url", "ws://127.0.0.1:9/ws", "--sessions", "1", "--hold", "0.2", "--warmup", "0"]
    assert main([*argv, "--max-frames", "2", "--out", str(afile / "x")]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith(f"swarm: --out {afile / 'x'} cannot take the report")
    assert not captured.out


def test_ctrl_c_while_the_frames_are_cut_ends_with_130_and_no_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Cutting the default video takes about 3 s on a loaded machine: Ctrl-C lands there.
    def interrupted(*args: object) -> FrameSet:
        raise KeyboardInterrupt

    monkeypatch.setattr("swarm.__main__.load_frames", interrupted)
    out = tmp_path / "out"
    argv = ["--url", "ws://127.0.0.1:9/ws", "--sessions", "1", "--hold", "0.2", "--warmup", "0"]
    assert main([*argv, "--out", str(out)]) == 130
    captured = capsys.readouterr()
    assert captured.err == "swarm: interrupted while cutting frames; nothing ran, no report\n"
    assert not (out / "report.json").exists()


def test_a_report_that_cannot_be_written_at_the_end_is_still_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    # The folder takes files, but not report.json: the check before the run passes.
    (out / "report.json").mkdir(parents=True)
    argv = ["--url", "ws://127.0.0.1:9/ws", "--sessions", "1", "--hold", "0.2", "--warmup", "0"]
    assert main([*argv, "--max-frames", "2", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "sustainable sessions: 0 at 15 fps" in captured.out
    assert f"swarm: the report could not be written to {out}: " in captured.err
    assert "Traceback" not in captured.err


def test_a_run_that_cannot_fit_one_step_in_max_duration_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["--url", "ws://127.0.0.1:9/ws", "--hold", "10", "--max-duration", "5"]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--max-frames", "2", "--out", str(out)])
    assert exit_info.value.code == 2
    assert "--max-duration 5 s cannot hold one step" in capsys.readouterr().err
    assert not out.exists()


def test_the_calibration_line_names_its_processes_in_words() -> None:
    assert processes(0) == "one process per core"
    assert processes(1) == "1 process"
    assert processes(3) == "3 processes"


def test_calibration_measures_the_model_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """By default one process per core it may run on: pinned to one core of eight
    (taskset, a cpuset container), it started eight."""
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {5})
    result = calibrate(frames().jpegs[:10], "pose", fps=15.0, seconds=1.0)
    assert result.workers == 1
    assert len(result.per_worker_fps) == 1
    assert result.raw_fps > 1.0


def started_child(deadline: float = 60.0) -> multiprocessing.process.BaseProcess:
    """The calibration process, once calibrate() (in another thread) has started it."""
    limit = time.monotonic() + deadline
    while not (children := multiprocessing.active_children()):
        assert time.monotonic() < limit, "no calibration process started"
        time.sleep(0.01)
    (child,) = children
    return child


def test_ctrl_c_reaches_the_calibration_but_not_its_processes() -> None:
    # A terminal's Ctrl-C goes to the whole process group, children included.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(calibrate, frames().jpegs[:10], "pose", 15.0, 1.0, 1)
        child = started_child()
        assert child.pid is not None
        os.kill(child.pid, signal.SIGINT)
        result = running.result(timeout=120)
    assert child.exitcode == 0
    assert result.raw_fps > 1.0


def test_an_interrupted_calibration_stops_its_processes_at_once() -> None:
    interrupted: list[float] = []

    def interrupt() -> None:
        started_child()
        interrupted.append(time.monotonic())
        _thread.interrupt_main()

    helper = threading.Thread(target=interrupt)
    helper.start()
    with pytest.raises(KeyboardInterrupt):
        calibrate(frames().jpegs[:10], "pose", fps=15.0, seconds=60.0, workers=1)
    (start,) = interrupted
    # Left to itself the process would wait at the barrier or measure on, and join() 10 s.
    assert time.monotonic() - start < 5.0
    helper.join()
    assert not multiprocessing.active_children()
