"""Videos between the room check and their engine session (uploading, probing).

They hold no engine slot yet, so they are counted here with the sessions: a burst of
uploads gets 503 past the free slots instead of each passing the check, and at most that
many temporary files of --video-max-bytes are ever on disk.
"""

from __future__ import annotations

from webapp.engine.scheduler import Scheduler
from webapp.errors import CapacityError
from webapp.still.http_errors import RETRY_AFTER_SECONDS


class Arrival:
    def __init__(self, arrivals: Arrivals) -> None:
        self._arrivals = arrivals
        self._held = True

    def release(self) -> None:
        """Once the video has its session, or has failed; a second call does nothing."""
        if self._held:
            self._held = False
            self._arrivals.count -= 1


class Arrivals:
    def __init__(self) -> None:
        self.count = 0

    def admit(self, scheduler: Scheduler) -> Arrival:
        """A place for one more video; CapacityError (503) when there is none."""
        pool = scheduler.snapshot()
        if not pool.room or pool.sessions + self.count >= pool.max_sessions:
            raise CapacityError(
                f"server full: {pool.sessions} of {pool.max_sessions} sessions in use and "
                f"{self.count} videos arriving; try again in {RETRY_AFTER_SECONDS} s"
            )
        self.count += 1
        return Arrival(self)
