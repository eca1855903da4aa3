"""One Euro filtering of landmarks (Casiez, Roussel and Vogel, CHI 2012), per session.

The filter is a low-pass whose cutoff rises with speed: still landmarks get a low cutoff
(less jitter), fast ones a high one (less lag). Here it runs on whole parts at once, an
(n, 3) array per part, timed by the frames' own capture_ms.

Two changes to the paper's filter, both measured by bench/avatar_quality.py:
- Speed is in the part's own sizes per second, not image units: the model's noise scales
  with the person's size in the image (it works on a crop around them), so a beta means
  the same for the body, the face and the hands, near the camera or far.
- Speeds under min_speed do not raise the cutoff. The filter's speed is the input's rate
  of change from the previous *output*, so on a still person the slow wander Holistic
  leaves in its own (already smoothed) pose, a pixel or two over seconds, reads as speed
  and opened the cutoff enough to pass most of that wander (the jitter stayed at 0.6 of
  the model's or more, for any setting lagging under a frame). A real move passes
  min_speed within a frame or two; an offset of about min_speed / frame rate (a pixel or
  two) before the filter follows is what it costs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
PARTS = ("pose", "face", "left_hand", "right_hand")
# Defaults chosen by bench/avatar_quality.py --tune on the shared videos (bench/README.md):
# jitter on a still person at most half of the model's own, lag at most a frame at 30 fps.
DEFAULT_MIN_CUTOFF = 0.02
DEFAULT_BETA = 3.0
DEFAULT_D_CUTOFF = 4.0
DEFAULT_MIN_SPEED = 0.1
# A longer pause between frames than this, or a clock going backwards, starts afresh.
MAX_GAP_MS = 500.0
# A part's size is floored (image heights) so a degenerate part cannot divide by zero.
MIN_PART_SIZE = 0.01
LIMITS = {
    "min_cutoff": (0.001, 100.0),
    "beta": (0.0, 1000.0),
    "d_cutoff": (0.01, 100.0),
    "min_speed": (0.0, 100.0),
}


@dataclass(frozen=True)
class SmoothingSettings:
    """min_cutoff (Hz): the cutoff when still, lower is smoother. beta (Hz per part size
    per second): how fast the cutoff rises with speed, higher is less lag. d_cutoff (Hz):
    the cutoff of the speed estimate itself. min_speed (part sizes per second): speeds
    under it leave the cutoff at min_cutoff; 0 is the paper's filter."""

    min_cutoff: float = DEFAULT_MIN_CUTOFF
    beta: float = DEFAULT_BETA
    d_cutoff: float = DEFAULT_D_CUTOFF
    min_speed: float = DEFAULT_MIN_SPEED

    def __post_init__(self) -> None:
        for name, (lo, hi) in LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"smoothing {name} must be a number")
            # The range alone: it rejects NaN and inf too, and compares an int too big for
            # a float exactly, where math.isfinite would raise OverflowError.
            if not lo <= value <= hi:
                raise ValueError(f"smoothing {name} must be between {lo} and {hi}")

    @classmethod
    def from_hello(cls, value: object) -> SmoothingSettings | None:
        """The hello's "smoothing" option: absent (None) means the default, "off" means no
        smoothing (None back), an object sets min_cutoff and beta (and d_cutoff,
        min_speed); what it leaves out keeps its default."""
        if value is None:
            return cls()
        if value == "off":
            return None
        if not isinstance(value, dict):
            raise ValueError('smoothing must be "off" or {"min_cutoff": Hz, "beta": number}')
        unknown = set(value) - set(LIMITS)
        if unknown:
            raise ValueError(f"unknown smoothing field {sorted(unknown)[0]!r}")
        # As in the hello itself: a typed client (Go, Java, C#) writes null for "not set",
        # and {"min_cutoff": 0.05, "beta": 10, "d_cutoff": null} was closed with 4001.
        return cls(**{name: given for name, given in value.items() if given is not None})


def _alpha(dt_s: float, cutoff_hz: float) -> float:
    """The smoothing factor of an exponential filter with this cutoff, for this step."""
    return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * cutoff_hz * dt_s))


class OneEuroFilter:
    """One Euro filter over an (n, k) array of points, or of values (k = 1). The speed that
    raises the cutoff is that of the first two columns (or the one) divided by scale: beta
    is per that unit per second; scale is one number or one per point."""

    def __init__(self, settings: SmoothingSettings) -> None:
        self.settings = settings
        self._x: FloatArray | None = None
        self._dx: FloatArray | None = None
        self._t_ms = 0.0

    def reset(self) -> None:
        self._x = self._dx = None

    def state(self) -> tuple[FloatArray, FloatArray] | None:
        """(the last output, its filtered speed), None before the first call."""
        return None if self._x is None or self._dx is None else (self._x, self._dx)

    def restate(self, x: FloatArray, dx: FloatArray) -> None:
        """Continues from this output and speed, at the clock of the last call."""
        self._x, self._dx = x, dx

    def __call__(self, x: FloatArray, t_ms: float, scale: float | FloatArray = 1.0) -> FloatArray:
        """The filtered points. The first call, a changed shape, a clock that does not
        move forward or a gap over MAX_GAP_MS pass x through and start afresh."""
        prev = self._x
        dt_ms = t_ms - self._t_ms
        self._t_ms = t_ms
        if prev is None or self._dx is None or prev.shape != x.shape or not 0 < dt_ms <= MAX_GAP_MS:
            self._x, self._dx = x.copy(), np.zeros_like(x)
            return x
        s = self.settings
        dt = dt_ms / 1000.0
        step = x - prev
        dx = self._dx + _alpha(dt, s.d_cutoff) * (step / dt - self._dx)
        planar = np.abs(dx[:, 0]) if dx.shape[1] == 1 else np.hypot(dx[:, 0], dx[:, 1])
        speed = planar / scale
        cutoff = s.min_cutoff + s.beta * np.maximum(speed - s.min_speed, 0.0)
        # _alpha() for every point at once: 1 / (1 + 1 / w) is w / (1 + w).
        w = (2.0 * math.pi * dt) * cutoff
        out: FloatArray = prev + (w / (1.0 + w))[:, None] * step
        self._x, self._dx = out, dx
        return out


def part_size(points: FloatArray) -> float:
    """A part's size: the mean of its bounding box's width and height (MediaPipe's "object
    scale"), in the points' unit. Speeds over it are the same for a near and a far person."""
    # Column by column: a reduction over axis 0 of an (n, 2) array is five times slower.
    x, y = points[:, 0], points[:, 1]
    span = float(x.max() - x.min() + y.max() - y.min())
    return max(span / 2.0, MIN_PART_SIZE)


# The parts stacked in a smoother's array, in order, with their numbers of points.
Layout = tuple[tuple[str, int], ...]


class LandmarkSmoother:
    """One session's filter over all its parts at once, on points in units of the image's
    height, the speed that opens the cutoff in each part's own sizes per second (so a beta
    does the same on any frame size and at any distance from the camera); visibility
    passes through unfiltered. A part that is lost and found again restarts: nothing is
    smoothed across the gap.

    The parts found are stacked into one array and filtered in one call: four calls of a
    dozen numpy operations each cost more than the arithmetic on 550 points."""

    def __init__(self, settings: SmoothingSettings) -> None:
        self.settings = settings
        self._filter = OneEuroFilter(settings)
        self._layout: Layout = ()  # the parts in the filter's state

    def reset(self) -> None:
        self._filter.reset()
        self._layout = ()

    def __call__(
        self,
        landmarks: Mapping[str, ArrayLike | None],
        capture_ms: float,
        width: int,
        height: int,
    ) -> dict[str, FloatArray | None]:
        """Smoothed copies of the parts (normalized coordinates, as they came in)."""
        found = {
            p: np.asarray(a, dtype=np.float64) for p in PARTS if (a := landmarks.get(p)) is not None
        }
        out: dict[str, FloatArray | None] = dict.fromkeys(PARTS)
        if not found:
            self.reset()
            return out
        to_units = np.array([width / height, 1.0, width / height])
        scaled = np.concatenate([a[:, :3] for a in found.values()]) * to_units
        layout = tuple((p, len(a)) for p, a in found.items())
        if layout != self._layout:
            self._regroup(layout, scaled)
        rows = _rows(layout)
        sizes = [part_size(scaled[r]) for r in rows.values()]
        scale = np.repeat(sizes, [n for _, n in layout])
        smooth = self._filter(scaled, capture_ms, scale) / to_units
        for part, points in found.items():
            if points.shape[1] == 3:
                out[part] = smooth[rows[part]]
            else:
                kept = points.copy()
                kept[:, :3] = smooth[rows[part]]
                out[part] = kept
        return out

    def _regroup(self, layout: Layout, scaled: FloatArray) -> None:
        """The filter's state for a new set of parts: a part found before, with as many
        points, keeps its state; a new one starts at its points, standing still."""
        state = self._filter.state()
        old = _rows(self._layout)
        self._layout = layout
        if state is None:
            return
        xs, dxs = [], []
        for part, rows in _rows(layout).items():
            before = old.get(part)
            if before is not None and before.stop - before.start == rows.stop - rows.start:
                xs.append(state[0][before])
                dxs.append(state[1][before])
            else:
                xs.append(scaled[rows])
                dxs.append(np.zeros_like(scaled[rows]))
        self._filter.restate(np.concatenate(xs), np.concatenate(dxs))


def _rows(layout: Layout) -> dict[str, slice]:
    """Each part's rows in the stacked array."""
    starts = itertools.accumulate((n for _, n in layout), initial=0)
    return {part: slice(at, at + n) for (part, n), at in zip(layout, starts, strict=False)}
