"""Each frame's rig: the one recorded, else solved from the recorded landmarks.

A recording from POST /api/video without `?rig=1` carries landmarks only; the rig solver
(webapp.analysis.rig) is stateless, so solving each line gives what a live session would
have sent, apart from pose_world (not recorded), whose depth is better: without it the
solver uses the image points, as it does for a pose the world model missed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webapp.analysis.rig import solve
from webapp.export.recording import Frame


def rig_of(frame: Frame) -> Mapping[str, Any] | None:
    """The frame's rig as JSON (the protocol's shape), or None without a pose."""
    if frame.rig is not None:
        return frame.rig
    if frame.landmarks.get("pose") is None:
        return None
    width, height = frame.size
    rig = solve(frame.landmarks, width, height)
    return None if rig is None else rig.to_json(digits=6)
