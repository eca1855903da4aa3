"""The rig's expressions filtered as values, apart from the landmarks they are read from."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from webapp.analysis.smoothing import OneEuroFilter, SmoothingSettings

# A blink closes the eye in a frame or two and is over in four or five; filtered with the
# landmarks (tuned to hold a still head within a pixel) it arrived late, half-shut and
# dragged on for a third of a second (bench/README.md, "Blinks"). Expressions are therefore
# read from the unsmoothed face and filtered as values (0..1, speeds in units per second)
# with a light filter of their own that passes a blink whole and takes a third off an open
# eye's flicker. A lower min_cutoff damped the flicker more (by half at 3 Hz), but then the
# blinks no longer followed an eye's quicker moves (r 0.87 against the signer's eye
# openings at 3 Hz, 0.90-0.91 at 8 Hz, 0.92-0.93 unfiltered).
EXPRESSION_SMOOTHING = SmoothingSettings(min_cutoff=8.0, beta=10.0, d_cutoff=4.0, min_speed=2.0)


class ValueSmoother:
    """One session's filter over named values in 0..1 (the rig's expressions): the names of
    the first call fix the order; a different set of names starts afresh."""

    def __init__(self, settings: SmoothingSettings = EXPRESSION_SMOOTHING) -> None:
        self._filter = OneEuroFilter(settings)
        self._names: tuple[str, ...] = ()

    def reset(self) -> None:
        self._filter.reset()

    def __call__(self, values: Mapping[str, float], capture_ms: float) -> dict[str, float]:
        names = tuple(values)
        if names != self._names:
            self._names = names
            self._filter.reset()
        x = np.fromiter((values[k] for k in names), dtype=np.float64, count=len(names))
        out: list[float] = self._filter(x[:, None], capture_ms)[:, 0].tolist()
        return {k: min(1.0, max(0.0, v)) for k, v in zip(names, out, strict=True)}
