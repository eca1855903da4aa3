"""The invitation schedule, as a pure function of due time, arrival and interval."""

from __future__ import annotations

import pytest

from webapp.engine.pacing import next_due


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
