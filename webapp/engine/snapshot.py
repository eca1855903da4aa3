"""What the rest of the server may know about the engine: one snapshot, read at one moment.

Metrics, /usage and the swarm's server figures read these plain values, never the lanes.
"""

from __future__ import annotations

from dataclasses import dataclass

from webapp.engine.lane import LaneState


@dataclass(frozen=True)
class WorkerView:
    index: int
    pid: int
    alive: bool
    graphs: int
    state: LaneState
    sessions: int
    grant_factor: float = 1.0  # the steered share of its worker's second (grant.py)


@dataclass(frozen=True)
class PoolSnapshot:
    """What the rest of the server may know about the engine, read at one moment."""

    sessions: int
    max_sessions: int
    room: bool  # one more live session would be admitted
    stills_waiting: int
    busy_seconds: float  # worker time spent on jobs since start, summed over workers
    workers: tuple[WorkerView, ...]
    refusal: str | None = None  # why one more session would be refused, when it would

    @property
    def workers_alive(self) -> int:
        return sum(1 for w in self.workers if w.alive)
