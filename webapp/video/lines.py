"""The lines POST /api/video streams: one per processed frame, then a summary; a waiting
line now and then while a frame's answer is slow to come (before the first, in practice).

The frame line is also the line of a browser recording, so the export reads both alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webapp import json_text

CONTENT_TYPE = "application/x-ndjson"


def frame_line(
    index: int, time_ms: float, size: tuple[int, int], landmarks: Any, extra: Mapping[str, Any]
) -> bytes:
    """`size` is the frame's (width, height) as the worker saw it, which the export needs to
    measure angles and solve the rig at the video's aspect; `extra` holds "rig" and
    "fitness" when asked for, as in a live result."""
    width, height = size
    line = {
        "frame": index,
        "time_ms": round(time_ms, 3),
        "landmarks": landmarks,
        "image": {"width": width, "height": height},
        **extra,
    }
    return _encode(line)


def error_line(index: int, time_ms: float, code: str, detail: str) -> bytes:
    """A frame the worker failed on: it has no landmarks, and the stream goes on."""
    return _encode({"frame": index, "time_ms": round(time_ms, 3), "error": code, "detail": detail})


def waiting_line(waiting_for: str, waited_ms: float) -> bytes:
    """The stream is alive: a proxy that cuts answers silent for a minute keeps it. One key,
    as the summary has, so a client that reads frame lines by "frame" passes over it."""
    return _encode({"waiting": {"for": waiting_for, "waited_ms": round(waited_ms, 1)}})


def summary_line(summary: Mapping[str, Any]) -> bytes:
    return _encode({"summary": summary})


def _encode(line: Mapping[str, Any]) -> bytes:
    return json_text.as_bytes(line) + b"\n"
