"""Form cues from the exercise's rules: a rule's cue shows once its condition has held for
`hold_ms` of capture time in one of its phases. Half reps and swings show for `cue_hold_ms`
after they happen."""

from __future__ import annotations

import math
from collections.abc import Mapping

from webapp.analysis.fitness.exercises import Cue, Exercise, Phase


class CueTracker:
    def __init__(self, exercise: Exercise) -> None:
        self.ex = exercise
        self._since: dict[str, float] = {}  # rule code -> when its condition started holding
        self._events: dict[str, tuple[Cue, float]] = {}  # code -> (cue, shown until)

    def update(self, t: float, phase: Phase, values: Mapping[str, float]) -> list[Cue]:
        """The form rules' cues showing now; `values`: this side's measures, where seen."""
        active = []
        for rule in self.ex.rules:
            value = values.get(rule.condition.measure, math.nan)
            if phase in rule.phases and rule.condition.holds(value):
                since = self._since.setdefault(rule.cue.code, t)
                if t - since >= rule.hold_ms:
                    active.append(rule.cue)
            else:
                self._since.pop(rule.cue.code, None)
        return active

    def shown(self, t: float) -> list[Cue]:
        """The one-off cues still showing."""
        active = []
        for code, (cue, until) in list(self._events.items()):
            if t <= until:
                active.append(cue)
            else:
                del self._events[code]
        return active

    def flag(self, cue: Cue, t: float) -> None:
        """Shows a one-off cue (half rep, swing) for the exercise's cue_hold_ms."""
        self._events[cue.code] = (cue, t + self.ex.cue_hold_ms)
