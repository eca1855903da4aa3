"""Watchers: read-only connections that receive another session's results (an OBS view, a
coach's screen, the VMC relay), each through its own one-slot outbox, so a slow watcher
is cut off like any slow reader and never slows the session it watches."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from webapp.analysis.fitness import Workout
from webapp.analysis.rig.emotion import Emotion
from webapp.engine.jobs import Frame
from webapp.live import messages
from webapp.live.avatars import LinkAvatar, LinkAvatars, avatar_url
from webapp.live.errors import SessionClosed, TakenOver
from webapp.live.outbox import Outbox
from webapp.live.sites import site_of
from webapp.live.text_limits import TextLimits
from webapp.protocol import NO_WATCHERS_REASON, Close

# 16 random bytes: unguessable, and short enough to paste into an OBS source.
TOKEN_BYTES = 16
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

# Ends a session (a camera's or a watcher's) from outside, with its close code and reason.
Ender = Callable[[SessionClosed], None]
# What a camera session hands on to its next one besides its watchers: its workout, if any.
Carry = Callable[[], Workout | None]


def _nothing() -> Workout | None:
    return None


class Watcher:
    """One watcher's outbox; `end` closes its connection with a reason."""

    def __init__(self, outbox: Outbox, end: Ender) -> None:
        self.outbox = outbox
        self.end = end


@dataclass
class Audience:
    """The watchers of one session: what the session feeds and, when it ends, closes."""

    session: str
    watchers: set[Watcher] = field(default_factory=set)
    # The name of the access key the session was opened with; its watchers count against it.
    key: str | None = None
    # The session's last workout message, for a watcher who joins after it (a coach's card).
    workout: str | None = None
    # Where the avatar its camera gave the link is, while it has one (LinkAvatars).
    avatar: str | None = None
    # The emotion its camera holds (None: never one), kept for the camera's next session.
    emotion: Emotion | None = None
    # A message for the camera's live session, while one is (its control outbox).
    camera: Callable[[str], None] | None = None
    # What its camera is to hear when it comes back: it was told while between connections.
    owed: str | None = None

    def attach(self, camera: Callable[[str], None]) -> None:
        """The camera's live session, which hears now what it missed while away."""
        self.camera = camera
        if self.owed is not None:
            camera(self.owed)
            self.owed = None

    def detach(self, camera: Callable[[str], None]) -> None:
        """`camera`'s session lets go: what comes for the camera from now on is owed to its
        next session. A newer session already attached stays."""
        if self.camera == camera:
            self.camera = None

    def tell_camera(self, text: str) -> None:
        """A message for the camera (a code was used): a page reconnecting after its phone
        slept still takes the used code off its screen."""
        if self.camera is None:
            self.owed = text
        else:
            self.camera(text)

    def put(self, frame: Frame, text: str) -> None:
        for watcher in self.watchers:
            watcher.outbox.put_result(frame, text)

    def put_workout(self, text: str) -> None:
        self.workout = text
        self.tell(text)

    def tell(self, text: str) -> None:
        """A message for the watchers, besides the results (the workout, the emotion)."""
        for watcher in self.watchers:
            watcher.outbox.put_control(text)

    def moved_to(self, session: str) -> None:
        """The camera's next session took these watchers over: they hear its id again."""
        self.session = session
        for watcher in self.watchers:
            watcher.outbox.put_control(messages.watching(session, self.avatar))

    def show_avatar(self, url: str | None) -> None:
        self.avatar = url
        for watcher in self.watchers:
            watcher.outbox.put_control(messages.avatar(url))

    def end_all(self, why: str) -> None:
        for watcher in list(self.watchers):
            watcher.end(SessionClosed(Close.NORMAL, f"the watched session ended: {why}"))


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
        if entry.expiry is not None:
            entry.expiry.cancel()
            entry.expiry = None
            del self._resting[token]
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
        return Grant(token, entry.resume, entry.audience, handed_on, taken_over=True)

    def rest(self, token: str, owner: Ender, why: str, client: str = "") -> None:
        """`owner` lost its connection: its watchers wait `grace` seconds for the next.
        `client`: its address as per-client limits count it."""
        entry = self._entries.get(token)
        if entry is None or entry.owner != owner:
            return
        # First, before a long `why` that a close reason's 123 bytes cut: a coach's card
        # reads it as "their page may yet come back on this link" (a link key opens the
        # same token again), where any other end is the session's last.
        entry.lost = why
        why = f"its camera was not back within {self.grace:g} s ({why})"
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


async def serve_watcher(
    ws: web.WebSocketResponse,
    message: Mapping[str, Any],
    tokens: WatchTokens,
    *,
    max_watchers: int,
    send_timeout: float,
    end: Ender,
    text: TextLimits,
    admit: Callable[[str | None], Callable[[], None]] = lambda key: lambda: None,
    found: Callable[[str], None] = lambda session: None,
    unsent: Callable[[], int] | None = None,
) -> str:
    """Serves one watcher until it leaves or its session ends; returns the session's id.
    `text` has counted the watch message. `admit` counts it against the watched session's
    access key (1013 past its limit) and returns what gives that place back; `found` is
    told the watched session's id once the token names one; `unsent`, the bytes its
    socket has yet to send, paces its results to what its link takes."""
    messages.check_version(message)
    if max_watchers == 0:
        # Not 1013: no wait frees a place, and a watcher told to come back came back for ever.
        raise SessionClosed(Close.POLICY, NO_WATCHERS_REASON)
    audience = tokens.find(message.get("token"))
    if audience is None:
        raise SessionClosed(
            Close.UNKNOWN_WATCH, "this watch link names no live session (it ended, or never was)"
        )
    found(audience.session)
    if len(audience.watchers) >= max_watchers:
        raise SessionClosed(
            Close.TRY_AGAIN_LATER,
            f"session {audience.session} already has {max_watchers} watchers, the most allowed",
        )
    limit = f"the watcher read no result for {send_timeout:g} s"
    outbox = Outbox(
        ws,
        send_timeout=send_timeout,
        sent=lambda frame: None,
        stuck=lambda: end(SessionClosed(Close.POLICY, limit)),
        unsent=unsent,
    )
    watcher = Watcher(outbox, end)
    release = admit(audience.key)
    try:
        await ws.send_str(messages.watching(audience.session, audience.avatar))
        audience.watchers.add(watcher)
        if audience.workout is not None:
            outbox.put_control(audience.workout)
        if audience.emotion is not None:
            outbox.put_control(messages.emotion(audience.emotion))
        outbox.start(f"watch-{audience.session}")
        try:
            async for incoming in ws:
                if incoming.type is WSMsgType.BINARY:
                    raise SessionClosed(Close.POLICY, "a watcher sends no frames")
                if incoming.type is WSMsgType.TEXT:
                    text.check(str(incoming.data))
                    _tolerate(str(incoming.data))
                    await asyncio.sleep(0)  # as a session's controls
        finally:
            audience.watchers.discard(watcher)
            await outbox.stop()
    finally:
        release()
        # The session it watched last: a camera's next session may have taken it over.
        found(audience.session)
    return audience.session


# What the kernel may hold of a watcher's results not yet on the network: past it, they wait
# in the transport's buffer, where the outbox sees them (Outbox's `unsent`) and lets newer
# ones take their place. The kernel's own buffer grows to megabytes behind a slow link.
UNSENT_BYTES = 8192


def paced(transport: asyncio.BaseTransport | None) -> Callable[[], int] | None:
    """A watcher's connection kept to its newest results: what its socket has yet to send,
    for its outbox; None without a transport that can say."""
    if not isinstance(transport, asyncio.WriteTransport):
        return None
    sock = transport.get_extra_info("socket")
    lowat = getattr(socket, "TCP_NOTSENT_LOWAT", None)
    if sock is not None and lowat is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, lowat, UNSENT_BYTES)
    # Over TLS (--self-signed, --tls-cert) aiohttp writes to asyncio's TLS layer, whose size
    # counts only what it has yet to encrypt: the records wait in the socket's transport
    # beneath, up to its 64 KiB, unseen, and a slow watcher got every result, ever later.
    beneath = getattr(getattr(transport, "_ssl_protocol", None), "_transport", None)
    if isinstance(beneath, asyncio.WriteTransport):
        above = transport
        return lambda: above.get_write_buffer_size() + beneath.get_write_buffer_size()
    return transport.get_write_buffer_size


def _tolerate(text: str) -> None:
    """A watcher has nothing to say: any JSON is ignored, anything else is an error."""
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        raise SessionClosed(Close.PROTOCOL, "a text message is not valid JSON") from None
