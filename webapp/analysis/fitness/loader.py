"""exercises.toml, validated into frozen dataclasses. Every mistake in the file is an
ExerciseDataError naming the exercise and the key, raised at load time, never mid-session."""

from __future__ import annotations

import functools
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from webapp.analysis.fitness.angles import INDEX, SIDES
from webapp.analysis.fitness.exercises import (
    Apart,
    Condition,
    Cue,
    CueRule,
    Exercise,
    ExerciseDataError,
    Measure,
    Phase,
    Sides,
    UnknownExercise,
)

DATA = Path(__file__).with_name("exercises.toml")
_KINDS = {"angle": 3, "incline": 2, "ratio": 4}


def _fail(where: str, what: str) -> ExerciseDataError:
    return ExerciseDataError(f"exercises data, {where}: {what}")


def _number(table: Mapping[str, Any], key: str, where: str, default: Any = None) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(where, f"{key} must be a finite number, not {value!r}")
    return float(value)


def _text(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise _fail(where, f"{key} must be a non-empty string")
    return value


def _measure(name: str, table: Mapping[str, Any]) -> Measure:
    where = f"measures.{name}"
    if not isinstance(table, dict):
        raise _fail(where, f"a measure is a table of kind, points and sided, got {table!r}")
    if extra := set(table) - {"kind", "points", "sided", "apart"}:
        raise _fail(where, f"unknown keys {sorted(extra)}")
    kind = _text(table, "kind", where)
    if kind not in _KINDS:
        raise _fail(where, f"kind must be one of {sorted(_KINDS)}")
    points = table.get("points")
    if not isinstance(points, list) or len(points) != _KINDS[kind]:
        raise _fail(where, f"a {kind} takes {_KINDS[kind]} points")
    sided = table.get("sided")
    if not isinstance(sided, bool):
        raise _fail(where, "sided must be true or false")
    for p in points:
        full = [f"{s}_{p}" for s in SIDES] if sided else [p]
        if not all(isinstance(p, str) and f in INDEX for f in full):
            raise _fail(where, f"unknown landmark {p!r}")
    apart = table.get("apart", [])
    if not isinstance(apart, list):
        raise _fail(where, "apart is a list of {points, torso} tables")
    return Measure(
        name,
        kind,
        tuple(points),
        sided,
        tuple(_apart(a, f"{where}.apart[{i}]") for i, a in enumerate(apart)),
    )


def _apart(item: Any, where: str) -> Apart:
    if not isinstance(item, dict) or set(item) != {"points", "torso"}:
        raise _fail(where, f"an apart rule is a table of points and torso, got {item!r}")
    points = item["points"]
    if (
        not isinstance(points, list)
        or len(points) != 2
        or not all(isinstance(p, str) and p in INDEX for p in points)
    ):
        raise _fail(where, f"points must name two landmarks in full (left_ankle), got {points!r}")
    if points[0] == points[1]:
        raise _fail(where, f"points must be two different landmarks, got {points!r}")
    torso = _number(item, "torso", where)
    if not 0.0 < torso <= 1.0:
        raise _fail(
            where, f"torso is a share of the torso's length, over 0 and at most 1, not {torso}"
        )
    return Apart((points[0], points[1]), torso)


def _condition(item: Any, measures: Mapping[str, Measure], where: str) -> Condition:
    # A name is looked up only once it is a string: a list where one goes is unhashable,
    # and its TypeError named neither the exercise nor the key.
    if not isinstance(item, dict) or not _name_in(item.get("measure"), measures):
        raise _fail(where, f"a condition needs a known measure, got {item!r}")
    above = _number(item, "above", where) if "above" in item else None
    below = _number(item, "below", where) if "below" in item else None
    if above is None and below is None:
        raise _fail(where, "a condition needs above or below")
    if above is not None and below is not None and above >= below:
        raise _fail(where, f"above ({above}) must be under below ({below}): it could never hold")
    return Condition(item["measure"], above, below)


def _cue(item: Any, where: str) -> Cue:
    if not isinstance(item, dict):
        raise _fail(where, "a cue is a table with code and message")
    return Cue(_text(item, "code", where), _text(item, "message", where))


def _exercise(
    name: str,
    table: Mapping[str, Any],
    defaults: Mapping[str, Any],
    measures: Mapping[str, Measure],
) -> Exercise:
    where = f"exercises.{name}"
    if not isinstance(table, dict):
        raise _fail(where, f"an exercise is a table of its keys, got {table!r}")
    if extra := set(table) - _EXERCISE_KEYS:
        raise _fail(where, f"unknown keys {sorted(extra)}")
    merged = {**defaults, **table}
    angle_name = merged.get("angle")
    angle = measures.get(angle_name) if isinstance(angle_name, str) else None
    if angle is None or angle.kind != "angle" or not angle.sided:
        raise _fail(where, "angle must name a sided angle measure")
    joints = merged.get("joints", [])
    if not isinstance(joints, list) or not all(_name_in(j, measures) for j in joints):
        raise _fail(where, f"joints must name measures, got {joints!r}")
    try:
        sides = Sides(str(merged.get("sides")))
        start_phase = Phase(str(merged.get("start_phase")))
    except ValueError as exc:
        raise _fail(where, str(exc)) from None
    if start_phase not in (Phase.UP, Phase.DOWN):
        raise _fail(where, "start_phase must be up or down")
    start, turn, partial = (_number(merged, k, where) for k in ("start", "turn", "partial"))
    if not min(start, turn) < partial < max(start, turn):
        raise _fail(where, "partial must lie strictly between start and turn")
    required = merged.get("required")
    if not isinstance(required, list) or not required:
        raise _fail(where, "required must list landmarks")
    for p in required:
        if not isinstance(p, str) or not (p in INDEX or all(f"{s}_{p}" in INDEX for s in SIDES)):
            raise _fail(where, f"unknown landmark {p!r} in required")
    ready = merged.get("ready", [])
    rules = merged.get("cues", [])
    if not isinstance(ready, list) or not isinstance(rules, list):
        raise _fail(where, "ready and cues are lists")
    parsed_rules = []
    for i, item in enumerate(rules):
        at = f"{where}.cues[{i}]"
        if not isinstance(item, dict):
            raise _fail(at, f"a cue is a table of code, message, measure and phases, got {item!r}")
        phases = item.get("phases", [start_phase.value])
        if not isinstance(phases, list) or not all(p in ("up", "down") for p in phases):
            raise _fail(at, "phases must list up and/or down")
        parsed_rules.append(
            CueRule(
                _cue(item, at),
                _condition(item, measures, at),
                tuple(Phase(p) for p in phases),
                _number(item, "hold_ms", at, 0),
            )
        )
    codes = [r.cue.code for r in parsed_rules]
    if twice := sorted({c for c in codes if codes.count(c) > 1}):
        # The counter times each cue's hold by its code: two rules of one code (one for the
        # bottom, one for the top) reset each other's, and neither ever showed.
        raise _fail(where, f"cue codes {twice} are used by more than one rule: one code a rule")
    depth = _number(merged, "depth", where)
    if not 0.0 <= depth <= 1.0:
        raise _fail(where, "depth is a factor from 0 to 1")
    timing = {k: _number(merged, k, where) for k in _TIMES}
    if any(v < 0 for v in timing.values()) or timing["ready_ms"] > 500:
        raise _fail(where, "times are >= 0 ms; ready_ms is at most 500")
    min_visibility = _number(merged, "min_visibility", where)
    if not 0.0 <= min_visibility <= 1.0:
        raise _fail(where, "min_visibility is between 0 and 1")
    conditions = tuple(_condition(c, measures, f"{where}.ready") for c in ready)
    # A start position judged on landmarks the counter does not require could not hold
    # while they were out of view, and the pages said "hold the start position" to a
    # person holding it (a squat's shoulders above a camera too close, his knees in
    # view): required, they read as out of view, which says to step back.
    unread = {
        point
        for c in conditions
        for point in measures[c.measure].points
        if not _required(point, measures[c.measure].sided, required)
    }
    if unread:
        raise _fail(where, f"ready reads landmarks not in required: {sorted(unread)}")
    return Exercise(
        name=name,
        title=_text(merged, "title", where),
        camera=_text(merged, "camera", where) if "camera" in merged else _DEFAULT_CAMERA,
        joints=tuple(measures[j] for j in joints),
        angle=angle,
        sides=sides,
        start_phase=start_phase,
        start=start,
        turn=turn,
        partial=partial,
        required=tuple(required),
        ready=conditions,
        min_visibility=min_visibility,
        depth=depth,
        partial_cue=_cue(merged.get("partial_cue", _DEFAULT_PARTIAL), f"{where}.partial_cue"),
        swing_cue=_cue(merged.get("swing_cue", _DEFAULT_SWING), f"{where}.swing_cue"),
        lockout_cue=_cue(merged.get("lockout_cue", _DEFAULT_LOCKOUT), f"{where}.lockout_cue"),
        rules=tuple(parsed_rules),
        measures=MappingProxyType(dict(measures)),
        **timing,
    )


def _required(point: str, sided: bool, required: list[str]) -> bool:
    """Whether `required` names a measure's point: a sided one ("shoulder") on both sides,
    a full name ("left_knee") as itself or side-less."""
    if point in required:
        return True
    if sided:
        return all(f"{side}_{point}" in required for side in SIDES)
    side, _, name = point.partition("_")
    return side in SIDES and name in required


_TIMES = ("ready_ms", "grace_ms", "confirm_ms", "min_travel_ms", "cue_hold_ms")
# What an exercise's table, and [defaults] for all of them, may set.
_EXERCISE_KEYS = set(Exercise.__dataclass_fields__) - {"rules", "measures"} | {"cues"}
_DEFAULT_CAMERA = "Stand where the camera sees the whole movement."
_DEFAULT_PARTIAL = {"code": "half_rep", "message": "Use the full range of motion"}
_DEFAULT_SWING = {"code": "too_fast", "message": "Slow down and move under control"}
_DEFAULT_LOCKOUT = {
    "code": "incomplete_lockout",
    "message": "Go all the way back to the start position between reps",
}


def parse(data: Mapping[str, Any]) -> Mapping[str, Exercise]:
    """The exercises of a parsed exercises file, by name, in the file's order."""
    if data.get("version") != 1:
        raise _fail("top", "version must be 1")
    defaults, measures_t, exercises_t = (
        data.get(k, {}) for k in ("defaults", "measures", "exercises")
    )
    if not all(isinstance(t, dict) for t in (defaults, measures_t, exercises_t)):
        raise _fail("top", "defaults, measures and exercises are tables")
    # A misspelt default would leave every exercise on the built-in value, silently.
    if extra := set(defaults) - _EXERCISE_KEYS:
        raise _fail("defaults", f"unknown keys {sorted(extra)}")
    measures = {name: _measure(name, t) for name, t in measures_t.items()}
    _no_unknown_keys("defaults", defaults)
    for name, table in exercises_t.items():
        _no_unknown_keys(f"exercises.{name}", table)
    exercises = {name: _exercise(name, t, defaults, measures) for name, t in exercises_t.items()}
    if not exercises:
        raise _fail("top", "no exercises")
    return MappingProxyType(exercises)


_CONDITION_KEYS = frozenset({"measure", "above", "below"})
_RULE_KEYS = _CONDITION_KEYS | {"code", "message", "phases", "hold_ms"}


def _no_unknown_keys(where: str, table: Any) -> None:
    """In the ready conditions and the cue rules of an exercise (or of the defaults). A
    misspelt hold_ms showed its cue at once, a misspelt phases in the start phase only, and
    a ready condition's own hold_ms (ready_ms is the exercise's) was never read: silently."""
    if not isinstance(table, dict):
        return  # what is wrong with it is said where it is read
    for key, allowed in (("ready", _CONDITION_KEYS), ("cues", _RULE_KEYS)):
        items = table.get(key)
        for i, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict) and (extra := set(item) - allowed):
                raise _fail(f"{where}.{key}[{i}]", f"unknown keys {sorted(extra)}")


@functools.cache
def load_exercises(path: Path = DATA) -> Mapping[str, Exercise]:
    """The exercises in `path` (default: the packaged exercises.toml), read once."""
    with path.open("rb") as f:
        try:
            data = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise _fail(path.name, str(exc)) from None
    return parse(data)


def _name_in(name: object, table: Mapping[str, Any]) -> bool:
    return isinstance(name, str) and name in table


def lookup(exercises: Mapping[str, Exercise], name: str) -> Exercise:
    try:
        return exercises[name]
    except KeyError:
        raise UnknownExercise(name, tuple(sorted(exercises))) from None
