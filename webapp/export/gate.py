"""How many exports run at once, counted apart for their two stages: bodies arriving (each
up to --max-export-bytes in memory) and conversions (seconds of CPU and a few hundred MB in
the export's process). A clear refusal beyond either."""

from __future__ import annotations

import asyncio

from webapp.per_address import PerAddress


class Slots:
    def __init__(self, limit: int, per_client: int = 0) -> None:
        self.limit = limit
        self.running = 0
        self.by_client = PerAddress(per_client)

    def enter(self, client: str = "") -> bool:
        if self.running >= self.limit or self.by_client.full(client):
            return False
        self.running += 1
        self.by_client.enter(client)
        return True

    def leave(self, client: str = "") -> None:
        self.running -= 1
        self.by_client.leave(client)


class ExportGate:
    """A slow upload holds only an upload slot: when the conversion's one slot was taken
    before the body was read, an audit found one client trickling its body keeping every
    other export at 503 for the whole --upload-timeout."""

    def __init__(self, uploads: int, conversions: int, uploads_per_client: int = 0) -> None:
        self.uploads = Slots(uploads, uploads_per_client)
        self.conversions = Slots(conversions)
        # Set as the server starts to shut down: a conversion's client is answered then.
        self.stopping = asyncio.Event()
