"""JSON out: live messages, video lines, POST /predict's answers and the HTTP errors.

orjson, not the standard encoder: a result carries 1,600 floats, which json.dumps took
1.2 ms to write, on the event loop, for every frame of every session; orjson takes a tenth
of that. NaN, which the standard encoder wrote as invalid JSON, becomes null.
"""

from __future__ import annotations

from typing import Any

import orjson


def as_bytes(value: Any) -> bytes:
    """`value` as UTF-8 JSON; numpy arrays and scalars are written as lists and numbers."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)


def as_text(value: Any) -> str:
    """as_bytes() for the APIs that take text: a WebSocket's text frames, the `dumps` of
    web.json_response."""
    return as_bytes(value).decode()
