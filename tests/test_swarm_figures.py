"""The swarm's figures and verdict, from hand-built records: no server, no model."""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pytest

from swarm.messages import parse_message
from swarm.records import FrameRecord, Outcome, SessionRecord
from swarm.stats import (
    Slo,
    StepSummary,
    Window,
    jain,
    percentile,
    summarize_step,
    sustainable_sessions,
)

SLO = Slo(fps=10.0, fps_ratio=0.9, session_share=0.95, p95_ms=250.0, max_errors=0)
WINDOW = Window(10.0, 20.0)


def frames_for(
    session: int, fps: float, latency_ms: float, window: Window = WINDOW, step: int = 1
) -> list[FrameRecord]:
    """Frames sent at `fps` through the window, each answered after `latency_ms`."""
    out: list[FrameRecord] = []
    for seq in itertools.count(1):
        sent = window.start + (seq - 1) / fps
        if sent >= window.end:
            return out
        out.append(FrameRecord(step, session, seq, sent, sent + latency_ms / 1000, Outcome.RESULT))
    raise AssertionError("unreachable")


def sessions(count: int, step: int = 1) -> list[SessionRecord]:
    return [SessionRecord(step, i, opened=0.0, ready=0.1) for i in range(count)]


@pytest.mark.parametrize("q", [0, 5, 50, 95, 99, 100])
def test_percentile_matches_numpy(q: float) -> None:
    values = [float(v) for v in np.random.default_rng(1).exponential(50, 137)]
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_jain_index_runs_from_one_over_n_to_one() -> None:
    assert jain([5.0, 5.0, 5.0, 5.0]) == pytest.approx(1.0)
    assert jain([8.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)
    assert jain([1.0, 2.0, 3.0]) == pytest.approx(36 / (3 * 14))
    assert jain([]) is None


def test_figures_agree_with_the_records() -> None:
    frames = frames_for(0, 10, 100) + frames_for(1, 10, 200) + frames_for(2, 5, 300)
    summary = summarize_step(3, frames, sessions(3), WINDOW, SLO)
    assert summary.sent == len(frames) == 100 + 100 + 50
    assert summary.results == 250
    assert summary.delivered_fps == pytest.approx(25.0)
    assert summary.session_fps == {"min": 5.0, "p5": 5.5, "median": 10.0}
    assert summary.latency_ms["p50"] == pytest.approx(200.0)
    assert summary.latency_ms["p99"] == pytest.approx(300.0)
    assert summary.fairness == pytest.approx(round(jain([10, 10, 5]) or 0, 4))
    assert summary.served_share == pytest.approx(2 / 3, abs=1e-4)
    assert [s.fps for s in summary.per_session] == [10.0, 10.0, 5.0]
    assert summary.per_session[2].latency_ms["p95"] == pytest.approx(300.0)
    # Session 2 gets half the target: the step misses the SLO on that alone.
    assert summary.slo == {"served_share": False, "p95_latency": False, "errors": True}
    assert not summary.passed


def test_only_frames_sent_inside_the_window_count() -> None:
    warm = frames_for(0, 10, 50, Window(0.0, 10.0))
    held = frames_for(0, 10, 100)
    late = [FrameRecord(1, 0, 999, 20.0, 20.1, Outcome.RESULT)]
    summary = summarize_step(1, warm + held + late, sessions(1), WINDOW, SLO)
    assert summary.sent == len(held)
    assert summary.latency_ms["p50"] == pytest.approx(100.0)


def test_a_step_meeting_every_threshold_passes() -> None:
    frames = [f for i in range(4) for f in frames_for(i, 10, 120)]
    summary = summarize_step(4, frames, sessions(4), WINDOW, SLO)
    assert summary.passed
    assert summary.fairness == pytest.approx(1.0)


def test_outcomes_are_counted_and_an_error_fails_the_step() -> None:
    frames = frames_for(0, 10, 100)
    frames[3] = dataclasses.replace(frames[3], received=None, outcome=Outcome.DROPPED)
    frames[4] = dataclasses.replace(frames[4], outcome=Outcome.ERROR, detail="bad_frame")
    summary = summarize_step(1, frames, sessions(1), WINDOW, SLO)
    assert (summary.results, summary.dropped, summary.errors) == (98, 1, 1)
    assert summary.results + summary.dropped + summary.errors == summary.sent
    assert summary.slo["errors"] is False
    assert not summary.passed


def test_refusals_are_refusals_not_errors() -> None:
    records = sessions(3)
    records[2].refused = True
    records[2].close_code = 1013
    frames = frames_for(0, 10, 100) + frames_for(1, 10, 100)
    summary = summarize_step(3, frames, records, WINDOW, SLO)
    assert summary.refusals == 1
    assert summary.errors == 0
    assert summary.close_codes == {}
    # The refused session was not held, so only 2 of 3 sessions were served.
    assert summary.served_share == pytest.approx(2 / 3, abs=1e-4)
    assert summary.session_fps["min"] == 10.0  # over admitted sessions
    assert not summary.passed


def test_an_unexpected_close_is_an_error_with_its_code() -> None:
    records = sessions(2)
    records[1].error = "server closed the session: 1011"
    records[1].close_code = 1011
    frames = frames_for(0, 10, 100) + frames_for(1, 10, 100)
    summary = summarize_step(2, frames, records, WINDOW, SLO)
    assert summary.errors == 1
    assert summary.close_codes == {"1011": 1}
    assert summary.per_session[1].errors == 1
    assert not summary.passed


def test_a_step_cut_short_never_passes() -> None:
    frames = frames_for(0, 10, 100, Window(10.0, 15.0))
    summary = summarize_step(1, frames, sessions(1), Window(10.0, 15.0), SLO, interrupted=True)
    assert all(summary.slo.values())
    assert not summary.passed


def test_a_step_without_results_fails_on_latency() -> None:
    frames = [FrameRecord(1, 0, 1, 11.0, None, Outcome.DROPPED)]
    summary = summarize_step(1, frames, sessions(1), WINDOW, SLO)
    assert summary.latency_ms == {"p50": None, "p95": None, "p99": None}
    assert summary.slo["p95_latency"] is False


def step(sessions_: int, passed: bool) -> StepSummary:
    frames = [f for i in range(sessions_) for f in frames_for(i, 10 if passed else 4, 100)]
    summary = summarize_step(sessions_, frames, sessions(sessions_), WINDOW, SLO)
    assert summary.passed is passed
    return summary


def test_verdict_is_the_largest_step_meeting_the_slo() -> None:
    assert sustainable_sessions([step(1, True), step(2, True), step(4, False)]) == 2
    assert sustainable_sessions([step(1, True), step(2, False), step(4, True)]) == 4
    assert sustainable_sessions([step(1, False), step(2, False)]) == 0
    assert sustainable_sessions([]) == 0


def test_the_slo_thresholds_are_the_ones_given() -> None:
    frames = [f for i in range(2) for f in frames_for(i, 10, 300)]
    strict = summarize_step(2, frames, sessions(2), WINDOW, SLO)
    lax = summarize_step(2, frames, sessions(2), WINDOW, dataclasses.replace(SLO, p95_ms=400))
    assert not strict.passed
    assert lax.passed
    slow = [f for i in range(2) for f in frames_for(i, 8, 100)]
    assert not summarize_step(2, slow, sessions(2), WINDOW, SLO).passed
    lenient = dataclasses.replace(SLO, fps_ratio=0.75)
    assert summarize_step(2, slow, sessions(2), WINDOW, lenient).passed


def test_results_are_read_from_their_head_and_everything_else_in_full() -> None:
    long_result = '{"type": "result", "seq": 7, "capture_ms": 1.5, "landmarks": {"pose": []}}'
    message = parse_message(long_result)
    assert (message.type, message.seq) == ("result", 7)
    compact = parse_message('{"type":"result","seq":12,"capture_ms":3}')
    assert (compact.type, compact.seq) == ("result", 12)
    reordered = parse_message('{"seq": 9, "type": "result", "capture_ms": 1}')
    assert (reordered.type, reordered.seq) == ("result", 9)
    error = parse_message('{"type": "error", "code": "bad_frame", "message": "x", "seq": 3}')
    assert (error.type, error.seq, error.body["code"]) == ("error", 3, "bad_frame")
    stats = parse_message('{"type": "stats", "received": 1, "fps": 14.5}')
    assert (stats.type, stats.seq, stats.body["fps"]) == ("stats", None, 14.5)
    turn = parse_message('{"type": "turn"}')
    assert (turn.type, turn.seq) == ("turn", None)
    with pytest.raises(ValueError, match="not a JSON object"):
        parse_message("[1, 2]")
    with pytest.raises(ValueError, match="Expecting value"):
        parse_message("not json")


def test_a_result_brings_the_server_timing_from_its_tail() -> None:
    landmarks = json.dumps({"pose": [[0.5, 0.5, 0.0, 1.0]] * 33, "face": None})
    timing = '"timing_ms": {"wait": 3.1, "decode": 1.2, "inference": 28.4}'
    text = f'{{"type": "result", "seq": 4, "landmarks": {landmarks}, {timing}}}'
    message = parse_message(text)
    assert (message.type, message.seq) == ("result", 4)
    assert message.body == {"timing_ms": {"wait": 3.1, "decode": 1.2, "inference": 28.4}}
    # Without timing, or with its fields elsewhere, the result is still read.
    assert parse_message('{"type": "result", "seq": 5, "capture_ms": 1}').body == {}
    reordered = parse_message('{"seq": 6, "type": "result", "timing_ms": {"wait": 1}}')
    assert reordered.body["timing_ms"] == {"wait": 1}
