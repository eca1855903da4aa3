"""One session's workout: the current exercise's counters, its sets, and their summary.

Workout.update() takes one frame's pose landmarks (as a result message carries them) and
returns the result's "fitness" object. It sees only pose landmarks, so the holistic and
pose-only tracks count the same.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any

from webapp.analysis.fitness import angles
from webapp.analysis.fitness.counter import PAUSE_MS, Event, Rep, RepCounter
from webapp.analysis.fitness.cues import CueTracker
from webapp.analysis.fitness.exercises import Cue, Exercise, Measure, Phase, Sides
from webapp.analysis.fitness.loader import lookup

Pose = Sequence[Sequence[float]]
# A workout lists its last sets only: a client naming an exercise before every frame grew it,
# and each summary with it (one a frame, to its watchers), for as long as it cared to.
MAX_SETS = 100
# A set's rep target: what a person sets for one set, from the fitness page's box.
MAX_TARGET = 999


@dataclass
class _Track:
    """The combined sides (side None) or one side of an exercise counted per side."""

    side: str | None
    counter: RepCounter
    cues: CueTracker


@dataclass
class _Set:
    exercise: Exercise
    started_ms: float | None = None
    last_ms: float | None = None
    # The time it ran: a spell with no frame for longer than PAUSE_MS (the page paused or
    # hidden, the network gone) is time away, as it is to the counter, and is left out.
    # Counted in, a set paused for a minute read a minute longer than the pages' timer.
    active_ms: float = 0.0
    tracks: list[_Track] = field(default_factory=list)
    partial_reps: int = 0
    target: int | None = None  # reps the person means to do in it, if they said
    # Its summary, once a later set began: it changes no more, and a workout of 100 sets
    # was summed up again (sorting every rep) for each summary a client asked for.
    done: dict[str, Any] | None = None

    def attempted(self) -> bool:
        return self.partial_reps > 0 or any(t.counter.count for t in self.tracks)

    def reps(self) -> list[Rep]:
        return sorted((r for t in self.tracks for r in t.counter.reps), key=lambda r: r.end_ms)

    def sides(self) -> dict[str, int] | None:
        if self.exercise.sides is not Sides.EACH:
            return None
        return {str(t.side): t.counter.count for t in self.tracks}


class Workout:
    """Per session. switch() starts a new set; summary() is the whole workout so far."""

    def __init__(self, exercises: Mapping[str, Exercise], name: str) -> None:
        self._exercises = exercises
        self._sets: list[_Set] = []
        self._switches = 0
        self._earlier_reps = 0  # in sets no longer listed
        # How many sets are no longer listed: a log that keeps every set (the fitness page's)
        # places the listed ones by it, where the list's first was taken for the workout's.
        self._earlier_sets = 0
        self._began: float | None = None  # the workout's first frame
        self._last_rep: tuple[Rep, str | None] | None = None
        self._clock = -math.inf
        # Added to a session's capture times; None until its first frame has set it.
        self._shift: float | None = 0.0
        self.switch(name)

    @property
    def exercise(self) -> Exercise:
        return self._sets[-1].exercise

    @property
    def reps(self) -> int:
        """Reps in the current set (for stats messages)."""
        return sum(t.counter.count for t in self._sets[-1].tracks)

    @property
    def target(self) -> int | None:
        """The current set's rep target (None: none), for the coach's view and the log."""
        return self._sets[-1].target

    @target.setter
    def target(self, reps: int | None) -> None:
        self._sets[-1].target = reps

    @property
    def progress(self) -> tuple[int, int, int | None]:
        """(sets begun, reps in the current set, its target): it changes when the summary's
        figures that matter to someone following along do."""
        return self._switches, self.reps, self.target

    def switch(self, name: str) -> None:
        """Starts a new set of `name` (reps back to 0, no target); UnknownExercise if there
        is none."""
        ex = lookup(self._exercises, name)
        sides: tuple[str | None, ...] = angles.SIDES if ex.sides is Sides.EACH else (None,)
        tracks = [_Track(s, RepCounter(ex), CueTracker(ex)) for s in sides]
        if self._sets and self._sets[-1].started_ms is None:
            # Never begun, so never listed: kept, a flood of exercise messages piled them up.
            self._sets.pop()
        elif self._sets and not self._sets[-1].attempted():
            # No rep, not even a partial one: "New set" pressed twice, or before the first
            # rep, logged empty sets between the real ones. Its time stays in the workout's.
            self._sets.pop()
        elif self._sets:
            self._sets[-1].done = _set_json(self._sets[-1])
        if len(self._sets) == MAX_SETS:
            self._earlier_reps += len(self._sets.pop(0).reps())
            self._earlier_sets += 1
        self._sets.append(_Set(ex, tracks=tracks))
        self._switches += 1
        self._last_rep = None

    def go_on(self, name: str) -> None:
        """The workout carries on in a new session (the camera reconnected): the same
        exercise goes on in its set, another starts a new one. What happened in between is
        unknown, so counting starts again from the ready position."""
        if lookup(self._exercises, name) is not self.exercise:
            self.switch(name)
        current = self._sets[-1]
        for track in current.tracks:
            track.counter.lose_sight()
            track.cues = CueTracker(current.exercise)
        # A client that starts its clock again with each connection would otherwise stop
        # time here until its clock caught up.
        self._shift = None

    def update(
        self, pose: Pose | None, image_size: tuple[int, int], capture_ms: float
    ) -> dict[str, Any]:
        """One frame (pose None: nobody found) -> the result's "fitness" object."""
        current = self._sets[-1]
        ex = current.exercise
        if self._shift is None or capture_ms + self._shift < self._clock:
            # A client's clock may step back; time here never does. Re-based, it goes on
            # with the client's clock from where it was: held instead, it stood still (and
            # nothing counted) until the client's clock caught up.
            self._shift = max(0.0, self._clock - capture_ms)
        # max: the re-based sum may round a hair below the last time.
        capture_ms = max(capture_ms + self._shift, self._clock)
        self._clock = capture_ms
        if current.started_ms is None:
            current.started_ms = capture_ms
        if self._began is None:
            self._began = capture_ms
        if current.last_ms is not None and capture_ms - current.last_ms <= PAUSE_MS:
            current.active_ms += capture_ms - current.last_ms
        current.last_ms = capture_ms
        per_side, shared, seen_sides = _measure(ex, pose, image_size)
        cues: dict[Cue, set[str | None]] = {}  # each cue showing -> the tracks showing it
        for track in current.tracks:
            values = _track_values(ex, track.side, per_side, shared, seen_sides)
            angle = values.get(ex.angle.name)
            ready = all(c.holds(values.get(c.measure, math.nan)) for c in ex.ready)
            shown = track.cues.update(capture_ms, track.counter.phase, values)
            event = track.counter.update(capture_ms, angle, ready, faulty=bool(shown))
            if event is Event.REP:
                self._last_rep = (track.counter.reps[-1], track.side)
            elif event is Event.PARTIAL:
                current.partial_reps += 1
                track.cues.flag(ex.partial_cue, capture_ms)
            elif event is Event.SWING:
                track.cues.flag(ex.swing_cue, capture_ms)
            elif event is Event.LOCKOUT:
                track.cues.flag(ex.lockout_cue, capture_ms)
            for cue in shown + track.cues.shown(capture_ms):
                cues.setdefault(cue, set()).add(track.side)
        return {
            "exercise": ex.name,
            "reps": self.reps,
            "target": current.target,
            "phase": _phase(ex, [t.counter.phase for t in current.tracks]).value,
            "angles": _joint_angles(ex, per_side, shared),
            "cues": [_cue_json(c, sides) for c, sides in cues.items()],
            "last_rep": None if self._last_rep is None else _rep_json(*self._last_rep),
            "sides": current.sides(),
        }

    def summary(self) -> dict[str, Any]:
        """The workout: its last MAX_SETS sets' reps, time and averages, the number of the
        first of them in the workout, and the totals of all. The set being counted is
        listed before its first frame too, so the answer to a switch of exercise shows the
        new set (a set left before any frame is not kept)."""
        sets = [s.done or _set_json(s) for s in self._sets]
        # Time never goes back, so the last frame's is the latest of all.
        began = self._began
        return {
            "sets": sets,
            "first_set": self._earlier_sets + 1,
            "total_reps": self._earlier_reps + sum(s["reps"] for s in sets),
            "duration_ms": 0.0 if began is None else round(self._clock - began, 1),
        }


def _measure(
    ex: Exercise, pose: Pose | None, image_size: tuple[int, int]
) -> tuple[dict[str, dict[str, float]], dict[str, float], list[str]]:
    """Every measure the exercise uses, per side and shared, where its points are seen;
    and the sides whose required landmarks are all seen."""
    per_side: dict[str, dict[str, float]] = {s: {} for s in angles.SIDES}
    shared: dict[str, float] = {}
    if pose is None or len(pose) != len(angles.LANDMARKS):
        return per_side, shared, []
    seen = angles.seen(pose, ex.min_visibility, ex.landmarks)
    points = angles.to_points(pose, image_size, ex.depth, seen)
    for m, side, idx in ex.used:
        if all(i in seen for i in idx) and _judged(m, seen, points):
            value = angles.measure(m.kind, [points[i] for i in idx])
            if math.isfinite(value):
                (shared if side is None else per_side[side])[m.name] = value
    if not all(i in seen for i in ex.required_indices(None)):
        return per_side, shared, []
    seen_sides = [s for s in angles.SIDES if all(i in seen for i in ex.required_indices(s))]
    return per_side, shared, seen_sides


def _judged(m: Measure, seen: Set[int], points: Mapping[int, angles.Point]) -> bool:
    """Whether the measure is judged on this frame: each of its `apart` rules holds, with
    the landmarks it reads seen. Unjudged, it has no value and no cue of it can show."""
    if not m.apart:
        return True
    if not all(i in seen for i in m.guard_indices):
        return False
    torso = angles.torso(points)
    return all(
        angles.gap(*(points[i] for i in rule.indices)) >= rule.torso * torso for rule in m.apart
    )


def _track_values(
    ex: Exercise,
    side: str | None,
    per_side: Mapping[str, Mapping[str, float]],
    shared: Mapping[str, float],
    seen_sides: Sequence[str],
) -> dict[str, float]:
    """The values one track judges by: its side's, or the mean of the sides seen."""
    if side is not None:
        sides = [side] if side in seen_sides else []
    elif ex.sides is Sides.BOTH:
        sides = list(seen_sides) if len(seen_sides) == len(angles.SIDES) else []
    else:
        sides = list(seen_sides)
    values = dict(shared)
    names = {n for s in sides for n in per_side[s]}
    for name in names:
        found = [per_side[s][name] for s in sides if name in per_side[s]]
        values[name] = sum(found) / len(found)
    if not sides:
        values.pop(ex.angle.name, None)
    return values


def _phase(ex: Exercise, phases: Sequence[Phase]) -> Phase:
    """One phase for the exercise: the furthest along of its tracks."""
    for wanted in (ex.turn_phase, ex.start_phase, Phase.READY):
        if wanted in phases:
            return wanted
    return Phase.OUT_OF_VIEW


def _joint_angles(
    ex: Exercise, per_side: Mapping[str, Mapping[str, float]], shared: Mapping[str, float]
) -> dict[str, float]:
    out = {}
    for m in ex.joints:
        if m.sided:
            for side in angles.SIDES:
                if m.name in per_side[side]:
                    out[f"{side}_{m.name}"] = round(per_side[side][m.name], 1)
        elif m.name in shared:
            out[m.name] = round(shared[m.name], 2)
    return out


def _cue_json(cue: Cue, sides: Set[str | None]) -> dict[str, Any]:
    """A cue and the one arm or leg it is about, for an exercise counted per side: the
    page lights that limb only. None: the measure is the sides' mean, or both show it."""
    side = next(iter(sides)) if len(sides) == 1 else None
    return {**cue.as_json(), "side": side}


def _rep_json(rep: Rep, side: str | None) -> dict[str, Any]:
    return {
        "range_of_motion": round(rep.range_of_motion, 1),
        "duration_ms": round(rep.duration_ms, 1),
        "quality": round(rep.quality, 2),
        "side": side,
    }


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def _set_json(s: _Set) -> dict[str, Any]:
    reps = s.reps()
    return {
        "exercise": s.exercise.name,
        "reps": len(reps),
        "target": s.target,
        "sides": s.sides(),
        "partial_reps": s.partial_reps,
        "duration_ms": round(s.active_ms, 1),
        "range_of_motion": _mean([r.range_of_motion for r in reps]),
        "rep_ms": _mean([r.duration_ms for r in reps]),
        "quality": _mean([r.quality for r in reps]),
    }
