"""What an exercise is: frozen dataclasses built from exercises.toml by loader.py."""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webapp.analysis.fitness.angles import INDEX, SIDES, TORSO
from webapp.errors import shown

# A WebSocket close frame holds 123 bytes of reason; the live edge keeps to 120
# (webapp/live/errors.MAX_REASON_BYTES).
_MAX_REASON = 120


class Phase(enum.StrEnum):
    UP = "up"
    DOWN = "down"
    READY = "ready"  # in view, the start position not held long enough yet
    OUT_OF_VIEW = "out_of_view"


class Sides(enum.StrEnum):
    ANY = "any"  # mean over the sides seen; one is enough
    BOTH = "both"  # both sides must be seen
    EACH = "each"  # each side counted on its own


class ExerciseDataError(ValueError):
    """exercises.toml is malformed."""


class UnknownExercise(KeyError):
    """A client named an exercise the server does not know (the edge closes with 4001)."""

    def __init__(self, name: object, known: tuple[str, ...]) -> None:
        super().__init__(name)
        self.name = name
        self.known = known

    @property
    def reason(self) -> str:
        """Fits a WebSocket close frame: the asked name (short, ASCII, quoted once) if there
        is room, and as many known names as fit, each whole."""
        tail = "; known: " + ", ".join(self.known)
        asked = shown(self.name)
        head = f"unknown exercise {asked}"
        if len((head + tail).encode()) > _MAX_REASON:
            head = "unknown exercise"
        while len((head + tail).encode()) > _MAX_REASON:
            tail = tail.rsplit(", ", 1)[0] if ", " in tail else ""
        return head + tail

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class Apart:
    """A measure is judged only while landmarks `points` are at least `torso` torso lengths
    apart in the image: below, the camera does not see them apart (side-on)."""

    points: tuple[str, str]
    torso: float

    @property
    def indices(self) -> tuple[int, int]:
        return INDEX[self.points[0]], INDEX[self.points[1]]


@dataclass(frozen=True)
class Measure:
    name: str
    kind: str  # "angle", "incline" or "ratio" (angles.measure)
    points: tuple[str, ...]
    sided: bool
    apart: tuple[Apart, ...] = ()  # unjudged (no value) unless each holds

    @property
    def guard_indices(self) -> tuple[int, ...]:
        """The landmarks its `apart` rules read: their pairs and the torso's ends."""
        if not self.apart:
            return ()
        return tuple(dict.fromkeys(i for a in self.apart for i in a.indices)) + TORSO

    def indices(self, side: str | None) -> tuple[int, ...]:
        if not self.sided:
            return tuple(INDEX[p] for p in self.points)
        if side is None:
            raise ValueError(f"{self.name} is sided")
        return tuple(INDEX[f"{side}_{p}"] for p in self.points)

    def lines(self, side: str | None = None) -> list[list[int]]:
        """The pose landmarks that show this measure on a person, as polylines: an angle's
        two limbs and an incline's segment on each side (or on `side` only), a ratio's two
        distances."""
        if self.kind == "ratio":
            a, b, c, d = self.indices(None)
            return [[a, b], [c, d]]
        if side is not None:
            return [list(self.indices(side))]
        return [list(self.indices(s)) for s in (SIDES if self.sided else (None,))]


@dataclass(frozen=True)
class Condition:
    measure: str
    above: float | None = None
    below: float | None = None

    def holds(self, value: float) -> bool:
        if math.isnan(value):
            return False
        return (self.above is None or value > self.above) and (
            self.below is None or value < self.below
        )


@dataclass(frozen=True)
class Cue:
    code: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class CueRule:
    """A form rule: `cue` shows while `condition` has held `hold_ms` in one of `phases`."""

    cue: Cue
    condition: Condition
    phases: tuple[Phase, ...]
    hold_ms: float


@dataclass(frozen=True)
class Exercise:
    name: str
    title: str
    camera: str  # where to put the camera, in a sentence for the page
    joints: tuple[Measure, ...]  # reported in "angles"
    angle: Measure  # drives the count
    sides: Sides
    start_phase: Phase
    start: float
    turn: float
    partial: float
    required: tuple[str, ...]  # landmark names; side-less ones ("elbow") on each side counted
    ready: tuple[Condition, ...]
    ready_ms: float
    min_visibility: float
    grace_ms: float
    confirm_ms: float
    min_travel_ms: float
    cue_hold_ms: float
    depth: float  # z's weight in angles: 0 = image plane (angles.to_points)
    partial_cue: Cue
    swing_cue: Cue
    lockout_cue: Cue
    rules: tuple[CueRule, ...]
    measures: Mapping[str, Measure]  # every measure the file defines, by name

    @property
    def turn_phase(self) -> Phase:
        return Phase.DOWN if self.start_phase is Phase.UP else Phase.UP

    @property
    def rising(self) -> bool:
        """True when the angle grows from the start to the turn (e.g. shoulder press)."""
        return self.turn > self.start

    def beyond_start(self, value: float) -> bool:
        return value < self.start if self.rising else value > self.start

    def beyond_turn(self, value: float) -> bool:
        return value > self.turn if self.rising else value < self.turn

    def beyond_partial(self, value: float) -> bool:
        return value > self.partial if self.rising else value < self.partial

    @functools.cached_property
    def used(self) -> tuple[tuple[Measure, str | None, tuple[int, ...]], ...]:
        """(measure, side, landmark indices) for each measure counting, ready, cues and the
        reported angles need."""
        names = {self.angle.name, *(m.name for m in self.joints)}
        names |= {c.measure for c in self.ready} | {r.condition.measure for r in self.rules}
        return tuple(
            (m, side, m.indices(side))
            for n, m in self.measures.items()
            if n in names
            for side in (SIDES if m.sided else (None,))
        )

    @functools.cached_property
    def landmarks(self) -> frozenset[int]:
        """Every landmark the exercise looks at."""
        found = {i for m, _, idx in self.used for i in (*idx, *m.guard_indices)}
        return frozenset(found.union(*(self.required_indices(s) for s in (None, *SIDES))))

    def required_indices(self, side: str | None) -> tuple[int, ...]:
        """side None: the required landmarks of no side (nose); else that side's."""
        return self._required[side]

    @functools.cached_property
    def _required(self) -> dict[str | None, tuple[int, ...]]:
        out: dict[str | None, tuple[int, ...]] = {
            None: tuple(INDEX[p] for p in self.required if p in INDEX)
        }
        for side in SIDES:
            out[side] = tuple(INDEX[f"{side}_{p}"] for p in self.required if p not in INDEX)
        return out

    def describe(self) -> dict[str, Any]:
        """The JSON of GET /api/exercises for this exercise."""

        def cond(c: Condition) -> dict[str, Any]:
            return {"measure": c.measure, "above": c.above, "below": c.below}

        return {
            "name": self.name,
            "title": self.title,
            "camera": self.camera,
            "joints": _joint_names(self.joints),
            "angle": self.angle.name,
            # The counting angle's pose landmarks per side (first, vertex, last), for a page
            # that marks it on the person.
            "angle_points": {side: list(self.angle.indices(side)) for side in SIDES},
            # What each form cue with a measure is about, as lines to light up while it shows.
            "cue_lines": {
                r.cue.code: self.measures[r.condition.measure].lines() for r in self.rules
            },
            # The same, one side's, for a cue that names its side (only an exercise counted
            # per side has those): a drifting left elbow lights the left arm alone.
            "cue_side_lines": {
                r.cue.code: {s: m.lines(s) for s in SIDES}
                for r in self.rules
                if (m := self.measures[r.condition.measure]).sided and self.sides is Sides.EACH
            },
            "sides": self.sides.value,
            "start_phase": self.start_phase.value,
            "thresholds": {"start": self.start, "turn": self.turn, "partial": self.partial},
            "required": list(self.required),
            "min_visibility": self.min_visibility,
            "ready": {"hold_ms": self.ready_ms, "conditions": [cond(c) for c in self.ready]},
            "cues": [
                {
                    **r.cue.as_json(),
                    **cond(r.condition),
                    "phases": [p.value for p in r.phases],
                }
                for r in self.rules
            ]
            + [self.partial_cue.as_json(), self.lockout_cue.as_json()]
            + ([self.swing_cue.as_json()] if self.min_travel_ms > 0 else []),
        }


def _joint_names(joints: tuple[Measure, ...]) -> list[str]:
    return [n for m in joints for n in ([f"{s}_{m.name}" for s in SIDES] if m.sided else [m.name])]
