"""Quotas per key name: live sessions at once, requests per minute, video seconds per hour.

Windows slide: a request counts for exactly one minute after it was let through, a video
second for one hour after it was charged, so a key over its limit is told precisely when
it may ask again (Retry-After). Refused requests are not counted, so a client retrying
too early does not push its own window further out. The clock is injected, so tests move
time instead of waiting for it.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from webapp.access.errors import QuotaExceeded
from webapp.access.keyfile import Limits
from webapp.errors import TooLargeError

Clock = Callable[[], float]
MINUTE = 60.0
HOUR = 3600.0
# Video charges closer together than this share one entry, so a key's window holds at
# most HOUR / MERGE_SECONDS entries however finely a video is charged.
MERGE_SECONDS = 1.0


@dataclass
class VideoCharge:
    """One video's seconds, charged up front and settled when it ends (settle_video)."""

    seconds: float
    # Its [when, seconds] entry in the key's window, shared with charges merged into it.
    entry: list[float] | None = None


@dataclass
class _Usage:
    sessions: int = 0
    requests: collections.deque[float] = field(default_factory=collections.deque)
    # [when, seconds] pairs, oldest first.
    video: collections.deque[list[float]] = field(default_factory=collections.deque)


class Quotas:
    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._usage: dict[str, _Usage] = collections.defaultdict(_Usage)

    def sessions(self, name: str) -> int:
        return self._usage[name].sessions if name in self._usage else 0

    def open_session(self, name: str, limits: Limits, replacing: bool = False) -> None:
        """`replacing`: the session takes over one of the key's own, which ends as it
        starts: one over the limit for that moment."""
        usage = self._usage[name]
        limit = limits.max_sessions
        if limit == 0:
            raise QuotaExceeded(
                "max_sessions", f"key {name} may hold no sessions (its max_sessions is 0)", math.inf
            )
        if limit is not None and usage.sessions >= limit + replacing:
            raise QuotaExceeded(
                "max_sessions",
                f"key {name} already holds {usage.sessions} live "
                f"session{'' if usage.sessions == 1 else 's'} (watchers included); "
                f"its max_sessions is {limit}",
                retry_after=0.0,
            )
        usage.sessions += 1

    def close_session(self, name: str) -> None:
        usage = self._usage.get(name)
        if usage is not None and usage.sessions > 0:
            usage.sessions -= 1

    def charge_request(self, name: str, limits: Limits) -> None:
        """One /predict or /api/video request, answered from the cache or not."""
        now = self.clock()
        window = self._usage[name].requests
        while window and window[0] <= now - MINUTE:
            window.popleft()
        limit = limits.predict_per_minute
        if limit == 0:
            raise QuotaExceeded(
                "predict_per_minute",
                f"key {name} may make no requests here (its predict_per_minute is 0)",
                math.inf,
            )
        if limit is not None and len(window) >= limit:
            # Room opens when the entry that puts the window at the limit leaves it (a reload
            # may have lowered the limit below what the window already holds).
            frees = window[len(window) - limit] + MINUTE
            raise QuotaExceeded(
                "predict_per_minute",
                f"key {name} made {len(window)} requests in the last minute; "
                f"its predict_per_minute is {limit}",
                retry_after=frees - now,
            )
        window.append(now)

    def requests(self, name: str) -> int:
        """Requests charged to `name` in the last minute (predict_per_minute's window)."""
        usage = self._usage.get(name)
        if usage is None:
            return 0
        since = self.clock() - MINUTE
        return sum(1 for when in usage.requests if when > since)

    def video_seconds(self, name: str) -> float:
        """Video seconds charged to `name` in the last hour."""
        window = self._expire_video(name, self.clock())
        return sum(seconds for _, seconds in window)

    def video_seconds_left(self, name: str, limits: Limits) -> float | None:
        """What `name` may still charge in this hour; None: no limit."""
        limit = limits.video_seconds_per_hour
        return None if limit is None else max(0.0, limit - self.video_seconds(name))

    def charge_video_seconds(self, name: str, limits: Limits, seconds: float) -> VideoCharge:
        """All or nothing: either `seconds` fit in the key's hourly allowance and are
        charged, or nothing is and QuotaExceeded says when they would fit (TooLargeError:
        never)."""
        if not seconds > 0:
            return VideoCharge(0.0)
        now = self.clock()
        window = self._expire_video(name, now)
        used = sum(amount for _, amount in window)
        limit = limits.video_seconds_per_hour
        if limit is not None and seconds > limit:
            # No hour ever holds it: a 429's Retry-After would send the client back in an
            # hour to be refused again, for ever.
            raise TooLargeError(
                f"the video takes {seconds:g} s, and key {name} may post {limit:g} s of "
                "video an hour (video_seconds_per_hour): send a shorter cut of it"
            )
        if limit is not None and used + seconds > limit:
            raise QuotaExceeded(
                "video_seconds_per_hour",
                f"key {name} used {used:g} of its {limit:g} video seconds in the last hour; "
                f"{seconds:g} more do not fit",
                retry_after=_when_fits(window, used + seconds - limit, now) - now,
            )
        return VideoCharge(seconds, self._add_video(window, now, seconds))

    def settle_video(self, name: str, charge: VideoCharge, used: float) -> float:
        """Brings `charge` to the `used` seconds of its video. What it did not use is given
        back to the hour it was charged in (nothing once that charge has left the hour);
        what it used past it (a container that understated its length) is charged now,
        over the limit if need be, as it is spent already. Returns the change."""
        used = max(0.0, used)
        now = self.clock()
        window = self._expire_video(name, now)
        # To the millisecond, as videos are timed: a video that used just what it was
        # charged was refunded 4.4e-16 s, a float's noise, in the key's counter.
        change = round(used - charge.seconds, 3)
        entry = charge.entry
        if change < 0 and entry is not None and entry[0] > now - HOUR:
            given = min(-change, entry[1])
            entry[1] -= given
            change = -given
        elif change > 0:
            charge.entry = self._add_video(window, now, change)
        else:
            change = 0.0
        charge.seconds = used
        return change

    def _add_video(
        self, window: collections.deque[list[float]], now: float, seconds: float
    ) -> list[float]:
        if window and now - window[-1][0] < MERGE_SECONDS:
            window[-1][1] += seconds
        else:
            window.append([now, seconds])
        return window[-1]

    def _expire_video(self, name: str, now: float) -> collections.deque[list[float]]:
        window = self._usage[name].video
        while window and window[0][0] <= now - HOUR:
            window.popleft()
        return window


def _when_fits(window: collections.deque[list[float]], excess: float, now: float) -> float:
    """When enough of the oldest charges have left the hour to free `excess` seconds (no
    more than the window holds: a request larger than the whole allowance is refused
    before)."""
    freed = 0.0
    for when, amount in window:
        freed += amount
        if freed >= excess:
            return when + HOUR
    return now + HOUR
