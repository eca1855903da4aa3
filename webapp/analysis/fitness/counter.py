"""The rep counter: one state machine for every exercise, driven by one angle and capture times.

Nothing here counts frames: holds, debouncing and durations are all capture-time spans, so
the same reps count at 2 or 60 fps and with frames dropped. Crossing times are interpolated
between samples, so durations do not depend on the rate. A threshold crossing takes effect
once the angle has been past it for `confirm_ms`, measured from the last sample that was
not (at 15 fps one sample covers 66.7 ms, so one is enough; at 30 fps it takes two). One
sample, not a time from the crossing: a quick rep that grazes its turn on one frame at 10
to 15 fps counts, which a rule rejecting a one-frame glitch would lose (README, "Fitness and
coaching").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from webapp.analysis.fitness.exercises import Exercise, Phase

# Capture time with no frame at all (the session paused, the tab hidden, the network
# stalled) after which counting starts again from the ready position, as after losing
# sight: what happened meanwhile is unknown, and a rep across it would count the gap in its
# duration. Longer than the widest gap between frames the server grants (0.5 fps: 2 s).
PAUSE_MS = 2500.0


@dataclass(frozen=True)
class Rep:
    start_ms: float  # the angle left the start position
    end_ms: float  # and came back to it
    range_of_motion: float  # degrees between the extremes of the rep
    quality: float  # share of the rep's time without a form cue, 0 to 1

    @property
    def duration_ms(self) -> float:
        return self.end_ms - self.start_ms


class Event(enum.Enum):
    REP = "rep"
    PARTIAL = "partial"  # turned back before the turn threshold
    SWING = "swing"  # reached the turn faster than min_travel_ms; not counted
    LOCKOUT = "lockout"  # back past the turn after rising past partial, short of the start


class RepCounter:
    """One side (or the combined sides) of one exercise in one set."""

    def __init__(self, exercise: Exercise) -> None:
        self.ex = exercise
        self.reps: list[Rep] = []
        self.phase = Phase.OUT_OF_VIEW
        self._armed = False
        self._last_seen: float | None = None
        self._prev: tuple[float, float] | None = None  # (ms, angle) of the last seen sample
        self._ready_since: float | None = None
        self._unready_since: float | None = None
        self._pending_from: float | None = None  # last sample not past the next threshold
        self._pending_cross = 0.0
        # The excursion from the start position, while there is one.
        self._left_ms: float | None = None
        self._lo = self._hi = 0.0
        # The furthest into the start position since the last excursion: the rep's range
        # runs from there, not from the last sample before it left (which a higher frame
        # rate puts nearer the threshold: 102 degrees at 15 fps, 122 at 5, for one push-up).
        self._top: float | None = None
        self._reached_partial = False
        # On the way back from the turn, past `partial` toward the start: turning back
        # past the turn from there is a second rep the count cannot see (it waits for
        # `start`), so the person is told to go all the way back.
        self._returning = False
        self._swing = False
        self._faulty_ms = 0.0

    @property
    def count(self) -> int:
        return len(self.reps)

    def update(self, t: float, angle: float | None, ready: bool, faulty: bool) -> Event | None:
        """One frame: `angle` None when the side is not seen; `ready` when the exercise's
        ready conditions hold; `faulty` when a form cue shows (it lowers the rep's quality)."""
        if angle is None:
            if self._last_seen is None or t - self._last_seen > self.ex.grace_ms:
                self.lose_sight()
            return None
        if self._prev is not None and t - self._prev[0] > PAUSE_MS:
            self.lose_sight()
        prev, self._prev = self._prev, (t, angle)
        self._last_seen = t
        if faulty and prev is not None and self._left_ms is not None:
            self._faulty_ms += t - prev[0]
        if not self._armed:
            self._await_ready(t, angle, ready)
            return None
        if self.phase is self.ex.start_phase:
            return self._in_start(t, angle, ready, prev)
        return self._in_turn(t, angle, prev)

    def lose_sight(self) -> None:
        """Out of view: counting starts again from the ready position."""
        self.phase = Phase.OUT_OF_VIEW
        self._disarm()
        self._prev = None
        self._last_seen = None

    def _disarm(self) -> None:
        self._armed = False
        self._ready_since = self._unready_since = None
        self._pending_from = None
        self._left_ms = None
        self._top = None

    def _await_ready(self, t: float, angle: float, ready: bool) -> None:
        self.phase = Phase.READY
        if not (ready and self.ex.beyond_start(angle)):
            self._ready_since = None
            return
        if self._ready_since is None:
            self._ready_since = t
        if t - self._ready_since >= self.ex.ready_ms:
            self._armed = True
            self.phase = self.ex.start_phase
            self._hold_top(angle)

    def _confirmed(
        self, t: float, angle: float, past: bool, threshold: float, prev: tuple[float, float] | None
    ) -> bool:
        """Debounces a crossing of `threshold` by capture time; notes when it happened."""
        if not past:
            self._pending_from = None
            return False
        if self._pending_from is None:
            self._pending_from = t if prev is None else prev[0]
            self._pending_cross = _crossing(prev, (t, angle), threshold)
        return t - self._pending_from >= self.ex.confirm_ms

    def _in_start(
        self, t: float, angle: float, ready: bool, prev: tuple[float, float] | None
    ) -> Event | None:
        ex = self.ex
        if ex.beyond_start(angle):
            self._hold_top(angle)
            event = None
            if self._left_ms is not None and self._reached_partial:
                event = Event.PARTIAL
            self._left_ms = None
            self._pending_from = None
            # Left the exercise's position (stood up from push-ups): ready it again.
            if ready:
                self._unready_since = None
            elif self._unready_since is None:
                self._unready_since = t
            elif t - self._unready_since > ex.grace_ms:
                self._disarm()
                self.phase = Phase.READY
            return event
        # Out of the start position: a spell of not ready there is over, so one frame
        # unready at the top before a rep and one after it are not taken for one spell.
        self._unready_since = None
        if self._left_ms is None:
            self._left_ms = _crossing(prev, (t, angle), ex.start)
            start_angle = angle if prev is None else prev[1]
            self._lo = self._hi = start_angle
            if self._top is not None:
                self._lo, self._hi = min(self._lo, self._top), max(self._hi, self._top)
                self._top = None
            self._reached_partial = False
            self._swing = False
            self._faulty_ms = 0.0
        self._extend(angle)
        if self._confirmed(t, angle, ex.beyond_turn(angle), ex.turn, prev):
            self._swing = self._pending_cross - self._left_ms < ex.min_travel_ms
            self._pending_from = None
            self._returning = False
            self.phase = ex.turn_phase
        return None

    def _in_turn(self, t: float, angle: float, prev: tuple[float, float] | None) -> Event | None:
        ex = self.ex
        self._extend(angle)
        if not self._confirmed(t, angle, ex.beyond_start(angle), ex.start, prev):
            if not ex.beyond_partial(angle):
                self._returning = True
            elif self._returning and ex.beyond_turn(angle):
                self._returning = False
                return Event.LOCKOUT
            return None
        self.phase = ex.start_phase
        self._pending_from = None
        self._hold_top(angle)
        left, self._left_ms = self._left_ms, None
        if left is None or self._swing:
            return Event.SWING
        end = self._pending_cross
        duration = max(end - left, 1e-9)
        self.reps.append(
            Rep(
                start_ms=left,
                end_ms=end,
                range_of_motion=self._hi - self._lo,
                quality=max(0.0, 1.0 - self._faulty_ms / duration),
            )
        )
        return Event.REP

    def _hold_top(self, angle: float) -> None:
        """A sample in the start position: the furthest into it yet, for the next rep."""
        top = self._top
        if top is None or (angle < top if self.ex.rising else angle > top):
            self._top = angle

    def _extend(self, angle: float) -> None:
        self._lo = min(self._lo, angle)
        self._hi = max(self._hi, angle)
        if self.ex.beyond_partial(angle):
            self._reached_partial = True


def _crossing(
    prev: tuple[float, float] | None, now: tuple[float, float], threshold: float
) -> float:
    """When the angle passed `threshold` between two samples, by linear interpolation."""
    if prev is None or prev[1] == now[1]:
        return now[0]
    share = (threshold - prev[1]) / (now[1] - prev[1])
    return prev[0] + min(1.0, max(0.0, share)) * (now[0] - prev[0])
