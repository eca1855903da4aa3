"""python -m webapp.export RECORDING --to bvh|csv|vmc [-o OUT] [--target HOST:PORT[,...]]

Exit codes: 0 done, 1 the recording cannot be read or is not valid (the message names the
line), or the output cannot be written, 2 a bad command line (argparse's own), 3 VMC could
not be sent; 130 for Ctrl-C (SIGINT), 143 for SIGTERM, after a VMC replay's receivers are
sent the rest pose.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from webapp.export.files import export_file
from webapp.export.recording import RecordingError, decoded, parse_text
from webapp.export.replay import replay
from webapp.signals import Stopped, until_signal
from webapp.vmc.sender import parse_targets

FORMATS = ("bvh", "csv", "vmc")
DEFAULT_TARGET = "127.0.0.1:39539"  # VMC's usual port (VSeeFace, VNyan, EVMC4U)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m webapp.export",
        description="Export a Holotrack recording (JSON lines, from a page's Record button or "
        "POST /api/video) as BVH or CSV, or replay it as VMC in real time.",
    )
    parser.add_argument("recording", help="the .jsonl recording; - reads standard input")
    parser.add_argument("--to", required=True, choices=FORMATS, help="what to make of it")
    # No defaults here: given to the other kind of output, each was dropped without a word
    # (`--to vmc -o take.bvh` wrote nothing and said it sent frames).
    parser.add_argument("-o", "--output", help="file to write (bvh, csv); default: standard output")
    parser.add_argument(
        "--target",
        help=f"the VMC receivers, HOST:PORT[,HOST:PORT...] (vmc only; default {DEFAULT_TARGET})",
    )
    return parser


def _read(source: str) -> str:
    return decoded(sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes())


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        # Ctrl-C where no handler of ours runs: reading the recording, writing a file.
        print("stopped by SIGINT", file=sys.stderr)
        return 128 + signal.SIGINT


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.to == "vmc" and args.output is not None:
        parser.error("-o/--output is for bvh and csv: --to vmc sends to --target")
    if args.to != "vmc" and args.target is not None:
        parser.error(f"--target is for --to vmc: {args.to} goes to -o or standard output")
    args.output = "-" if args.output is None else args.output
    try:
        targets = parse_targets(DEFAULT_TARGET if args.target is None else args.target)
    except ValueError as exc:
        parser.error(f"--target: {exc}")
    if not targets:
        parser.error("--target: name at least one receiver, HOST:PORT")
    try:
        recording = parse_text(_read(args.recording))
    except (OSError, UnicodeDecodeError) as exc:
        print(f"cannot read {args.recording}: {exc}", file=sys.stderr)
        return 1
    except RecordingError as exc:
        print(f"{args.recording}: {exc}", file=sys.stderr)
        return 1
    if args.to == "vmc":
        shown = ", ".join(map(str, targets))
        try:
            sent = asyncio.run(until_signal(replay(recording, *targets)))
        except OSError as exc:
            print(f"cannot send VMC to {shown}: {exc}", file=sys.stderr)
            return 3
        except Stopped as stop:
            print(stop, file=sys.stderr)
            return stop.status
        print(f"sent {sent} frames to {shown}", file=sys.stderr)
        return 0
    try:
        data = export_file(recording, args.to)
    except RecordingError as exc:
        print(f"{args.recording}: {exc}", file=sys.stderr)
        return 1
    try:
        if args.output == "-":
            _write_stdout(data)
        else:
            Path(args.output).write_bytes(data)
    except OSError as exc:
        shown = "standard output" if args.output == "-" else args.output
        print(f"cannot write {shown}: {exc}", file=sys.stderr)
        return 1
    return 0


def _write_stdout(data: bytes) -> None:
    """`data` to standard output, flushed here: a full disk or a closed pipe is an OSError
    now, not one at the interpreter's exit, which would print its own traceback."""
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except OSError:
        # What is still buffered would fail again at exit; it has nowhere to go.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        raise


if __name__ == "__main__":
    sys.exit(main())
