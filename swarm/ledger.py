"""One simulated session's books: every frame it sent and what became of it, kept so that
they can be checked, once all is answered, against the counts the server reports."""

from __future__ import annotations

from typing import Any

from swarm.messages import number
from swarm.records import FrameRecord, Outcome, SessionRecord
from webapp.protocol import FrameOutcome

# Counters a stats message carries that the swarm can check against its own records.
COUNTERS = (*FrameOutcome, "pending")
# The protocol keeps at most one frame waiting and one running per session.
MAX_PENDING = 2


class Ledger:
    def __init__(self, record: SessionRecord) -> None:
        self.record = record
        self.sent: list[FrameRecord] = []
        self.results = 0
        self.errors = 0
        self.dropped = 0
        self._outstanding: dict[int, FrameRecord] = {}

    def unanswered(self) -> int:
        return len(self._outstanding)

    def send(self, sent: float, turn: float | None) -> FrameRecord:
        """A new frame, sent at `sent` on the run clock; seqs start at 1, as the page's do."""
        seq = len(self.sent) + 1
        record = FrameRecord(self.record.step, self.record.session, seq, sent, turn=turn)
        self.sent.append(record)
        self._outstanding[seq] = record
        return record

    def result(self, seq: int, now: float, timing: object = None) -> None:
        record = self._outstanding.get(seq)
        if record is None:
            record = self._late(seq, now, Outcome.RESULT, "")
            if record is not None:
                _add_timing(record, timing)
            return
        # Results come back in order and only the newest waiting frame survives, so frames
        # sent before this one and still unanswered were replaced and dropped. (Errors may
        # overtake older results, so only a result settles the frames before it.)
        while True:
            first_seq, first = next(iter(self._outstanding.items()))
            del self._outstanding[first_seq]
            if first is record:
                break
            first.outcome, first.detail = Outcome.DROPPED, "superseded"
            self.dropped += 1
        record.received, record.outcome = now, Outcome.RESULT
        _add_timing(record, timing)
        self.results += 1

    def error(self, seq: int, now: float, code: str) -> None:
        record = self._outstanding.pop(seq, None)
        if record is None:
            self._late(seq, now, Outcome.ERROR, code)
            return
        record.received, record.outcome, record.detail = now, Outcome.ERROR, code
        self.errors += 1

    def _late(self, seq: int, now: float, outcome: Outcome, detail: str) -> FrameRecord | None:
        """An answer for a frame already taken as superseded: the record follows the server."""
        record = self.sent[seq - 1] if 1 <= seq <= len(self.sent) else None
        if record is None or record.outcome is not Outcome.DROPPED:
            self.record.unmatched += 1
            return None
        self.dropped -= 1
        if outcome is Outcome.RESULT:
            self.results += 1
        else:
            self.errors += 1
        record.received, record.outcome, record.detail = now, outcome, detail
        return record

    def stats(self, body: dict[str, Any]) -> None:
        counters = {k: float(v) for k, v in body.items() if isinstance(v, int | float)}
        if counters.get("fps"):
            self.record.granted_fps = counters["fps"]
        self.record.server_stats = counters
        # Checks that hold at any moment: the server cannot have received more than was
        # sent, nor processed more than it answered (a result is written before the stats
        # that count it), and keeps at most two frames pending.
        pending = counters.get("pending", 0.0)
        if (
            counters.get("received", 0.0) > len(self.sent)
            or counters.get("processed", 0.0) > self.results
            or not 0 <= pending <= MAX_PENDING
        ):
            self.record.stats_mismatches += 1

    def reconcile(self, server: dict[str, float]) -> bool:
        """Once all is answered, the server's counts and ours must be the same numbers."""
        ours = {
            FrameOutcome.RECEIVED: len(self.sent),
            FrameOutcome.PROCESSED: self.results,
            FrameOutcome.DROPPED: self.dropped,
            FrameOutcome.ERRORS: self.errors,
            "pending": 0,
        }
        return all(server.get(name) == ours[name] for name in COUNTERS)

    def close(self) -> None:
        """Frames unanswered when the session ends: the server counts them as dropped."""
        detail = "unanswered" if not self.record.error else "session failed"
        for record in self._outstanding.values():
            record.outcome, record.detail = Outcome.DROPPED, detail
            self.dropped += 1
        self._outstanding.clear()


def _add_timing(record: FrameRecord, timing: object) -> None:
    if isinstance(timing, dict):
        record.wait_ms = number(timing.get("wait"))
        record.decode_ms = number(timing.get("decode"))
        record.inference_ms = number(timing.get("inference"))
