"""The watch tokens: token -> the audience of a live session, kept through its camera's
reconnects, and the resume secrets and link keys that prove a camera."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from webapp.analysis.fitness import Workout
from webapp.errors import plain_seconds
from webapp.live.audience import Audience, Ender
from webapp.live.avatars import LinkAvatar, LinkAvatars, avatar_url
from webapp.live.errors import SessionClosed, TakenOver
from webapp.live.sites import site_of
from webapp.protocol import Close

# 16 random bytes: unguessable, and short enough to paste into an OBS source.
TOKEN_BYTES = 16
# A link taken from a session still connected (a second tab, or a connection the server
# has not yet found dead), as Grant.after says it.
OPEN = "open"
# Audiences waiting for their camera at once, at most: a client that opens sessions and
# drops them as fast as it can makes the oldest give up early, not the server grow.
MAX_RESTING = 1024
# ... and of one client (its address as limits count it, an IPv6 one by its site: a home's
# /56), whose own oldest gives up first: past the server's bound, one address dropping
# 1032 sessions in 6 s ended everyone else's paused links (a security review). At the
# server's bound, the client holding the most gives up its oldest, not the oldest of all.
RESTING_PER_CLIENT = 16

# What a link key's token is the hash of, besides the key: a token is never a plain hash of
# a string some other program might also hash.
KEPT_LINK_SALT = b"holotrack kept watch link\0"

# What a camera session hands on to its next one besides its watchers: its workout, if any.
Carry = Callable[[], Workout | None]


def _nothing() -> Workout | None:
    return None


@dataclass(frozen=True)
class Grant:
    """What ready tells a camera session: its watch token, and the secret that lets its
    next session (after a lost connection) keep that token and its watchers; and the
    workout its last session handed on, when it resumed one."""

    token: str
    resume: str
    audience: Audience
    workout: Workout | None = None
    taken_over: bool = False  # from an earlier session of the same camera
    # How that session had ended: its close code, or "open" for one still connected.
    after: str = ""


def kept_token(link_key: str) -> str:
    """The watch token of a link key (a secret the camera's page keeps): its hash, the same
    on every server and after a restart, from which a watcher, who knows the token, cannot
    work the key back."""
    digest = hashlib.sha256(KEPT_LINK_SALT + link_key.encode()).digest()[:TOKEN_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class _Entry:
    audience: Audience
    resume: str
    owner: Ender  # ends the session feeding the audience, while one does
    carry: Carry  # and what it hands on
    expiry: asyncio.TimerHandle | None = None  # set while it rests
    lost: str = ""  # while it rests: why its camera went
    lost_code: int = 0  # and its close code
    # The resume string its live session went on from: that session's ready may have been
    # lost with its connection, and its camera's next try still holds only this one.
    went_on_from: str = ""


class WatchTokens:
    """Token -> the audience of a live session, for as long as the session lives and, once
    its connection is lost, `grace` seconds more: the camera page reconnects on its own, and
    with the resume secret its new session keeps the token, so an OBS view, a coach's card
    or the VMC relay watching it carries on instead of needing a new link, and a workout
    goes on counting where it was. Only the camera has the secret; a watcher, who knows the
    token, cannot take its place.

    Each session is known by its `end` (bound methods of one session compare equal): it
    holds the token until another session resumes it, and after that what it does with the
    token is ignored."""

    def __init__(self, grace: float = 60.0, avatars: LinkAvatars | None = None) -> None:
        self.grace = grace
        # The links' own avatars live and die with their entries here.
        self.avatars = LinkAvatars(0) if avatars is None else avatars
        self._entries: dict[str, _Entry] = {}
        self._resumes: dict[str, str] = {}  # resume secret -> token
        # Tokens waiting for their camera, oldest first, with the client address of each.
        self._resting: dict[str, str] = {}

    def issue(
        self, audience: Audience, owner: Ender, carry: Carry = _nothing, token: str | None = None
    ) -> Grant:
        token = token or secrets.token_urlsafe(TOKEN_BYTES)
        resume = secrets.token_urlsafe(TOKEN_BYTES)
        self._entries[token] = _Entry(audience, resume, owner, carry)
        self._resumes[resume] = token
        return Grant(token, resume, audience)

    def claim(
        self,
        link_key: str,
        session: str,
        key: str | None,
        owner: Ender,
        carry: Carry = _nothing,
        resume: str | None = None,
    ) -> Grant:
        """The kept link of `link_key` for `session`: taken over from the key's last session
        while that one lives or rests, else opened anew under the same token, today or after
        a restart. Whoever has the key is that camera; a watcher has only the token. With a
        `resume` the link no longer answers to, `session` is a camera going on by itself
        after a pause or a lost connection, and it does not take the link from another
        camera that took it meanwhile."""
        token = kept_token(link_key)
        entry = self._entries.get(token)
        if entry is None:
            grant = self.issue(Audience(session, key=key), owner, carry, token)
        else:
            if entry.audience.key != key:
                raise SessionClosed(
                    Close.POLICY, "this link_key's watch link is in use under another access key"
                )
            went_on = resume is not None and resume in (entry.resume, entry.went_on_from)
            if resume is not None and entry.expiry is None and not went_on:
                # A phone unlocked in a pocket took the avatar back from the camera streaming.
                raise SessionClosed(
                    Close.NORMAL,
                    "another camera took this link over while this one was away: Start takes "
                    "it back",
                )
            grant = self._take_over(token, entry, session, owner, carry)
        # Whatever `resume` took the link, let go of or resting, is the one this camera
        # still holds if the ready is lost: its next try was refused as another camera's.
        self._entries[token].went_on_from = resume or ""
        return grant

    def resume(
        self, secret: str, session: str, key: str | None, owner: Ender, carry: Carry = _nothing
    ) -> Grant | None:
        """The token of the session `secret` was given to, now `session`'s, with a new
        secret and what that session handed on; None when it names none (expired, or ended
        for good) or `session` comes with another access key. A session still holding it is
        a connection the server has not yet found dead (no ping missed yet): it is ended,
        its camera is here."""
        found = self._resumed(secret)
        if found is None or found[1].audience.key != key:
            return None
        return self._take_over(*found, session, owner, carry)

    def takes_over(self, link_key: str | None, resume: str | None, key: str | None) -> bool:
        """Whether a hello with this link key or resume string (and access key) would take
        over a session still live: the camera's connection not yet found dead, or its
        second tab. That session ends as this one starts, so it does not count against
        the limits this one is admitted by."""
        if link_key is not None:
            entry = self._entries.get(kept_token(link_key))
        elif resume is not None:
            found = self._resumed(resume)
            entry = None if found is None else found[1]
        else:
            return False
        return entry is not None and entry.audience.key == key and entry.expiry is None

    def end(self, secret: str, why: str) -> tuple[str, Workout | None]:
        """Its camera ends for good the session `secret` was given to, paused (or lost) and
        waiting out its grace, or live still when the server has not yet read its pause:
        its watchers are told `why` and closed now, not when the grace runs out. Returns
        that session's id and its workout, for the camera's log. The secret is the proof
        that the camera asks: a watcher knows only the token."""
        found = self._resumed(secret)
        if found is None:
            raise SessionClosed(
                Close.UNKNOWN_WATCH,
                "this resume string names no paused session (it ended, its grace ran out,"
                " or it was resumed)",
            )
        token, entry = found
        if entry.expiry is None:
            entry.owner(SessionClosed(Close.NORMAL, "its camera ended it from another connection"))
        workout = entry.carry()
        session = entry.audience.session
        self.revoke(token, entry.owner, why)
        return session, workout

    def _resumed(self, secret: str) -> tuple[str, _Entry] | None:
        token = self._resumes.get(secret)
        entry = None if token is None else self._entries.get(token)
        return None if token is None or entry is None else (token, entry)

    def _take_over(
        self, token: str, entry: _Entry, session: str, owner: Ender, carry: Carry
    ) -> Grant:
        after = OPEN
        if entry.expiry is not None:
            entry.expiry.cancel()
            entry.expiry = None
            del self._resting[token]
            after = str(entry.lost_code)
        else:
            entry.owner(
                TakenOver(Close.NORMAL, f"another connection took its link over as {session}")
            )
        del self._resumes[entry.resume]
        entry.went_on_from = ""
        handed_on = entry.carry()
        entry.resume, entry.owner, entry.carry = secrets.token_urlsafe(TOKEN_BYTES), owner, carry
        self._resumes[entry.resume] = token
        entry.audience.moved_to(session)
        return Grant(token, entry.resume, entry.audience, handed_on, taken_over=True, after=after)

    def rest(self, token: str, owner: Ender, why: str, client: str = "", code: int = 0) -> None:
        """`owner` lost its connection: its watchers wait `grace` seconds for the next.
        `client`: its address as per-client limits count it; `code`: how it ended."""
        entry = self._entries.get(token)
        if entry is None or entry.owner != owner:
            return
        # First, before a long `why` that a close reason's 123 bytes cut: a coach's card
        # reads it as "their page may yet come back on this link" (a link key opens the
        # same token again), where any other end is the session's last.
        entry.lost, entry.lost_code = why, code
        why = f"its camera was not back within {plain_seconds(self.grace)} s ({why})"
        if self.grace <= 0:
            self.revoke(token, owner, why)
            return
        entry.expiry = asyncio.get_running_loop().call_later(
            self.grace, self.revoke, token, owner, why
        )
        self._resting[token] = site_of(client) or client
        held: dict[str, list[str]] = {}
        for resting, holder in self._resting.items():
            held.setdefault(holder, []).append(resting)
        mine = held[self._resting[token]] if client else []
        if len(mine) > RESTING_PER_CLIENT:
            oldest = mine[0]
        elif len(self._resting) > MAX_RESTING:
            oldest = max(held.values(), key=len)[0]
        else:
            return
        gone = self._entries[oldest]
        why = f"its camera was not back before too many others waited ({gone.lost})"
        self.revoke(oldest, gone.owner, why)

    def revoke(self, token: str, owner: Ender, why: str) -> None:
        """`owner` ended for good: the token names nothing any more, and its watchers are
        told why and closed."""
        entry = self._entries.get(token)
        if entry is None or entry.owner != owner:
            return
        del self._entries[token]
        self._resumes.pop(entry.resume, None)
        self._resting.pop(token, None)
        self.avatars.drop(token)
        if entry.expiry is not None:
            entry.expiry.cancel()
        entry.audience.end_all(why)

    def close(self) -> None:
        """On shutdown: no audience waits any more (its watchers are closed with the rest)."""
        for token, entry in list(self._entries.items()):
            self.revoke(token, entry.owner, "the server is shutting down")

    def __len__(self) -> int:
        return len(self._entries)

    def watching(self) -> int:
        """Watchers connected, of live and of resting sessions."""
        return sum(len(entry.audience.watchers) for entry in self._entries.values())

    def camera(
        self, token: str, secret: str, key: str | None, link_key: str = ""
    ) -> Audience | None:
        """The audience of `token` when the request proves it comes from the link's camera,
        which a watcher, who knows only the token, cannot: `secret` is the resume string of
        the last ready its camera got, or `link_key` the key the kept link is made of (whose
        holder may be its camera: the avatar page on a PC whose phone is the camera). And
        `key` is the access key the link was opened with."""
        entry = self._entries.get(token)
        if entry is None or entry.audience.key != key:
            return None
        if link_key:
            proof, expected = kept_token(link_key), token
        else:
            proof, expected = secret, entry.resume
        if not hmac.compare_digest(expected.encode(), proof.encode("utf-8", "replace")):
            return None
        return entry.audience

    def give_avatar(self, token: str, data: bytes, audience: Audience) -> LinkAvatar | None:
        """`data`, reserved in `avatars` first, becomes `token`'s avatar and its watchers
        are told where it is; None when the link ended while it arrived. `audience` is the
        link the camera proved it holds: a link opened again under the same token (a kept
        one) since then is another, and gets no avatar sent to the one that ended."""
        if self.find(token) is not audience:
            self.avatars.cancel(token)
            return None
        avatar = self.avatars.keep(token, data)
        audience.show_avatar(avatar_url(token, avatar.version))
        return avatar

    def take_avatar(self, token: str) -> None:
        """The link shows the default avatar again."""
        audience = self.find(token)
        if audience is not None and self.avatars.drop(token):
            audience.show_avatar(None)

    def find(self, token: object) -> Audience | None:
        # A dict lookup goes by the token's hash, not by comparing it with every token.
        entry = self._entries.get(token) if isinstance(token, str) else None
        return None if entry is None else entry.audience
