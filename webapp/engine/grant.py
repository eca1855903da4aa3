"""How fast each session of a lane is told to send, and whether one more fits.

A worker has a second of time each second. A lane shares it max-min fairly: every session
asking less than the fair rate gets what it asked, the rest the same rate, so that the
asked-for frames times their measured cost (ServiceTimes) fill the worker. The worker
never fills exactly: the estimate errs, the event loop and IPC take their share, and a
client that paces itself to the grant instead of following turns sends on its own clock.
So each lane steers a factor on that second from what it measured over the last window:
up while its worker idled with sessions wanting more, down when a frame was replaced
though its client kept to its grant (the lane was promised more than it could run) or
frames queued for longer than a frame's work on average while the worker was full.

Waits while the worker idles are not a sign of too high a grant. Clients on their own
clocks at the same rate (a swarm, or people who joined together) send at the same moments:
one frame waits a whole frame for the other, then the worker idles until their next tick.
Lowering the grant there only widens the gaps (in bench.live, 16 such clients on 2 workers
left them 82% busy, 0.78 of raw delivered; 95% and 0.93 with this rule). Raising it lets
each client send as soon as its answer is in (a client with one frame in flight cannot
send faster), and the frames then interleave with no gap between them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

# Seconds between steering steps: about the stats interval, since a client learns a new
# grant only from its next `stats`.
GRANT_WINDOW = 2.0
FACTOR_START = 1.0
FACTOR_MIN = 0.7
FACTOR_MAX = 1.5
# The worker's busy ratio the steering aims at; below it a lane is said to idle.
TARGET_BUSY = 0.97
GAIN = 0.5  # of the missing busy ratio, added to the factor in one step
MAX_STEP_UP = 0.08
STEP_DOWN = 0.95
# Frames waiting longer than this many frames' work on average: the lane is queueing.
# Clients pacing on their own clocks arrive at random phases, so waits grow long before the
# worker is full; at one frame, a simulated lane of 3 such clients still ran 0.97 busy,
# one of 23 stayed near the latency the old fixed 0.9 headroom gave (about 4 frames at p95).
WAIT_LIMIT_FRAMES = 1.0
# A replaced frame counts against the grant only when its successor came at least this
# share of the granted interval later: a client sending faster than granted (a firehose)
# loses frames of its own doing and must not lower everyone's grant.
PACED_SHARE = 0.9


def fair_share(demands: Iterable[tuple[float, float]], capacity_ms: float) -> float:
    """The max-min fair rate over `demands` (cost of a frame in ms, rate asked) when the
    worker has `capacity_ms` of time a second; infinite when every rate asked fits."""
    ordered = sorted(demands, key=lambda demand: demand[1])
    left = capacity_ms
    cost_left = sum(cost for cost, _ in ordered)
    for cost, wanted in ordered:
        if wanted * cost_left > left:
            return max(0.0, left) / cost_left
        left -= wanted * cost
        cost_left -= cost
    return math.inf


@dataclass
class LaneMeter:
    """What a lane's sessions saw since the last steering step."""

    taken: int = 0  # frames that went to the worker
    waited: float = 0.0  # seconds those frames waited in the ready line, summed
    overruns: int = 0  # frames replaced though their client kept to its grant

    def took(self, waited: float) -> None:
        self.taken += 1
        self.waited += waited

    def replaced(self, gap: float, granted_fps: float) -> None:
        """A waiting frame was replaced by one that came `gap` seconds after it."""
        if granted_fps > 0 and gap >= PACED_SHARE / granted_fps:
            self.overruns += 1


class GrantSteer:
    """One lane's factor on its worker's second, steered one window at a time."""

    def __init__(self) -> None:
        self.factor = FACTOR_START
        self.meter = LaneMeter()
        self.busy_ratio: float | None = None  # the last window's, the busy ratio steered on
        self._since: tuple[float, float] | None = None  # (time, busy seconds) at the last step

    def step(self, now: float, busy_seconds: float, wanting: bool, frame_ms: float) -> float:
        """One steering step at `now`, given the worker's busy seconds so far, whether some
        session here was granted less than it asked, and the cost of one of its frames."""
        meter, self.meter = self.meter, LaneMeter()
        since, self._since = self._since, (now, busy_seconds)
        if since is None or now <= since[0]:
            return self.factor
        busy = min(1.0, max(0.0, (busy_seconds - since[1]) / (now - since[0])))
        self.busy_ratio = busy
        queueing = (
            meter.taken > 0 and meter.waited / meter.taken > WAIT_LIMIT_FRAMES * frame_ms / 1000.0
        )
        if meter.overruns or (queueing and busy >= TARGET_BUSY):
            self.factor *= STEP_DOWN
        elif wanting and busy < TARGET_BUSY:
            self.factor *= 1.0 + min(MAX_STEP_UP, GAIN * (TARGET_BUSY - busy))
        self.factor = min(FACTOR_MAX, max(FACTOR_MIN, self.factor))
        return self.factor
