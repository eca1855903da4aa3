"""The keys the server accepts, kept as SHA-256 digests and matched in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from webapp.access.keyfile import MAX_KEY_CHARS, KeyEntry, Limits, digest


class KeyStore:
    def __init__(self, entries: Iterable[KeyEntry]) -> None:
        self._entries = tuple(entries)
        self._limits = {entry.name: entry.limits for entry in self._entries}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._limits)

    def limits(self, name: str) -> Limits | None:
        """A name's limits now; None once a reload removed the name."""
        return self._limits.get(name)

    def find(self, presented: str) -> KeyEntry | None:
        """The entry whose key this is. Every digest is compared, with hmac.compare_digest and
        without stopping at a match, so the time taken says nothing about any stored key."""
        if len(presented) > MAX_KEY_CHARS:
            return None
        wanted = digest(presented)
        found = None
        for entry in self._entries:
            if hmac.compare_digest(entry.digest, wanted):
                found = entry
        return found
