"""Keys on GET /ws: one connection's way past them, and its refusals as close codes.

The key comes with the upgrade (`Authorization: Bearer KEY` from scripts, `?key=` from a
browser) or in the hello (`"key"`). A wrong key with the upgrade is refused at once; one in
the hello when the hello arrives. A watcher needs no key: it is counted as a session of
the key of the session it watches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from webapp.access.errors import AccessDenied, QuotaExceeded
from webapp.access.service import Access, Hold
from webapp.live.errors import SessionClosed
from webapp.protocol import Close

ASK = 'send it in the hello ("key") or as ?key='


def refusal(exc: AccessDenied | QuotaExceeded) -> SessionClosed:
    if isinstance(exc, AccessDenied):
        hint = f": {ASK}" if exc.reason == "missing_key" else ""
        return SessionClosed(Close.UNAUTHORIZED, f"{exc.detail}{hint}")
    # 1013 asks a client to come back; a limit of 0 never lets it in (1008, no retry).
    code = Close.POLICY if exc.never else Close.TRY_AGAIN_LATER
    return SessionClosed(code, f"quota {exc.quota}: {exc.detail}")


class Gate:
    """What one /ws connection's key allows; `None` for access means an open server."""

    def __init__(self, access: Access | None = None, presented: str | None = None) -> None:
        self._access = access
        self._presented = presented
        self.name: str | None = None
        self._hold: Hold | None = None

    def check_presented(self) -> None:
        """A key given with the upgrade is checked before any message is read."""
        if self._access is not None and self._presented is not None:
            self._identify(self._presented)

    def identify(self, hello: Mapping[str, Any]) -> None:
        """Checks the key of a session's hello (or of its upgrade)."""
        if self._access is None:
            return
        presented = hello.get("key") if self._presented is None else self._presented
        self.name = self._identify(presented)

    def admit(self, replacing: bool = False) -> None:
        """Counts the identified session against its key; `replacing`: it takes over one of
        the key's own sessions, which ends as it starts."""
        if self._access is not None:
            self._hold = self._open(self.name, replacing)

    def check_offered(self, message: Mapping[str, Any]) -> None:
        """A key in a message that needs none (a watcher's) must still be right: a wrong
        one is a mistake the client should hear of, as with the upgrade. null or "" is no key,
        as in a hello: refused, it told a watcher this server needs a key, which it does not."""
        offered = message.get("key")
        if self._access is not None and self._presented is None and offered not in (None, ""):
            self._identify(offered)

    def watcher(self, watched_key: str | None) -> Callable[[], None]:
        """Counts a watcher against the key of the session it watches; returns the release."""
        if self._access is None:
            return lambda: None
        hold = self._open(watched_key)
        return hold.release

    def frame(self, outcome: str) -> None:
        if self._access is not None:
            self._access.frame(self.name, outcome)

    def release(self) -> None:
        if self._hold is not None:
            self._hold.release()
            self._hold = None

    def _identify(self, presented: object) -> str | None:
        assert self._access is not None
        try:
            return self._access.identify(presented)
        except AccessDenied as exc:
            raise refusal(exc) from None

    def _open(self, name: str | None, replacing: bool = False) -> Hold:
        assert self._access is not None
        try:
            return self._access.open_session(name, replacing)
        except QuotaExceeded as exc:
            raise refusal(exc) from None
