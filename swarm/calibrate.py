"""Raw model throughput on this machine: the same frames, in-process, one graph per core.

It gives the ceiling the server's delivered frames/s is measured against (efficiency).
The children import mediapipe; the swarm process itself never does.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import sys
import time
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

# Frames each child runs before the measured part: the first calls load the models.
WARM_FRAMES = 5
START_TIMEOUT = 180.0
MAX_PIXELS = 25_000_000


class CalibrationError(Exception):
    """A calibration process failed or never finished."""


@dataclass(frozen=True)
class Calibration:
    workers: int
    seconds: float
    per_worker_fps: tuple[float, ...]

    @property
    def raw_fps(self) -> float:
        return sum(self.per_worker_fps)


def _quiet_native_logs() -> None:
    """MediaPipe's native code writes to fd 2 straight; keep Python's stderr, mute fd 2."""
    sys.stderr = os.fdopen(os.dup(2), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def _measure(
    jpegs: tuple[bytes, ...],
    track: str,
    fps: float,
    seconds: float,
    barrier: Barrier,
    results: Queue[tuple[int, float]],
) -> None:
    _quiet_native_logs()
    from webapp.engine.imaging import decode
    from webapp.engine.inference import TrackEngine
    from webapp.protocol import Track

    engine = TrackEngine(Track(track))
    step_ms = 1000.0 / fps
    try:
        for i in range(min(WARM_FRAMES, len(jpegs))):
            engine.process(decode(jpegs[i], MAX_PIXELS), i * step_ms)
        engine.reset()
        barrier.wait(START_TIMEOUT)
        count = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            # Decode included: the server decodes every frame it runs, too.
            rgb = decode(jpegs[count % len(jpegs)], MAX_PIXELS)
            engine.process(rgb, count * step_ms)
            count += 1
        results.put((count, elapsed))
    finally:
        engine.close()


def calibrate(
    jpegs: tuple[bytes, ...], track: str, fps: float, seconds: float, workers: int = 0
) -> Calibration:
    count = workers or os.cpu_count() or 1
    # spawn, not fork: mediapipe's threads and the parent's event loop must not be copied.
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(count)
    results: Queue[tuple[int, float]] = ctx.Queue()
    children = [
        ctx.Process(target=_measure, args=(jpegs, track, fps, seconds, barrier, results))
        for _ in range(count)
    ]
    for child in children:
        child.start()
    measured: list[tuple[int, float]] = []
    deadline = time.monotonic() + START_TIMEOUT + seconds
    try:
        while len(measured) < count:
            try:
                measured.append(results.get(timeout=1.0))
            except queue.Empty:
                failed = [c.exitcode for c in children if c.exitcode not in (None, 0)]
                if failed:
                    raise CalibrationError(f"a calibration process died ({failed[0]})") from None
                if time.monotonic() > deadline:
                    raise CalibrationError("calibration did not finish in time") from None
    finally:
        for child in children:
            child.join(timeout=10)
            if child.is_alive():
                child.kill()
                child.join()
    per_worker = tuple(round(frames / elapsed, 2) for frames, elapsed in measured)
    return Calibration(count, seconds, per_worker)
