"""The two kinds of work a lane runs: a live session's frame and a still image."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from webapp.engine.wire import StillResult


@dataclass
class Frame:
    """One frame as it arrived from a client; `started` is set when a worker takes it."""

    seq: int
    capture_ms: float
    data: bytes
    received: float = field(default_factory=time.perf_counter)
    started: float = 0.0


@dataclass(eq=False)
class StillJob:
    """A still image in the line any worker serves; its answer goes to `future`."""

    data: bytes
    future: asyncio.Future[StillResult]
