"""A session's two log lines, start and end, as words for people and fields for shippers;
the end lines of connections refused before they began, a few a minute however many come."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from webapp.live.counters import Counters
from webapp.live.errors import SessionClosed

log = logging.getLogger("webapp.live.session")

# Names of connections that never began a session: refused (`-`), or a watcher whose token
# named no session.
NEVER_BEGAN = frozenset({"-", "watcher"})
# How long the end lines of one kind of refusal after its first are only counted.
REFUSED_EVERY_SECONDS = 10.0


def _line(name: str, event: str, fields: Mapping[str, Any]) -> None:
    words = " ".join(f"{k}={v!r}" if k == "reason" else f"{k}={v}" for k, v in fields.items())
    log.info("%s %s %s", name, event, words, extra={"session": name, "event": event, **fields})


def started(name: str, track: str, fps: float, peer: str) -> None:
    _line(name, "start", {"track": track, "fps": fps, "peer": peer})


def ended(
    name: str,
    close: SessionClosed,
    seconds: float,
    counters: Counters,
    workout: Mapping[str, Any] | None,
    peer: str,
    refusals: Refusals,
) -> None:
    """`peer` too: a session refused at its hello (a wrong key, a quota, a client over its
    limit) has no start line, and its end line was all the log said of who was refused."""
    if name in NEVER_BEGAN and not refusals.said(name, int(close.code), peer):
        return
    fields: dict[str, Any] = {
        "code": int(close.code),
        "reason": close.reason,
        "seconds": round(seconds, 1),
        "received": counters.received,
        "processed": counters.processed,
        "dropped": counters.dropped,
        "errors": counters.errors,
    }
    if workout is not None:
        sets = workout.get("sets", [])
        fields["sets"] = len(sets)
        fields["reps"] = "/".join(str(s.get("reps", 0)) for s in sets) or "0"
    fields["peer"] = peer
    _line(name, "end", fields)


def refused(status: int, reason: str, peer: str, refusals: Refusals) -> None:
    """A session refused with an HTTP status before its upgrade (--refuse-when-full): its
    one line, named `-`, as a session refused after its upgrade has its end line."""
    if refusals.said("-", status, peer):
        _line("-", "end", {"code": status, "reason": reason, "seconds": 0.0, "peer": peer})


class Refusals:
    """Which end lines of connections that never began are said. A client opening them as
    fast as it could wrote some 264 lines a second; now the first of each kind (its name,
    code and peer) is said in full, and those after it for `every` seconds are only
    counted, said in one `refused` line as that time is up. Another client's refusal is
    its own kind: whom the server refused stays in the log. The metrics count every one."""

    def __init__(self, every: float = REFUSED_EVERY_SECONDS) -> None:
        self.every = every
        # Per kind: when its line was said (loop time) and how many came since.
        self._held: dict[tuple[str, int, str], tuple[float, int]] = {}
        self._timers: dict[tuple[str, int, str], asyncio.TimerHandle] = {}

    def said(self, name: str, code: int, peer: str) -> bool:
        """Whether the end line of this refusal is to be said now, else it is counted."""
        kind = (name, code, peer)
        if kind in self._timers:
            since, count = self._held[kind]
            self._held[kind] = (since, count + 1)
            return False
        loop = asyncio.get_running_loop()
        self._held[kind] = (loop.time(), 0)
        self._timers[kind] = loop.call_later(self.every, self._over, kind)
        return True

    def _over(self, kind: tuple[str, int, str]) -> None:
        del self._timers[kind]
        since, count = self._held.pop(kind)
        if count:
            name, code, peer = kind
            seconds = round(asyncio.get_running_loop().time() - since, 1)
            fields = {"code": code, "count": count, "seconds": seconds, "peer": peer}
            _line(name, "refused", fields)

    def close(self) -> None:
        """On shutdown: the counts not said yet, said now."""
        for kind, timer in list(self._timers.items()):
            timer.cancel()
            self._over(kind)
