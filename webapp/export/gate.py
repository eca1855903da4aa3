"""How many exports run at once: parsing and writing a large recording takes a thread and
its memory for a second or more, so a few at a time, and a clear refusal beyond."""

from __future__ import annotations


class ExportGate:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.running = 0

    def enter(self) -> bool:
        if self.running >= self.limit:
            return False
        self.running += 1
        return True

    def leave(self) -> None:
        self.running -= 1
