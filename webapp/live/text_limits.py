"""How much text a live connection may send: each message small, and a few a second.

A session's text messages are controls (an exercise, a target, a summary, a calibration, an
emotion) and a watcher's are ignored: a person sends a few a minute, a slider's arrow key
held down about 30 a second. Each costs the event loop its parsing and its answer. Without
these limits, 20,000 summaries of a 100-set workout (380 kB, sent in 0.3 s) held the loop,
and every session and request with it, for 13 s, and one 1 MB message took 87 ms to parse.
"""

from __future__ import annotations

import time

from webapp.live.errors import SessionClosed
from webapp.live.message_limits import Meter
from webapp.protocol import Close

# A hello with every option and eight VMC receivers is under 2 KB.
MAX_TEXT_CHARS = 16_384
TEXT_RATE = 30.0  # a second, sustained
TEXT_BURST = 60.0  # back to back: a page's resend after a reconnect, a slider dragged


class TextLimits:
    """One connection's: check() each text message as it arrives."""

    def __init__(self) -> None:
        self._meter = Meter(
            TEXT_RATE,
            TEXT_BURST,
            f"more than {TEXT_RATE:g} text messages a second ({TEXT_BURST:g} at once)",
        )

    def check(self, text: str) -> None:
        if len(text) > MAX_TEXT_CHARS:
            raise SessionClosed(
                Close.TOO_BIG,
                f"a text message of {len(text)} characters; the limit is {MAX_TEXT_CHARS}",
            )
        self._meter.check(time.monotonic())
