"""How many of a thing each client address holds at once: the uploads one address may
have arriving, so that one trickling its bodies cannot hold every place."""

from __future__ import annotations

import collections


class PerAddress:
    def __init__(self, most: int = 0) -> None:
        self.most = most  # one address may hold this many; 0: no bound
        self._held: collections.Counter[str] = collections.Counter()

    def full(self, address: str) -> bool:
        return 0 < self.most <= self._held[address]

    def held(self, address: str) -> int:
        return self._held[address]

    def enter(self, address: str) -> None:
        self._held[address] += 1

    def leave(self, address: str) -> None:
        self._held[address] -= 1
        if self._held[address] <= 0:
            del self._held[address]
