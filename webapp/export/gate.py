"""How many exports run at once, counted apart for their two stages: bodies arriving (each
up to --max-export-bytes in memory) and conversions (seconds of CPU and a few hundred MB in
the export's process). A clear refusal beyond either."""

from __future__ import annotations


class Slots:
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


class ExportGate:
    """A slow upload holds only an upload slot: when the conversion's one slot was taken
    before the body was read, an audit found one client trickling its body keeping every
    other export at 503 for the whole --upload-timeout."""

    def __init__(self, uploads: int, conversions: int) -> None:
        self.uploads = Slots(uploads)
        self.conversions = Slots(conversions)
