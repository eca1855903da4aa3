"""Pairing codes: eight characters a person types on another device, in place of the QR
code that hands a page's link key to a phone, for a device that cannot scan one (a spare
computer with a webcam, a phone with no QR reader), or a workout's watch token to a coach's
laptop in the room.

The page that offers the link makes the code itself (static/pair_code.js), so the code can
route a request to the replica that holds it, as a watch token does (deploy/nginx). A code
is good for one claim within its lifetime. Eight characters of a 31-letter alphabet are
about 2^39.6 codes, against at most MAX_CODES alive and TRIES guesses per address and
lifetime: a guesser's chance is about one in ten million per address and code lifetime.
An offer is a guess too (its 409 says a code is alive), so offers and wrong claims draw on
one budget. An IPv6 client is an address's /64 (live/guard.counted_as), and its site
(live/sites.py, a /56: 256 of those) has a budget and a share of the table of its own, a
few addresses' worth, so one home cannot multiply the guesses or fill the table.
"""

from __future__ import annotations

import collections
import hmac
import math
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from webapp.live.sites import SITE_PREFIX, site_of

# Neither 0 and O nor 1, I and L: what is read off one screen is typed on another.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 8
LIFETIME_SECONDS = 600.0
# Codes one address may have alive at once: a page makes one when asked, and another
# for a new link; more is someone filling the table.
PER_ADDRESS = 4
MAX_CODES = 4096
# Offers and wrong claims one address may make within a lifetime: a page offers a code
# when asked and a person mistypes a few; more is guessing.
TRIES = 20
# An IPv6 site's (its /56's) share: a household pairing a few devices at once.
PER_SITE = 4 * PER_ADDRESS
SITE_TRIES = 5 * TRIES
# Addresses and sites whose tries are remembered. Past this many, the quietest with tries
# left is forgotten to make room (it gains back only the tries it spent), never one out of
# them (forgotten, it would start again from nothing); when all are, a newcomer waits.
MAX_ADDRESSES = 16384

Clock = Callable[[], float]
# What may stand between a code's groups: a space, or a dash as keyboards type one. NFKC
# leaves the Japanese long-vowel mark (the "-" key in kana mode), typographic dashes (a
# phone's smart punctuation, a code pasted from a chat) and the minus sign as they are.
BETWEEN = frozenset(" -\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc")


def normalized(text: str) -> str | None:
    """The code `text` spells, as typed (any case, spaces and dashes between groups), or
    None when it is not one. NFKC: a Japanese or Chinese input method left on types
    full-width letters, digits and dashes, which look like the code and were refused."""
    code = "".join(ch for ch in unicodedata.normalize("NFKC", text).upper() if ch not in BETWEEN)
    if len(code) == LENGTH and set(code) <= set(ALPHABET):
        return code
    return None


@dataclass(frozen=True)
class Link:
    """A page's link key, for a device to be its camera, and the access key of the page
    that offered it (the link stays with that access key under --access-keys), if any."""

    key: str
    access_key: str | None

    @property
    def secret(self) -> str:
        return self.key


@dataclass(frozen=True)
class Watch:
    """A session's watch token, for a coach's view on another device (watching needs no
    access key)."""

    token: str

    @property
    def secret(self) -> str:
        return self.token


# What a claimed code hands over. Its secret proves a withdrawal, and names the page's
# code that a newer one replaces.
Handed = Link | Watch


@dataclass(frozen=True)
class _Offer:
    handed: Handed
    address: str
    expires: float


class CodeTaken(Exception):
    """The offering page drew a code already alive: it draws another."""


class TooMany(Exception):
    """Over a limit: too many codes alive for an address or the server; a code's lifetime
    ends it."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(retry_after)
        # Rounded down, a client that waited as told came back 0.4 s early and was
        # refused again: whole seconds up, so the wait it is told is the wait it needs.
        self.retry_after = max(1, math.ceil(retry_after))


class TooManyTries(TooMany):
    """An address made TRIES offers and wrong claims within a lifetime (or its site
    SITE_TRIES)."""


class TooManyTrying(TooMany):
    """The table holds MAX_ADDRESSES addresses and sites, every one out of tries: a newcomer
    waits."""


def _limit(holder: str) -> int:
    """The tries an entry of the table may make: a site's or an address's."""
    return SITE_TRIES if holder.endswith(f"/{SITE_PREFIX}") else TRIES


class PairingCodes:
    """Every request does work bounded by the per-address limits, not by the table: each
    expires only what is over, oldest first, so a flood of claims costs no scans."""

    def __init__(self, lifetime: float = LIFETIME_SECONDS, clock: Clock = time.monotonic) -> None:
        self.lifetime = lifetime
        self.clock = clock
        # Oldest first: with one lifetime for all, also the order in which they end.
        self._offers: dict[str, _Offer] = {}
        # The codes alive of each address, and of each IPv6 site.
        self._by_address: dict[str, list[str]] = {}
        # The times of each address's and site's tries (offers, wrong claims), oldest
        # first; in the order they last tried, so the quietest is looked at first when
        # the table is full.
        self._tries: collections.OrderedDict[str, collections.deque[float]] = (
            collections.OrderedDict()
        )

    def __len__(self) -> int:
        self._expire(self.clock())
        return len(self._offers)

    def offer(self, code: str, handed: Handed, address: str) -> float:
        """Keeps `code` for `handed` until claimed or its lifetime ends; its lifetime in
        seconds. The address's earlier code for the same secret ends: only the newest of a
        page's codes works. Raises TooManyTries, TooMany, CodeTaken."""
        now = self.clock()
        self._expire(now)
        self._check(address, now)
        self._count(address, now)
        for old in self._by_address.get(address, []):
            if self._offers[old].handed.secret == handed.secret:
                self._drop(old)
                break
        for holder, codes, _ in self._holders(address):
            mine = self._by_address.get(holder, [])
            if len(mine) >= codes:
                raise TooMany(self._offers[mine[0]].expires - now)
        if len(self._offers) >= MAX_CODES:
            raise TooMany(next(iter(self._offers.values())).expires - now)
        if code in self._offers:
            raise CodeTaken(code)
        self._offers[code] = _Offer(handed, address, now + self.lifetime)
        for holder, _, _ in self._holders(address):
            self._by_address.setdefault(holder, []).append(code)
        return self.lifetime

    def holds(self, code: str) -> bool:
        """Whether `code` is alive here; no try is counted."""
        self._expire(self.clock())
        return code in self._offers

    def claim(self, code: str, address: str) -> Handed | None:
        """What `code` hands over, once; None for a code not alive (never offered, claimed
        already, or too old). Raises TooManyTries for an address with TRIES offers and
        wrong claims within a lifetime, right code or not."""
        now = self.clock()
        self._expire(now)
        self._check(address, now)
        if code in self._offers:
            return self._drop(code).handed
        self._count(address, now)
        return None

    def miss(self, address: str) -> None:
        """Counts a wrong claim of `address` for a code not alive here, which it is sent on
        to look for elsewhere: sent on for free, any code could be tried for nothing and
        a held one told apart. Raises TooManyTries as claim() does."""
        now = self.clock()
        self._check(address, now)
        self._count(address, now)

    def withdraw(self, code: str, secret: str) -> bool:
        """Ends `code` before its time, for the page that offered it (which proves it by the
        key or token the code hands over); whether it was alive."""
        self._expire(self.clock())
        offer = self._offers.get(code)
        if offer is None or not hmac.compare_digest(offer.handed.secret, secret):
            return False
        self._drop(code)
        return True

    def _drop(self, code: str) -> _Offer:
        offer = self._offers.pop(code)
        for holder, _, _ in self._holders(offer.address):
            codes = self._by_address[holder]
            codes.remove(code)
            if not codes:
                del self._by_address[holder]
        return offer

    @staticmethod
    def _holders(address: str) -> list[tuple[str, int, int]]:
        """Who a request of `address` counts against, with the codes each may hold alive
        and the tries each may make within a lifetime."""
        site = site_of(address)
        mine = (address, PER_ADDRESS, TRIES)
        return [mine] if site is None else [mine, (site, PER_SITE, SITE_TRIES)]

    def _check(self, address: str, now: float) -> None:
        """Raises TooManyTries when `address` or its site has no try left."""
        for holder, _, most in self._holders(address):
            tries = self._tries.get(holder)
            if tries is None:
                continue
            self._prune(tries, now)
            if len(tries) >= most:
                raise TooManyTries(tries[0] + self.lifetime - now)

    def _count(self, address: str, now: float) -> None:
        """Counts a try of `address` (and its site), checked already."""
        holders = [holder for holder, _, _ in self._holders(address)]
        added: list[str] = []
        try:
            for holder in holders:
                if holder not in self._tries:
                    # Room for an IPv6 site's place once forgot its /64's, just added with
                    # tries left, and the count below raised KeyError (a 500).
                    self._room(now, keep=holders)
                    self._tries[holder] = collections.deque()
                    added.append(holder)
        except TooManyTrying:
            for holder in added:
                del self._tries[holder]
            raise
        for holder in holders:
            self._tries[holder].append(now)
            self._tries.move_to_end(holder)

    def _room(self, now: float, keep: list[str]) -> None:
        """Room for a new entry, once the quietest entry with tries left (other than `keep`,
        the request's own) is forgotten when the table is full: refusing every newcomer
        instead, 16,384 addresses with one wrong claim each kept everyone else from pairing
        (a review). Raises TooManyTrying when every other entry is out of tries."""
        if len(self._tries) < MAX_ADDRESSES:
            return
        oldest_end = math.inf
        for holder, tries in self._tries.items():
            if holder in keep:
                continue
            self._prune(tries, now)
            if len(tries) < _limit(holder):
                del self._tries[holder]
                return
            oldest_end = min(oldest_end, tries[0] + self.lifetime)
        raise TooManyTrying(oldest_end - now)

    def _prune(self, tries: collections.deque[float], now: float) -> None:
        while tries and tries[0] + self.lifetime <= now:
            tries.popleft()

    def _expire(self, now: float) -> None:
        while self._offers:
            code, offer = next(iter(self._offers.items()))
            if offer.expires > now:
                break
            self._drop(code)
        while self._tries:
            address, tries = next(iter(self._tries.items()))
            if tries and tries[-1] + self.lifetime > now:
                break
            del self._tries[address]
