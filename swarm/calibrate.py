"""Raw model throughput on this machine: the same images, in-process, one graph per process.

It gives the ceiling a server's delivered rate is measured against (efficiency): the
swarm's frames/s through video-mode graphs (a track), and bench.predict's images/s through
the static-image graph (STILL). The children import mediapipe; the caller never does.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from webapp.defaults import default_workers

# Images each child runs before the measured part: the first calls load the models.
WARM_FRAMES = 5
START_TIMEOUT = 180.0
MAX_PIXELS = 25_000_000
# The track name that selects the static-image graph POST /predict runs.
STILL = "still"


class CalibrationError(Exception):
    """A calibration process failed or never finished."""


@dataclass(frozen=True)
class Share:
    """What one calibration process measured over the common window."""

    images: int
    seconds: float
    cpu_seconds: float
    decode_seconds: float
    model_seconds: float

    @property
    def fps(self) -> float:
        return round(self.images / self.seconds, 2)


@dataclass(frozen=True)
class Calibration:
    workers: int
    seconds: float
    per_worker_fps: tuple[float, ...]
    shares: tuple[Share, ...] = ()
    # Every core's use over the measured window, other people's processes included.
    machine_busy_cores: float = 0.0

    @property
    def raw_fps(self) -> float:
        return sum(self.per_worker_fps)


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks over all cores since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user time
    return total - idle, total


def _quiet_native_logs() -> None:
    """MediaPipe's native code writes to fd 2 straight; keep Python's stderr, mute fd 2."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr = os.fdopen(os.dup(2), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def _measure(
    jpegs: tuple[bytes, ...],
    track: str,
    fps: float,
    seconds: float,
    warmup: float,
    barrier: Barrier,
    results: Queue[Share],
) -> None:
    _quiet_native_logs()
    from webapp.engine.imaging import decode
    from webapp.engine.inference import StillEngine, TrackEngine
    from webapp.protocol import Track

    engine = StillEngine() if track == STILL else TrackEngine(Track(track))
    step_ms = 1000.0 / fps

    def run(index: int) -> None:
        rgb = decode(jpegs[index % len(jpegs)], MAX_PIXELS)
        if isinstance(engine, StillEngine):
            engine.process(rgb)
        else:
            engine.process(rgb, index * step_ms)

    try:
        warm_until = time.perf_counter() + warmup
        count = 0
        while count < min(WARM_FRAMES, len(jpegs)) or time.perf_counter() < warm_until:
            run(count)
            count += 1
        if isinstance(engine, TrackEngine):
            engine.reset()
        barrier.wait(START_TIMEOUT)
        count = 0
        decode_seconds = model_seconds = 0.0
        cpu_start = time.process_time()
        start = now = time.perf_counter()
        while now - start < seconds:
            # Decode included: the server decodes every image it runs, too.
            rgb = decode(jpegs[count % len(jpegs)], MAX_PIXELS)
            decoded = time.perf_counter()
            if isinstance(engine, StillEngine):
                engine.process(rgb)
            else:
                engine.process(rgb, count * step_ms)
            count += 1
            decode_seconds += decoded - now
            now = time.perf_counter()
            model_seconds += now - decoded
        cpu = time.process_time() - cpu_start
        results.put(Share(count, now - start, cpu, decode_seconds, model_seconds))
    finally:
        engine.close()


def _wait_for_start(
    barrier: Barrier,
    children: Sequence[multiprocessing.process.BaseProcess],
    count: int,
    limit: float,
) -> None:
    """Joins the children at the barrier, or fails as soon as one of them has died."""
    deadline = time.monotonic() + limit
    while barrier.n_waiting < count:
        failed = [c.exitcode for c in children if c.exitcode not in (None, 0)]
        if failed:
            raise CalibrationError(f"a calibration process died ({failed[0]})")
        if time.monotonic() > deadline:
            raise CalibrationError("the calibration processes did not start in time")
        time.sleep(0.1)
    barrier.wait(START_TIMEOUT)


def calibrate(
    jpegs: tuple[bytes, ...],
    track: str,
    fps: float,
    seconds: float,
    workers: int = 0,
    warmup: float = 0.0,
) -> Calibration:
    # One per core this process may run on, as the server's own default: under taskset or
    # a cpuset container, one per core of the host crowded the cores it was given.
    count = workers or default_workers()
    # spawn, not fork: mediapipe's threads and the parent's event loop must not be copied.
    ctx = multiprocessing.get_context("spawn")
    # This process waits too, to read the machine's CPU counters over the measured window.
    barrier = ctx.Barrier(count + 1)
    results: Queue[Share] = ctx.Queue()
    children = [
        ctx.Process(target=_measure, args=(jpegs, track, fps, seconds, warmup, barrier, results))
        for _ in range(count)
    ]
    # A terminal's Ctrl-C goes to the whole process group: each child would die with a
    # KeyboardInterrupt traceback of its own. The children inherit SIGINT blocked, from
    # their first instruction on; this process handles it and stops them. Blocked rather
    # than ignored here, so a Ctrl-C during the starts still reaches this process after.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        for child in children:
            child.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    measured: list[Share] = []
    deadline = time.monotonic() + START_TIMEOUT + warmup + seconds
    try:
        _wait_for_start(barrier, children, count, START_TIMEOUT + warmup)
        window_start = machine_ticks()
        time.sleep(seconds)
        window_end = machine_ticks()
        while len(measured) < count:
            try:
                measured.append(results.get(timeout=1.0))
            except queue.Empty:
                failed = [c.exitcode for c in children if c.exitcode not in (None, 0)]
                if failed:
                    raise CalibrationError(f"a calibration process died ({failed[0]})") from None
                if time.monotonic() > deadline:
                    raise CalibrationError("calibration did not finish in time") from None
    except BaseException:
        # Ctrl-C or a failed child: the others would wait at the barrier or go on measuring.
        for child in children:
            child.terminate()
        raise
    finally:
        for child in children:
            child.join(timeout=10)
            if child.is_alive():
                child.kill()
                child.join()
    busy = (window_end[0] - window_start[0]) / max(1, window_end[1] - window_start[1])
    shares = tuple(measured)
    per_worker = tuple(share.fps for share in shares)
    return Calibration(count, seconds, per_worker, shares, round(busy * (os.cpu_count() or 1), 2))
