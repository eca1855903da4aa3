"""Every figure of the report, derived from the per-frame and per-session records alone."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from swarm.config import SwarmConfig
from swarm.records import FrameRecord, Outcome, SessionRecord
from swarm.server_load import ServerLoad
from webapp.protocol import FrameOutcome

PERCENTILES = (50, 95, 99)
# Above these the swarm itself may be what limits the figures: one asyncio loop runs on
# one core, and a late wake-up delays every frame it was meant to send.
CPU_WARN = 0.8
LAG_WARN_MS = 20.0


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); `values` need not be sorted."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def jain(values: Sequence[float]) -> float | None:
    """Jain's fairness index: 1 when all are equal, 1/n when one gets everything."""
    if not values:
        return None
    square_sum = sum(v * v for v in values)
    if square_sum == 0:
        return 1.0  # everyone got the same: nothing
    return sum(values) ** 2 / (len(values) * square_sum)


def spread(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {f"p{q}": None for q in PERCENTILES}
    return {f"p{q}": round(percentile(values, q), 2) for q in PERCENTILES}


@dataclass(frozen=True)
class Slo:
    fps: float
    fps_ratio: float
    session_share: float
    p95_ms: float
    max_errors: int

    @classmethod
    def from_config(cls, config: SwarmConfig) -> Slo:
        return cls(
            config.fps,
            config.slo_fps_ratio,
            config.slo_session_share,
            config.slo_p95_ms,
            config.slo_max_errors,
        )

    @property
    def served_fps(self) -> float:
        return self.fps * self.fps_ratio


@dataclass(frozen=True)
class Window:
    """The measured part of a step: frames sent in [start, end)."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)

    def holds(self, record: FrameRecord) -> bool:
        return self.start <= record.sent < self.end


@dataclass(frozen=True)
class SessionFigures:
    session: int
    fps: float
    latency_ms: dict[str, float | None]
    sent: int
    results: int
    dropped: int
    errors: int
    refused: bool
    error: str
    close_code: int | None


def session_figures(
    session: SessionRecord, frames: Iterable[FrameRecord], window: Window
) -> SessionFigures:
    counts: Counter[Outcome | None] = Counter()
    latencies: list[float] = []
    for frame in frames:
        counts[frame.outcome] += 1
        latency = frame.latency_ms
        if latency is not None:
            latencies.append(latency)
    results = counts[Outcome.RESULT]
    return SessionFigures(
        session=session.session,
        fps=results / window.seconds if window.seconds > 0 else 0.0,
        latency_ms=spread(latencies),
        sent=sum(counts.values()),
        results=results,
        dropped=counts[Outcome.DROPPED],
        errors=counts[Outcome.ERROR] + (1 if session.error else 0),
        refused=session.refused,
        error=session.error,
        close_code=session.close_code,
    )


@dataclass(frozen=True)
class StepSummary:
    sessions: int
    interrupted: bool
    # The measured window on the run clock: frames.csv rows sent inside it make every figure.
    window_start: float
    window_end: float
    window_s: float
    sent: int
    results: int
    delivered_fps: float
    latency_ms: dict[str, float | None]
    # The server's own `timing_ms.wait`: how long frames waited there for a worker.
    server_wait_ms: dict[str, float | None]
    session_fps: dict[str, float | None]
    served_share: float
    fairness: float | None
    dropped: int
    errors: int
    refusals: int
    close_codes: dict[str, int]
    skipped: int
    # Frames sent in answer to a `turn`, and turns received over the whole step.
    on_turn: int
    turns: int
    swarm_cpu: float
    loop_lag_ms_p95: float | None
    server: dict[str, float]
    stats_mismatches: int
    unmatched: int
    reconciled: int
    unreconciled: int
    slo: dict[str, bool]
    passed: bool
    per_session: tuple[SessionFigures, ...]
    # The server's own cost over the hold, from its /metrics; None when it was not read.
    server_cpu_percent: float | None = None  # percent of one core: server and workers
    server_rss_bytes: float | None = None  # server and workers, at the end of the hold
    busy_ratio: float | None = None  # worker busy seconds / (workers x hold seconds)
    server_processes: dict[str, dict[str, float]] = field(default_factory=dict)
    # From the step's first session opening to the last one's first answer (its graph
    # built): the warm-up, and the window, start after it.
    all_answered_s: float | None = None

    @property
    def swarm_limited(self) -> bool:
        lag = self.loop_lag_ms_p95 or 0.0
        return self.swarm_cpu > CPU_WARN or lag > LAG_WARN_MS


def summarize_step(
    sessions: int,
    frames: Sequence[FrameRecord],
    session_records: Sequence[SessionRecord],
    window: Window,
    slo: Slo,
    swarm_cpu: float = 0.0,
    loop_lags_ms: Sequence[float] = (),
    interrupted: bool = False,
    server_load: ServerLoad | None = None,
    all_answered_s: float | None = None,
) -> StepSummary:
    measured = [f for f in frames if window.holds(f)]
    by_session: dict[int, list[FrameRecord]] = {s.session: [] for s in session_records}
    for frame in measured:
        by_session.setdefault(frame.session, []).append(frame)
    per_session = tuple(
        session_figures(s, by_session[s.session], window)
        for s in sorted(session_records, key=lambda s: s.session)
    )
    admitted = [f.fps for f in per_session if not f.refused]
    # A refused session is one the server did not hold: it counts as not served.
    served = sum(1 for f in per_session if not f.refused and f.fps >= slo.served_fps)
    served_share = served / sessions if sessions else 0.0
    latencies = [lat for f in measured if (lat := f.latency_ms) is not None]
    results = len(latencies)
    counts = Counter(f.outcome for f in measured)
    session_errors = sum(1 for s in session_records if s.error)
    errors = counts[Outcome.ERROR] + session_errors
    latency = spread(latencies)
    p95 = latency["p95"]
    checks = {
        "served_share": served_share >= slo.session_share,
        "p95_latency": p95 is not None and p95 <= slo.p95_ms,
        "errors": errors <= slo.max_errors,
    }
    return StepSummary(
        sessions=sessions,
        interrupted=interrupted,
        window_start=round(window.start, 6),
        window_end=round(window.end, 6),
        window_s=round(window.seconds, 3),
        sent=len(measured),
        results=results,
        delivered_fps=round(results / window.seconds, 2) if window.seconds > 0 else 0.0,
        latency_ms=latency,
        server_wait_ms=spread([w for f in measured if (w := f.wait_ms) is not None]),
        session_fps={
            "min": round(min(admitted), 2) if admitted else None,
            "p5": round(percentile(admitted, 5), 2) if admitted else None,
            "median": round(percentile(admitted, 50), 2) if admitted else None,
        },
        served_share=round(served_share, 4),
        fairness=None if (j := jain(admitted)) is None else round(j, 4),
        dropped=counts[Outcome.DROPPED],
        errors=errors,
        refusals=sum(1 for s in session_records if s.refused),
        close_codes=dict(
            Counter(str(s.close_code) for s in session_records if s.error and s.close_code)
        ),
        skipped=sum(s.skipped for s in session_records),
        on_turn=sum(1 for f in measured if f.turn is not None),
        turns=sum(s.turns for s in session_records),
        swarm_cpu=round(swarm_cpu, 3),
        loop_lag_ms_p95=round(percentile(loop_lags_ms, 95), 2) if loop_lags_ms else None,
        server=server_totals(session_records),
        stats_mismatches=sum(s.stats_mismatches for s in session_records),
        unmatched=sum(s.unmatched for s in session_records),
        reconciled=sum(1 for s in session_records if s.reconciled),
        unreconciled=sum(1 for s in session_records if s.reconciled is False),
        slo=checks,
        passed=all(checks.values()) and not interrupted,
        per_session=per_session,
        server_cpu_percent=server_load.cpu_percent if server_load else None,
        server_rss_bytes=server_load.rss_bytes if server_load else None,
        busy_ratio=server_load.busy_ratio if server_load else None,
        server_processes=server_load.by_process if server_load else {},
        all_answered_s=all_answered_s,
    )


def server_totals(session_records: Iterable[SessionRecord]) -> dict[str, float]:
    """The server's own counters, summed over the last stats message of each session."""
    totals: dict[str, float] = dict.fromkeys(map(str, FrameOutcome), 0.0)
    for record in session_records:
        for name in totals:
            totals[name] += record.server_stats.get(name, 0.0)
    return totals


def sustainable_sessions(steps: Iterable[StepSummary]) -> int:
    """The largest step that met the SLO over a whole hold; 0 when none did."""
    return max((s.sessions for s in steps if s.passed), default=0)
