"""How a live session ends: a close code and a reason in words."""

from __future__ import annotations

# What reason_bytes keeps of a close reason (a close frame has room for 123).
MAX_REASON_BYTES = 120


class SessionClosed(Exception):
    """Ends a session with a WebSocket close code and a reason in words."""

    # Mostly a Close; aiohttp's own WSCloseCode when its reader ended the connection.
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class TakenOver(SessionClosed):
    """The camera's next connection took the session's link over (it reconnected before
    this one was found dead): what this session drove, the next one drives on."""


def reason_bytes(reason: str) -> bytes:
    """A close reason fits in 123 bytes; cut on a character boundary, never inside one."""
    # A reason may quote a header (a Host of bytes that are not UTF-8, which aiohttp reads
    # as lone surrogates): encoded strictly, it raised, and the client got no close frame.
    encoded = reason.encode("utf-8", "backslashreplace")
    return encoded[:MAX_REASON_BYTES].decode("utf-8", "ignore").encode()
