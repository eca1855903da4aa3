"""How fast a session's frames may start: no faster than the rate its hello asked for.

Admission and the fair share count each session at the rate its hello asked for. One that
asked 0.5 fps and then sent as fast as it could would take a whole round-robin share and
leave the others under --min-session-fps. So while others share its worker, a session's
frames start no faster than it asked; the lane holds its newest frame meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

# Frames a session may start back to back before the rate it asked for holds it back: the
# one it is due and one more, for a client's jitter (a late frame, then the next on time).
ALLOWANCE_FRAMES = 2.0


@dataclass
class Allowance:
    """The frames a session may start now, refilled at the rate it asked for (a bucket of
    tokens: the live sessions' text messages are metered by one too)."""

    interval: float  # seconds between frames at the rate asked for
    frames: float = ALLOWANCE_FRAMES
    at: float | None = None  # when `frames` was last brought up to date
    most: float = ALLOWANCE_FRAMES  # what it fills up to

    def wait(self, now: float) -> float:
        """Seconds until one more frame may start."""
        self._refill(now)
        return max(0.0, (1.0 - self.frames) * self.interval)

    def spend(self, now: float) -> None:
        self._refill(now)
        # Never below empty: a lone session sending faster than it asked owes nothing
        # when a second one joins its worker.
        self.frames = max(0.0, self.frames - 1.0)

    def _refill(self, now: float) -> None:
        if self.at is not None:
            self.frames = min(self.most, self.frames + (now - self.at) / self.interval)
        self.at = now
