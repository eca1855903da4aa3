"""The invitation schedule, the fair share and the steering of grants, as pure functions
and a lane simulated one window at a time."""

from __future__ import annotations

import math

import pytest

from webapp.engine.grant import (
    FACTOR_MAX,
    FACTOR_MIN,
    GAIN,
    GRANT_WINDOW,
    MAX_STEP_UP,
    STEP_DOWN,
    TARGET_BUSY,
    GrantSteer,
    LaneMeter,
    fair_share,
)
from webapp.engine.pacing import granted_fps, next_due


@pytest.mark.parametrize(
    ("due", "arrived", "expected"),
    [
        (0.0, 10.0, 10.2),  # first frame: one interval on
        (10.2, 10.2, 10.4),  # on time
        (10.2, 10.25, 10.4),  # served late: the schedule holds, the next comes sooner
        (10.2, 11.0, 11.0),  # after a stall: one frame at once, then the interval again
        (12.0, 10.3, 10.5),  # a session sending on its own never runs ahead of itself
    ],
)
def test_next_due_keeps_a_fixed_schedule(due: float, arrived: float, expected: float) -> None:
    assert next_due(due, arrived, 0.2) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("demands", "capacity", "expected"),
    [
        ([], 1000.0, math.inf),
        ([(45.0, 15.0)], 1000.0, math.inf),  # one session at 15 fps fits
        ([(45.0, 30.0)] * 4, 1000.0, 1000.0 / 180.0),  # all want more: an equal share
        # The one asking 2 fps gets them; the rest share what is left equally.
        ([(45.0, 2.0), (45.0, 30.0), (45.0, 30.0)], 1000.0, 910.0 / 90.0),
        ([(15.0, 30.0), (45.0, 30.0)], 1000.0, 1000.0 / 60.0),  # cost counts, not heads
        ([(45.0, 30.0)] * 2, 1100.0, 1100.0 / 90.0),  # a steered-up second
    ],
)
def test_fair_share_is_max_min_fair(
    demands: list[tuple[float, float]], capacity: float, expected: float
) -> None:
    assert fair_share(demands, capacity) == pytest.approx(expected)


def test_granted_fps_is_the_share_bounded_by_the_ask_and_the_server() -> None:
    assert granted_fps(1000.0 / 180.0, 30.0, 30.0) == 5.6
    assert granted_fps(math.inf, 15.0, 30.0) == 15.0
    assert granted_fps(math.inf, 60.0, 30.0) == 30.0
    assert granted_fps(0.1, 15.0, 30.0) == 0.5


FRAME_MS = 45.0


class Window:
    """A lane's clock and its worker's busy seconds, one steering window at a time."""

    def __init__(self) -> None:
        self.steer = GrantSteer()
        self.now, self.busy = 100.0, 0.0
        self.steer.step(self.now, self.busy, False, FRAME_MS)

    def next(
        self, busy: float, wanting: bool = True, waited_frames: float = 0.0, overruns: int = 0
    ) -> float:
        """The factor after a window with the worker `busy` of the time, frames that
        waited `waited_frames` frames' work on average, and `overruns` paced frames replaced."""
        for _ in range(10):
            self.steer.meter.took(waited_frames * FRAME_MS / 1000.0)
        for _ in range(overruns):
            self.steer.meter.replaced(gap=1.0, granted_fps=5.0)
        self.now += GRANT_WINDOW
        self.busy += GRANT_WINDOW * busy
        return self.steer.step(self.now, self.busy, wanting, FRAME_MS)


def test_the_grant_rises_while_the_worker_idles_with_sessions_wanting_more() -> None:
    lane = Window()
    assert lane.next(busy=0.90) == pytest.approx(1.0 + GAIN * (TARGET_BUSY - 0.90))
    assert lane.steer.busy_ratio == pytest.approx(0.90)
    assert lane.next(busy=0.20) == pytest.approx(1.035 * (1.0 + MAX_STEP_UP))  # one step at most
    for _ in range(20):
        lane.next(busy=0.0)
    assert lane.steer.factor == FACTOR_MAX


def test_the_grant_holds_when_the_worker_is_busy_or_nobody_wants_more() -> None:
    lane = Window()
    assert lane.next(busy=0.99) == 1.0
    assert lane.next(busy=0.10, wanting=False) == 1.0
    assert lane.next(busy=0.95, waited_frames=0.8) == pytest.approx(1.01)  # queued a little


def test_the_grant_falls_when_paced_frames_are_replaced_or_frames_queue() -> None:
    lane = Window()
    assert lane.next(busy=0.5, overruns=1) == pytest.approx(STEP_DOWN)  # idle or not
    assert lane.next(busy=1.0, waited_frames=1.5) == pytest.approx(STEP_DOWN**2)
    for _ in range(20):
        lane.next(busy=1.0, overruns=3)
    assert lane.steer.factor == FACTOR_MIN


def test_frames_that_wait_while_the_worker_idles_raise_the_grant() -> None:
    """Clients on their own clocks sending at the same moments: each frame waits for the
    other's, then the worker idles until their next tick. Not too high a grant: too low."""
    lane = Window()
    risen = 1.0 + min(MAX_STEP_UP, GAIN * (TARGET_BUSY - 0.85))
    assert lane.next(busy=0.85, waited_frames=1.5) == pytest.approx(risen)
    # The same waits with the worker full: the lane was promised more than it runs.
    assert lane.next(busy=1.0, waited_frames=1.5) == pytest.approx(risen * STEP_DOWN)


def test_a_firehose_frame_replaced_is_no_overrun() -> None:
    meter = LaneMeter()
    meter.replaced(gap=0.01, granted_fps=5.0)  # sent 20x faster than granted
    meter.replaced(gap=0.5, granted_fps=0.0)  # before it was told any rate
    assert meter.overruns == 0
    meter.replaced(gap=0.19, granted_fps=5.0)  # 0.9 of its interval: it kept to its grant
    assert meter.overruns == 1


def test_the_grant_settles_where_the_worker_is_busy_but_not_overrun() -> None:
    """A lane whose frames cost 10% less than estimated, with clients pacing to the grant:
    the worker is busy 0.9 x factor of the time, and frames are replaced past 1.0."""
    lane = Window()
    for _ in range(40):
        offered = 0.9 * lane.steer.factor
        lane.next(busy=min(1.0, offered), overruns=int(offered > 1.0))
    assert TARGET_BUSY - 0.01 <= 0.9 * lane.steer.factor <= 1.0
