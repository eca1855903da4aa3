"""Where every frame a session received ended up."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter


@dataclass
class Counters:
    """Each count also feeds the server-wide metric, labelled by outcome."""

    metric: Counter
    received: int = 0
    processed: int = 0
    dropped: int = 0
    errors: int = 0

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        self.metric.labels(outcome).inc()
