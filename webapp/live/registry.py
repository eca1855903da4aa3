"""The live sessions, so shutdown can reach them all and wait for them to end."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterator

from webapp.live.session import LiveSession


class SessionRegistry:
    def __init__(self) -> None:
        self._live: dict[LiveSession, str] = {}
        self._per_client: collections.Counter[str] = collections.Counter()
        self._empty = asyncio.Event()
        self._empty.set()

    def add(self, session: LiveSession, client: str) -> None:
        self._live[session] = client
        self._per_client[client] += 1
        self._empty.clear()

    def discard(self, session: LiveSession) -> None:
        client = self._live.pop(session, None)
        if client is not None:
            self._per_client[client] -= 1
            if self._per_client[client] <= 0:
                del self._per_client[client]
        if not self._live:
            self._empty.set()

    def count(self, client: str) -> int:
        return self._per_client[client]

    def __iter__(self) -> Iterator[LiveSession]:
        return iter(list(self._live))

    def __len__(self) -> int:
        return len(self._live)

    async def wait_empty(self) -> None:
        await self._empty.wait()
