"""How many exports run at once, counted apart for their two stages: bodies arriving (each
up to --max-export-bytes in memory) and conversions (seconds of CPU and a few hundred MB in
the export's process). A clear refusal beyond either."""

from __future__ import annotations

import collections


class Slots:
    def __init__(self, limit: int, per_client: int = 0) -> None:
        self.limit = limit
        self.per_client = per_client  # of the slots one client address may hold; 0: all
        self.running = 0
        self._held: collections.Counter[str] = collections.Counter()

    def enter(self, client: str = "") -> bool:
        if self.running >= self.limit or 0 < self.per_client <= self._held[client]:
            return False
        self.running += 1
        self._held[client] += 1
        return True

    def leave(self, client: str = "") -> None:
        self.running -= 1
        self._held[client] -= 1
        if self._held[client] <= 0:
            del self._held[client]

    def held_by(self, client: str) -> int:
        return self._held[client]


class ExportGate:
    """A slow upload holds only an upload slot: when the conversion's one slot was taken
    before the body was read, an audit found one client trickling its body keeping every
    other export at 503 for the whole --upload-timeout."""

    def __init__(self, uploads: int, conversions: int, uploads_per_client: int = 0) -> None:
        self.uploads = Slots(uploads, uploads_per_client)
        self.conversions = Slots(conversions)
