"""python -m swarm: how many sessions can this server hold at a given quality?"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from swarm.calibrate import Calibration, CalibrationError, calibrate
from swarm.config import SwarmConfig, load_config
from swarm.frames import FrameSet, SourceError, load_frames
from swarm.report import table, write_all
from swarm.runner import Runner

INTERRUPTED = 130


def _calibrate(config: SwarmConfig, frames: FrameSet) -> Calibration:
    workers = config.calibrate_workers or "one per core"
    print(
        f"calibrating: the model in-process, {workers} processes, "
        f"{config.calibrate_seconds:g} s ...",
        file=sys.stderr,
    )
    result = calibrate(
        frames.jpegs, config.track, config.fps, config.calibrate_seconds, config.calibrate_workers
    )
    print(f"raw throughput: {result.raw_fps:.1f} frames/s", file=sys.stderr)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    config = load_config(argv)
    try:
        frames = load_frames(config.source, config.width, config.quality, config.max_frames)
    except SourceError as exc:
        print(f"swarm: {exc}", file=sys.stderr)
        return 2
    print(
        f"swarm: {len(frames)} frames {frames.width}x{frames.height} "
        f"(~{frames.mean_bytes / 1024:.0f} KB) from {config.source}; steps "
        f"{','.join(map(str, config.steps))} at {config.fps:g} fps ({config.track}, "
        f"{config.mode}) against {config.url}",
        file=sys.stderr,
    )
    calibration = None
    runner = Runner(config, frames, progress=sys.stderr)
    try:
        if config.calibrate:
            calibration = _calibrate(config, frames)
        asyncio.run(runner.run(handle_signals=True))
    except KeyboardInterrupt:
        runner.result.interrupted = True
        runner.result.stopped = runner.result.stopped or "interrupted"
    except CalibrationError as exc:
        print(f"swarm: {exc}", file=sys.stderr)
        return 1
    finally:
        out = Path(config.out)
        report = write_all(out, config, frames, runner.result, calibration)
        print(table(report))
        print(f"report: {out}/report.json, frames.csv, sessions.csv, report.png", file=sys.stderr)
    return INTERRUPTED if runner.result.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
