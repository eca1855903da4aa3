"""Where every frame a session received ended up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter

from webapp.protocol import FrameOutcome


@dataclass
class Counters:
    """Each count also feeds the server-wide metric, labelled by outcome."""

    metric: Counter
    received: int = 0
    processed: int = 0
    dropped: int = 0
    errors: int = 0
    # The same count for the session's access key (access/socket.py Gate.frame).
    also: Callable[[str], None] | None = None

    def add(self, outcome: FrameOutcome) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        self.metric.labels(outcome).inc()
        if self.also is not None:
            self.also(outcome)

    @property
    def pending(self) -> int:
        return self.received - self.processed - self.dropped - self.errors

    def settle(self) -> None:
        """At the session's end, its frames still in a worker or unsent become dropped:
        left out, holotrack_frames_total lost one to three at every lost connection, pause
        or crash, and received no longer added up."""
        for _ in range(self.pending):
            self.add(FrameOutcome.DROPPED)
