"""One session's graph, one frame at a time against two in flight: rates and latencies.

python -m bench.inflight [--frames 150] [--rounds 3] [--fps 30]

In this process, on the swarm's frames (decode included, as the server decodes every frame),
one video-mode graph runs the same frames in alternating rounds:

- `sequential`: decode, `TrackEngine.process` (adds the frame, waits until the graph is
  idle), the next frame; what `swarm.calibrate` measures as raw throughput;
- `two in flight`: decode, `TrackEngine.submit`, and the next frame is decoded and added
  while the previous one is still inside the graph, never more than two in it;
- both again with frames offered at `--fps` (a camera): a frame that finds the graph
  busy waits for it (sequential) or for a place (two in flight), so latency is measured
  from the frame's capture time.

Latency is capture (or, unpaced, the moment decoding starts) to landmarks in hand. It
also checks that both ways give the same landmarks for the same frames from a reset graph.
"""

from __future__ import annotations

import argparse
import queue
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.common import loadavg
from swarm.calibrate import _quiet_native_logs
from swarm.config import default_source
from swarm.frames import load_frames
from webapp.engine import pipelined
from webapp.engine.imaging import decode
from webapp.engine.inference import TrackEngine
from webapp.engine.wire import Landmarks
from webapp.protocol import Track

MAX_PIXELS = 25_000_000
DEPTH = 2
STEP_MS = 1000.0 / 30.0


@dataclass(frozen=True)
class Run:
    frames: int
    seconds: float
    latencies_ms: list[float]
    landmarks: list[Landmarks]

    @property
    def fps(self) -> float:
        return self.frames / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Camera:
    """Frames as a camera gives them: at `fps` (the newest one captured when a frame is
    taken, older ones dropped, as a session's mailbox does), or, unpaced, every frame as
    soon as it is asked for."""

    def __init__(self, count: int, fps: float) -> None:
        self.count, self.fps = count, fps
        self.start = time.perf_counter()
        self.taken: dict[int, float] = {}

    def next(self, after: int) -> int | None:
        """The frame to take after frame `after`, waiting for it; None past the last."""
        if self.fps <= 0:
            index = after + 1
        else:
            wanted = after + 1
            if (wait := self.start + wanted / self.fps - time.perf_counter()) > 0:
                time.sleep(wait)
            index = max(wanted, int((time.perf_counter() - self.start) * self.fps))
        if index >= self.count:
            return None
        self.taken[index] = time.perf_counter() if self.fps <= 0 else self.start + index / self.fps
        return index


def sequential(engine: TrackEngine, jpegs: list[bytes], fps: float) -> Run:
    engine.reset()
    camera = Camera(len(jpegs), fps)
    latencies, marks = [], []
    i = camera.next(-1)
    while i is not None:
        rgb = decode(jpegs[i], MAX_PIXELS)
        marks.append(engine.process(rgb, i * STEP_MS))
        latencies.append((time.perf_counter() - camera.taken[i]) * 1000.0)
        i = camera.next(i)
    return Run(len(marks), time.perf_counter() - camera.start, latencies, marks)


def overlapped(engine: TrackEngine, jpegs: list[bytes], fps: float) -> Run:
    engine.reset()
    camera = Camera(len(jpegs), fps)
    finished: queue.Queue[tuple[int, pipelined.Outputs]] = queue.Queue()
    latencies: list[float] = []
    marks: list[Landmarks] = []
    submitted = 0

    def collect() -> None:
        index, outputs = finished.get()
        marks.append(engine.landmarks(outputs))
        latencies.append((time.perf_counter() - camera.taken[index]) * 1000.0)

    def through(index: int) -> Callable[[pipelined.Outputs], None]:
        return lambda outputs: finished.put((index, outputs))

    i = camera.next(-1)
    while i is not None:
        rgb = decode(jpegs[i], MAX_PIXELS)
        engine.submit(rgb, i * STEP_MS, through(i))
        submitted += 1
        # Never a third frame in the graph: wait for the oldest first.
        while submitted - len(marks) >= DEPTH or not finished.empty():
            collect()
        i = camera.next(i)
    while len(marks) < submitted:
        collect()
    return Run(len(marks), time.perf_counter() - camera.start, latencies, marks)


def _line(name: str, runs: list[Run]) -> str:
    latencies = [ms for run in runs for ms in run.latencies_ms]
    merged = Run(0, 1.0, latencies, [])
    fps = statistics.mean(run.fps for run in runs)
    spread = ", ".join(f"{run.fps:.1f}" for run in runs)
    return (
        f"{name:<24} {fps:6.1f} frames/s ({spread})   latency p50 {merged.percentile(0.5):5.1f} "
        f"p95 {merged.percentile(0.95):5.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inflight")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fps", type=float, default=30.0, help="the camera of the paced runs")
    parser.add_argument("--track", default="holistic", choices=[t.value for t in Track])
    args = parser.parse_args()
    _quiet_native_logs()
    frames = load_frames(default_source(), 480, 70, args.frames)
    jpegs = list(frames.jpegs)
    engine = TrackEngine(Track(args.track))
    sequential(engine, jpegs[:10], 0)  # loads the models
    load_before = loadavg()
    runs: dict[str, list[Run]] = {}
    plan = [
        ("sequential", sequential, 0.0),
        ("two in flight", overlapped, 0.0),
        (f"sequential @{args.fps:g}", sequential, args.fps),
        (f"two in flight @{args.fps:g}", overlapped, args.fps),
    ]
    for _ in range(args.rounds):
        for name, run, fps in plan:
            runs.setdefault(name, []).append(run(engine, jpegs, fps))
    load_after = loadavg()
    print(
        f"{args.track}, {len(jpegs)} frames {frames.width}x{frames.height} from "
        f"{default_source()}, {args.rounds} rounds each, alternating; "
        f"{threading.active_count()} Python threads"
    )
    for name, _, _ in plan:
        print(_line(name, runs[name]))
    seq = statistics.mean(r.fps for r in runs["sequential"])
    two = statistics.mean(r.fps for r in runs["two in flight"])
    print(f"two in flight / sequential: {two / seq:.3f}")
    same = all(
        a.landmarks == b.landmarks
        for a, b in zip(runs["sequential"], runs["two in flight"], strict=True)
    )
    print(f"same landmarks, frame by frame: {'yes' if same else 'NO'}")
    print(f"load average before {load_before}, after {load_after}")
    engine.close()


if __name__ == "__main__":
    main()
