"""Reading the server's messages as the swarm needs them: cheaply, at hundreds of sessions."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from webapp.protocol import ServerType

# A result carries ~17 KB of landmarks the swarm never looks at. Reading type and seq from
# the head spares a full JSON parse per result, which would make the swarm the bottleneck
# at hundreds of sessions; anything not shaped exactly like this falls back to json.loads.
_RESULT_HEAD = re.compile(r'\{\s*"type"\s*:\s*"result"\s*,\s*"seq"\s*:\s*(\d+)\s*[,}]')
# The server writes timing_ms last; read it from the tail, or go without.
_RESULT_TIMING = re.compile(r'"timing_ms"\s*:\s*(\{[^{}]*\})\s*\}\s*$')
TIMING_TAIL = 240


@dataclass(frozen=True)
class Message:
    type: str
    seq: int | None
    body: dict[str, Any]


def parse_message(text: str) -> Message:
    head = _RESULT_HEAD.match(text)
    if head is not None:
        timing = _RESULT_TIMING.search(text, max(0, len(text) - TIMING_TAIL))
        body = {"timing_ms": json.loads(timing.group(1))} if timing is not None else {}
        return Message(ServerType.RESULT, int(head.group(1)), body)
    body = json.loads(text)
    if not isinstance(body, dict):
        raise ValueError("a message that is not a JSON object")
    seq = body.get("seq")
    return Message(str(body.get("type")), seq if isinstance(seq, int) else None, body)


def number(value: object) -> float | None:
    """A JSON number as a float; anything else (booleans included) as None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
