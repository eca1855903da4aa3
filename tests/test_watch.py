"""Serving one watcher (webapp/live/watch.py) over a socket that stands in for aiohttp's:
what its reader hands over decides how the watcher ends."""

from __future__ import annotations

from typing import Any, cast

import pytest
from aiohttp import WebSocketError, WSMessage, WSMsgType, web

from webapp.live.audience import Audience
from webapp.live.errors import SessionClosed
from webapp.live.text_limits import TextLimits
from webapp.live.watch import serve_watcher
from webapp.live.watch_tokens import WatchTokens
from webapp.protocol import Close


class HandedSocket:
    """A watcher's socket whose reader hands over `messages`, then ends as aiohttp's
    iterator does once the connection is closed."""

    def __init__(self, messages: list[WSMessage]) -> None:
        self.messages = messages
        self.sent: list[str] = []
        self.closed = False

    async def send_str(self, text: str) -> None:
        self.sent.append(text)

    def __aiter__(self) -> HandedSocket:
        return self

    async def __anext__(self) -> WSMessage:
        if not self.messages:
            self.closed = True
            raise StopAsyncIteration
        return self.messages.pop(0)


async def test_a_watchers_message_over_the_size_ends_it_with_the_1009_aiohttp_sent() -> None:
    """aiohttp closes a message over its size with 1009 and hands the reader an ERROR
    before its iterator ends: read past, the watcher ended as if it had left (its end line
    1000, "the watcher of s1 left") wherever the handler was not cancelled first."""
    tokens = WatchTokens(grace=60.0)
    grant = tokens.issue(Audience("s1"), lambda close: None)
    too_big = WebSocketError(Close.TOO_BIG, "Message size 1050636 exceeds limit 1049613")
    ws = HandedSocket([WSMessage(WSMsgType.ERROR, too_big, None)])
    ended: list[SessionClosed] = []
    with pytest.raises(SessionClosed) as closed:
        await serve_watcher(
            cast(web.WebSocketResponse, ws),
            cast(dict[str, Any], {"type": "watch", "version": 1, "token": grant.token}),
            tokens,
            max_watchers=4,
            send_timeout=5.0,
            end=ended.append,
            text=TextLimits(),
        )
    assert closed.value.code == Close.TOO_BIG
    assert closed.value.reason == ("message too big: Message size 1050636 exceeds limit 1049613")
    assert grant.audience.watchers == set()
    assert ended == []
