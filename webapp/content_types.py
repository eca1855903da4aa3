"""What an upload's declared Content-Type may be: one of its own kind, or one that says
nothing about the content (the bytes themselves then decide)."""

from __future__ import annotations

from webapp.errors import UnsupportedTypeError

NEUTRAL_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})


def check_declared(content_type: str, accepted: frozenset[str], send: str) -> None:
    """UnsupportedTypeError (415) unless the type, its parameters and case aside, is neutral
    or `accepted`; `send` says what to send instead."""
    declared = content_type.split(";")[0].strip().lower()
    if declared in NEUTRAL_TYPES or declared in accepted:
        return
    raise UnsupportedTypeError(f"content type {declared!r} is not supported; send {send}")
