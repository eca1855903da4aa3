"""How many WebSocket messages of any kind a live connection may send a second.

Text has its own, tighter limits (text_limits). Frames and pings cost the event loop too,
each with an answer: a frame without an image its error, a ping its pong. Before
2026-12-07 one client sending either as fast as loopback took them (about 60,000 a
second) held the loop so long that another session's 14 fps fell to 1.5 (empty frames)
or 5 (pings) for as long as it went on; a proxy's rate limits see only the upgrade.
"""

from __future__ import annotations

import time

from webapp.engine.allowance import Allowance
from webapp.live.errors import SessionClosed
from webapp.protocol import Close

# A camera sends at most a few tens of frames a second, and a client keeping one frame in
# flight no more than its worker answers; a heartbeat pings every few seconds. This is
# many times that, and costs the loop under 1% of its time.
MESSAGE_RATE = 500.0  # a second, sustained
MESSAGE_BURST = 1000.0  # back to back: what a stalled network hands over at once


class Meter:
    """Messages of one kind a connection may send: `rate` a second, `burst` back to back;
    past that, SessionClosed 1008 with `words`. Text has one of its own (text_limits)."""

    def __init__(self, rate: float, burst: float, words: str) -> None:
        self._allowance = Allowance(1.0 / rate, frames=burst, most=burst)
        self._words = words

    def check(self, now: float) -> None:
        if self._allowance.wait(now) > 0.0:
            raise SessionClosed(Close.POLICY, self._words)
        self._allowance.spend(now)


class MessageLimits:
    """One connection's: check() each message (frame, text, ping or pong) as it arrives."""

    def __init__(self) -> None:
        self._meter = Meter(
            MESSAGE_RATE,
            MESSAGE_BURST,
            f"more than {MESSAGE_RATE:g} WebSocket messages a second "
            f"({MESSAGE_BURST:g} at once), pings and frames included",
        )

    def check(self) -> None:
        self._meter.check(time.monotonic())
