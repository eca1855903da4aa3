"""The knee of a run: the step after which delivered fps stops growing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from swarm.stats import StepSummary

# The knee: a later step must deliver at least this much more to count as growth.
KNEE_GROWTH = 0.05


def knee_index(steps: Sequence[StepSummary]) -> int | None:
    """Where in `steps` the step after which delivered fps stops growing is.

    That is the first step that no later step out-delivers by KNEE_GROWTH (5%) or more:
    past it the workers are saturated (or the server refuses more sessions), and added
    sessions only share the same frames. None when every step but the last still grew,
    so the run never reached it; the last step cannot be one, nothing follows it to
    compare. Steps cut short are left out.
    """
    done = [i for i, s in enumerate(steps) if not s.interrupted]
    for at, index in enumerate(done[:-1]):
        later = max(steps[i].delivered_fps for i in done[at + 1 :])
        if later < steps[index].delivered_fps * (1 + KNEE_GROWTH):
            return index
    return None


def knee(steps: Sequence[StepSummary]) -> int | None:
    """The sessions of the knee's step (knee_index), or None."""
    index = knee_index(steps)
    return None if index is None else steps[index].sessions


def knee_line(report: dict[str, Any]) -> str:
    """The line under a report's table that says where the knee is, or that it was not seen."""
    bend = report.get("knee_sessions")
    growth = report.get("knee_growth", KNEE_GROWTH)
    done = [s for s in report["steps"] if not s["interrupted"]]
    if not done:
        return "knee: unknown, no step ran to its end"
    if not any(s["delivered_fps"] for s in done):
        # Nothing grew, nor stopped growing: ramping further would not find a knee.
        return "knee: unknown, no step delivered a result"
    if bend is None and len(done) == 1:
        return "knee: unknown, one step cannot show it: ramp over several"
    if bend is None:
        return (
            f"knee: not reached (a later step delivered {growth:.0%} more than each step "
            "before the last): ramp further to find it"
        )
    # By its mark, not its sessions: a run may repeat a count (--sessions 2,2).
    at = next(s for s in report["steps"] if s.get("knee"))
    return (
        f"knee: {bend} sessions, {at['delivered_fps']:.1f} fps delivered; no later step "
        f"delivered {growth:.0%} more"
    )
