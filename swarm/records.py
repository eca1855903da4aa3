"""One record per frame sent and one per session: every figure of the report comes from these."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Outcome(enum.StrEnum):
    RESULT = "result"
    DROPPED = "dropped"
    ERROR = "error"


@dataclass(slots=True)
class FrameRecord:
    """Times are seconds on the swarm's perf_counter clock, counted from the start of the run.

    `sent` is also the capture time the frame header carries: frames are encoded before the
    run, so a simulated camera grabs and sends in the same instant. `turn` is when the
    server's `turn` that this frame answers arrived; None for a frame sent on the client's
    own schedule. The `*_ms` figures are the server's `timing_ms` of the result.
    """

    step: int
    session: int
    seq: int
    sent: float
    received: float | None = None
    # None only while the frame is in flight; every frame is settled when its session ends.
    outcome: Outcome | None = None
    detail: str = ""
    turn: float | None = None
    wait_ms: float | None = None
    decode_ms: float | None = None
    inference_ms: float | None = None

    @property
    def latency_ms(self) -> float | None:
        if self.outcome is not Outcome.RESULT or self.received is None:
            return None
        return (self.received - self.sent) * 1000.0


CSV_FIELDS = (
    "step",
    "session",
    "seq",
    "sent",
    "received",
    "outcome",
    "latency_ms",
    "detail",
    "turn",
    "wait_ms",
    "decode_ms",
    "inference_ms",
)


def csv_row(record: FrameRecord) -> tuple[object, ...]:
    latency = record.latency_ms
    return (
        record.step,
        record.session,
        record.seq,
        f"{record.sent:.6f}",
        "" if record.received is None else f"{record.received:.6f}",
        "" if record.outcome is None else record.outcome.value,
        "" if latency is None else f"{latency:.3f}",
        record.detail,
        "" if record.turn is None else f"{record.turn:.6f}",
        _ms(record.wait_ms),
        _ms(record.decode_ms),
        _ms(record.inference_ms),
    )


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


@dataclass(slots=True)
class SessionRecord:
    step: int
    session: int
    opened: float
    server_id: str = ""
    ready: float | None = None
    closed: float | None = None
    granted_fps: float | None = None
    # 1013 from a full server is a refusal, the answer a server should give; not an error.
    refused: bool = False
    # The reason the server gave with its refusal: "server full", a key's quota, admission
    # by rate. Without it a key's quota passed for the server's capacity.
    refusal: str = ""
    close_code: int | None = None
    # Why the session failed (connection, unexpected close, protocol); empty when it did not.
    error: str = ""
    # Camera ticks with nothing sent: the in-flight limit was reached, or the swarm woke late.
    skipped: int = 0
    # `turn` messages received, and frames sent because none had come for a while.
    turns: int = 0
    fallbacks: int = 0
    # The last stats message, for cross-checking the server's counters against ours.
    server_stats: dict[str, float] = field(default_factory=dict)
    # Stats messages whose counters contradict our records or themselves.
    stats_mismatches: int = 0
    # Results or errors naming a seq this session never sent.
    unmatched: int = 0
    # After the drain: did the server's final stats equal our counts? None: no final stats.
    reconciled: bool | None = None
