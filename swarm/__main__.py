"""python -m swarm: how many sessions can this server hold at a given quality?"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from swarm.calibrate import Calibration, CalibrationError, calibrate
from swarm.config import SwarmConfig, load_config
from swarm.frames import FrameSet, SourceError, load_frames
from swarm.report import build_report, check_writable, table, write_files
from swarm.runner import Runner

INTERRUPTED = 130
# Calibration failed, or the report could not be written.
FAILED = 1
# Sessions ran but the server answered none: a verdict of 0 would measure nothing.
NO_ANSWER = 3


def processes(workers: int) -> str:
    """--calibrate-workers in words: 0 is one process per core."""
    if not workers:
        return "one process per core"
    return f"{workers} process" if workers == 1 else f"{workers} processes"


def _calibrate(config: SwarmConfig, frames: FrameSet) -> Calibration:
    print(
        f"calibrating: the model in-process, {processes(config.calibrate_workers)}, "
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
    out = Path(config.out)
    try:
        check_writable(out)
    except OSError as exc:
        print(f"swarm: --out {out} cannot take the report: {exc}", file=sys.stderr)
        return 2
    try:
        frames = load_frames(config.source, config.width, config.quality, config.max_frames)
    except SourceError as exc:
        print(f"swarm: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Cutting a long source takes seconds; a report needs its frames, and no step ran.
        print("swarm: interrupted while cutting frames; nothing ran, no report", file=sys.stderr)
        return INTERRUPTED
    print(
        f"swarm: {len(frames)} frames {frames.width}x{frames.height} "
        f"(~{frames.mean_bytes / 1024:.0f} KB) from {config.source}; steps "
        f"{','.join(map(str, config.steps))} at {config.fps:g} fps ({config.track}, "
        f"{config.mode}) against {config.url}",
        file=sys.stderr,
    )
    calibration = None
    status = 0
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
        status = FAILED
    finally:
        report = build_report(config, frames, runner.result, calibration)
        try:
            write_files(out, report, config, runner.result)
        except OSError as exc:
            # The figures are on screen below, so the run is not lost with its files.
            written = f"swarm: the report could not be written to {out}: {exc}"
            status = status or FAILED
        else:
            written = f"report: {out}/report.json, frames.csv, sessions.csv, report.png"
        print(table(report))
        print(written, file=sys.stderr)
    if runner.result.interrupted:
        return INTERRUPTED
    if report["no_answer"]:
        return status or NO_ANSWER
    return status


if __name__ == "__main__":
    sys.exit(main())
