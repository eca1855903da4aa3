"""Pairing codes: eight characters a person types on another device, in place of the QR
code that hands a page's link key to a phone, for a device that cannot scan one (a spare
computer with a webcam, a phone with no QR reader).

The page that offers the link makes the code itself (static/pair_code.js), so the code can
route a request to the replica that holds it, as a watch token does (deploy/nginx). A code
is good for one claim within its lifetime. Eight characters of a 31-letter alphabet are
about 2^39.6 codes, against at most MAX_CODES alive and WRONG_TRIES wrong claims per
address and lifetime: a guesser's chance is about one in ten million per address and code
lifetime.
"""

from __future__ import annotations

import collections
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

# Neither 0 and O nor 1, I and L: what is read off one screen is typed on another.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 8
LIFETIME_SECONDS = 600.0
# Codes one address may have alive at once: a page makes one when asked, and another
# for a new link; more is someone filling the table.
PER_ADDRESS = 4
MAX_CODES = 4096
WRONG_TRIES = 20
MAX_ADDRESSES = 4096

Clock = Callable[[], float]


def normalized(text: str) -> str | None:
    """The code `text` spells, as typed (any case, spaces and dashes between groups), or
    None when it is not one."""
    code = "".join(ch for ch in text.upper() if ch not in " -")
    if len(code) == LENGTH and set(code) <= set(ALPHABET):
        return code
    return None


@dataclass(frozen=True)
class Handed:
    """What a claimed code hands over: the link key, and the access key of the page that
    offered it (the link stays with that access key under --access-keys), if any."""

    link_key: str
    access_key: str | None


@dataclass(frozen=True)
class _Offer:
    handed: Handed
    address: str
    expires: float


class CodeTaken(Exception):
    """The offering page drew a code already alive: it draws another."""


class TooMany(Exception):
    """Over a limit: too many codes alive for an address or the server, or too many wrong
    claims from one address; a code's lifetime ends it."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(retry_after)
        self.retry_after = max(1, round(retry_after))


class PairingCodes:
    def __init__(self, lifetime: float = LIFETIME_SECONDS, clock: Clock = time.monotonic) -> None:
        self.lifetime = lifetime
        self.clock = clock
        self._offers: dict[str, _Offer] = {}
        # The times of each address's wrong claims, oldest first; addresses in the order
        # they last erred, so the one erring longest ago goes when the table is full.
        self._wrong: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict()
        )

    def __len__(self) -> int:
        self._expire(self.clock())
        return len(self._offers)

    def offer(self, code: str, handed: Handed, address: str) -> float:
        """Keeps `code` for `handed` until claimed or its lifetime ends; its lifetime in
        seconds. The address's earlier code for the same link key ends: only the newest of
        a page's codes works. Raises CodeTaken, TooMany."""
        now = self.clock()
        self._expire(now)
        if code in self._offers:
            raise CodeTaken(code)
        mine = {c: o for c, o in self._offers.items() if o.address == address}
        for old, offer in mine.items():
            if offer.handed.link_key == handed.link_key:
                del self._offers[old]
                del mine[old]
                break
        if len(mine) >= PER_ADDRESS:
            raise TooMany(min(o.expires for o in mine.values()) - now)
        if len(self._offers) >= MAX_CODES:
            raise TooMany(min(o.expires for o in self._offers.values()) - now)
        self._offers[code] = _Offer(handed, address, now + self.lifetime)
        return self.lifetime

    def claim(self, code: str, address: str) -> Handed | None:
        """What `code` hands over, once; None for a code not alive (never offered, claimed
        already, or too old), which counts against `address`. Raises TooMany for an address
        with WRONG_TRIES wrong claims within a lifetime, right code or not."""
        now = self.clock()
        self._expire(now)
        wrong = self._wrong.get(address)
        if wrong is not None and len(wrong) >= WRONG_TRIES:
            raise TooMany(wrong[0] + self.lifetime - now)
        offer = self._offers.pop(code, None)
        if offer is not None:
            return offer.handed
        if wrong is None:
            if len(self._wrong) >= MAX_ADDRESSES:
                self._wrong.popitem(last=False)
            wrong = self._wrong[address] = collections.deque()
        wrong.append(now)
        self._wrong.move_to_end(address)
        return None

    def withdraw(self, code: str, link_key: str) -> bool:
        """Ends `code` before its time, for the page that offered it (which proves it by the
        key the code hands over); whether it was alive."""
        self._expire(self.clock())
        offer = self._offers.get(code)
        if offer is None or not hmac.compare_digest(offer.handed.link_key, link_key):
            return False
        del self._offers[code]
        return True

    def _expire(self, now: float) -> None:
        for code in [c for c, o in self._offers.items() if o.expires <= now]:
            del self._offers[code]
        for address in list(self._wrong):
            tries = self._wrong[address]
            while tries and tries[0] + self.lifetime <= now:
                tries.popleft()
            if not tries:
                del self._wrong[address]
