"""One Euro filtering of landmarks (Casiez, Roussel and Vogel, CHI 2012), per session.

The filter is a low-pass whose cutoff rises with speed: still landmarks get a low cutoff
(less jitter), fast ones a high one (less lag). Here it runs on whole parts at once, an
(n, 3) array per part, timed by the frames' own capture_ms.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
PARTS = ("pose", "face", "left_hand", "right_hand")
# Defaults chosen by bench/avatar_quality.py on the shared videos (see bench/README.md):
# jitter on a still person at most half of the model's own, lag at most a frame at 30 fps.
DEFAULT_MIN_CUTOFF = 0.1
DEFAULT_BETA = 3.0
DEFAULT_D_CUTOFF = 4.0
# A longer pause between frames than this, or a clock going backwards, starts afresh.
MAX_GAP_MS = 500.0
LIMITS = {"min_cutoff": (0.01, 100.0), "beta": (0.0, 1000.0), "d_cutoff": (0.01, 100.0)}


@dataclass(frozen=True)
class SmoothingSettings:
    """min_cutoff (Hz): the cutoff when still, lower is smoother. beta (per image height per
    second): how fast the cutoff rises with speed, higher is less lag. d_cutoff (Hz): the
    cutoff of the speed estimate itself."""

    min_cutoff: float = DEFAULT_MIN_CUTOFF
    beta: float = DEFAULT_BETA
    d_cutoff: float = DEFAULT_D_CUTOFF

    def __post_init__(self) -> None:
        for name, (lo, hi) in LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"smoothing {name} must be a number")
            if not (math.isfinite(value) and lo <= value <= hi):
                raise ValueError(f"smoothing {name} must be between {lo} and {hi}")

    @classmethod
    def from_hello(cls, value: object) -> SmoothingSettings | None:
        """The hello's "smoothing" option: absent (None) means the default, "off" means no
        smoothing (None back), an object sets min_cutoff and beta (and d_cutoff)."""
        if value is None:
            return cls()
        if value == "off":
            return None
        if not isinstance(value, dict):
            raise ValueError('smoothing must be "off" or {"min_cutoff": Hz, "beta": number}')
        unknown = set(value) - set(LIMITS)
        if unknown:
            raise ValueError(f"unknown smoothing field {sorted(unknown)[0]!r}")
        return cls(**value)


def _alpha(dt_s: float, cutoff_hz: float) -> float:
    """The smoothing factor of an exponential filter with this cutoff, for this step."""
    return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * cutoff_hz * dt_s))


class OneEuroFilter:
    """One Euro filter over an (n, k) array of points, the first two columns in the same
    unit as beta's (the speed that raises the cutoff is that of the first two columns)."""

    def __init__(self, settings: SmoothingSettings) -> None:
        self.settings = settings
        self._x: FloatArray | None = None
        self._dx: FloatArray | None = None
        self._t_ms = 0.0

    def reset(self) -> None:
        self._x = self._dx = None

    def __call__(self, x: FloatArray, t_ms: float) -> FloatArray:
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
        dx = self._dx + _alpha(dt, s.d_cutoff) * ((x - prev) / dt - self._dx)
        speed = np.sqrt(dx[:, 0] ** 2 + dx[:, 1] ** 2)
        cutoff = s.min_cutoff + s.beta * speed
        alpha = (1.0 / (1.0 + 1.0 / (2.0 * math.pi * dt * cutoff)))[:, None]
        out: FloatArray = prev + alpha * (x - prev)
        self._x, self._dx = out, dx
        return out


class LandmarkSmoother:
    """One session's filters: one per part, in units of the image's height (so a beta does
    the same on any frame size); visibility passes through unfiltered. A part that is lost
    and found again restarts its filter: nothing is smoothed across the gap."""

    def __init__(self, settings: SmoothingSettings) -> None:
        self.settings = settings
        self._filters = {part: OneEuroFilter(settings) for part in PARTS}

    def reset(self) -> None:
        for f in self._filters.values():
            f.reset()

    def __call__(
        self,
        landmarks: Mapping[str, ArrayLike | None],
        capture_ms: float,
        width: int,
        height: int,
    ) -> dict[str, FloatArray | None]:
        """Smoothed copies of the parts (normalized coordinates, as they came in)."""
        to_units = np.array([width / height, 1.0, width / height])
        out: dict[str, FloatArray | None] = {}
        for part in PARTS:
            raw = landmarks.get(part)
            if raw is None:
                self._filters[part].reset()
                out[part] = None
                continue
            points = np.array(raw, dtype=np.float64)
            points[:, :3] = self._filters[part](points[:, :3] * to_units, capture_ms) / to_units
            out[part] = points
        return out
