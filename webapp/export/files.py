"""A recording as the file a user keeps: BVH or CSV, in UTF-8."""

from __future__ import annotations

from webapp.export.bvh import to_bvh
from webapp.export.recording import Recording
from webapp.export.table import to_csv


def export_file(recording: Recording, fmt: str) -> bytes:
    """`fmt` "bvh", else CSV; RecordingError when the recording cannot be written so."""
    text = to_bvh(recording) if fmt == "bvh" else to_csv(recording)
    # A recording's own text (an exercise's name) may hold a lone surrogate, which no
    # UTF-8 file can: written as its escape, not a failure.
    return text.encode("utf-8", "backslashreplace")
