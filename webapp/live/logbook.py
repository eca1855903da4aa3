"""A session's two log lines, start and end, as words for people and fields for shippers."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from webapp.live.counters import Counters
from webapp.live.errors import SessionClosed

log = logging.getLogger("webapp.live.session")


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
) -> None:
    """`peer` too: a session refused at its hello (a wrong key, a quota, a client over its
    limit) has no start line, and its end line was all the log said of who was refused."""
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


def refused(status: int, reason: str, peer: str) -> None:
    """A session refused with an HTTP status before its upgrade (--refuse-when-full): its
    one line, named `-`, as a session refused after its upgrade has its end line."""
    _line("-", "end", {"code": status, "reason": reason, "seconds": 0.0, "peer": peer})
