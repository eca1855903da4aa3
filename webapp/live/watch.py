"""Watchers: read-only connections that receive another session's results (an OBS view, a
coach's screen, the VMC relay), each through its own one-slot outbox, so a slow watcher
is cut off like any slow reader and never slows the session it watches."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import WSMsgType, web

from webapp.errors import plain_seconds
from webapp.live import messages
from webapp.live.audience import Ender, Watcher
from webapp.live.errors import SessionClosed
from webapp.live.outbox import Outbox
from webapp.live.receiver import read_error
from webapp.live.text_limits import TextLimits
from webapp.live.watch_tokens import WatchTokens
from webapp.protocol import NO_WATCHERS_REASON, Close


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
    opened: Callable[[Outbox], None] = lambda outbox: None,
) -> str:
    """Serves one watcher until it leaves or its session ends; returns the session's id.
    `text` has counted the watch message. `admit` counts it against the watched session's
    access key (1013 past its limit) and returns what gives that place back; `found` is
    told the watched session's id once the token names one; `unsent`, the bytes its
    socket has yet to send, paces its results to what its link takes; `opened` is given
    its outbox, to finish before an end from outside closes it."""
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
    limit = f"the watcher read no result for {plain_seconds(send_timeout)} s"
    outbox = Outbox(
        ws,
        send_timeout=send_timeout,
        sent=lambda frame: None,
        stuck=lambda: end(SessionClosed(Close.POLICY, limit)),
        unsent=unsent,
    )
    opened(outbox)
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
                if incoming.type is WSMsgType.ERROR:
                    # aiohttp has closed it (over the size: 1009) and its iterator ends
                    # next: read past, the watcher was logged as having left.
                    raise read_error(incoming.data)
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
