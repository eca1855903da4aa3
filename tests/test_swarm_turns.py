"""The swarm's client rule for `turn` messages, against a stand-in server the test drives."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from swarm.config import SwarmConfig
from swarm.records import Outcome
from swarm.user import FALLBACK_MIN_SECONDS, Clock, User
from tests.test_swarm import frames
from webapp.protocol import FRAME_HEADER

# Longest wait for something the client should do at once; only a broken client waits it out.
PROMPT = 5.0
# How long a client that should hold back is watched.
QUIET = 0.3


class Script:
    """Answers hello with ready, then says only what the test tells it; reports frames."""

    def __init__(self) -> None:
        self.url = ""
        self.frames: asyncio.Queue[int] = asyncio.Queue()
        self.ws: web.WebSocketResponse | None = None
        self.connected = asyncio.Event()

    async def handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()  # hello
        ready = {"type": "ready", "version": 1, "session": "t1", "fps": 15.0}
        await ws.send_json({**ready, "stats_interval": 60.0})
        self.ws = ws
        self.connected.set()
        async for message in ws:
            if message.type is WSMsgType.BINARY:
                seq, _ = FRAME_HEADER.unpack_from(message.data)
                self.frames.put_nowait(seq)
        return ws

    async def say(self, **message: Any) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps(message))

    async def turn(self) -> None:
        await self.say(type="turn")

    async def result(self, seq: int, wait_ms: float = 0.0) -> None:
        timing = {"wait": wait_ms, "decode": 2.0, "inference": 30.0}
        await self.say(type="result", seq=seq, capture_ms=0.0, timing_ms=timing)

    async def next_frame(self) -> int:
        return await asyncio.wait_for(self.frames.get(), PROMPT)

    async def quiet(self) -> bool:
        """True if no frame comes for a while."""
        try:
            await asyncio.wait_for(self.frames.get(), QUIET)
        except TimeoutError:
            return True
        return False


@pytest.fixture
async def script(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> Script:
    script = Script()
    app = web.Application()
    app.router.add_get("/ws", script.handler)
    server = await aiohttp_server(app)
    script.url = f"ws://{server.host}:{server.port}/ws"
    return script


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@contextlib.asynccontextmanager
async def running_user(
    script: Script, http: aiohttp.ClientSession, config: SwarmConfig
) -> AsyncIterator[User]:
    config = dataclasses.replace(config, url=script.url, drain=0.0)
    # A phase longer than any test here: no frame leaves on the paced schedule, so every
    # frame the test sees was sent because of what the script said.
    user = User(0, 1, config, frames(), http, Clock(), phase=30.0)
    task = asyncio.create_task(user.run())
    try:
        await asyncio.wait_for(script.connected.wait(), PROMPT)
        yield user
    finally:
        user.stop()
        assert script.ws is not None
        await script.ws.close()
        await asyncio.wait_for(task, PROMPT)


async def test_a_frame_on_each_turn_and_a_turn_waits_while_two_are_in_flight(
    script: Script, http: aiohttp.ClientSession
) -> None:
    async with running_user(script, http, SwarmConfig()) as user:
        await script.turn()
        assert await script.next_frame() == 1
        await script.turn()
        assert await script.next_frame() == 2
        # Two in flight: the third turn is kept, and answered as soon as a result comes.
        await script.turn()
        assert await script.quiet()
        await script.result(2, wait_ms=1.5)
        assert await script.next_frame() == 3

    first, second, third = user.ledger.sent
    assert all(f.turn is not None for f in user.ledger.sent)
    assert third.turn is not None
    assert third.sent > third.turn
    # The result for 2 settled 1 as replaced by it, and brought the server's timing.
    assert (first.outcome, second.outcome) == (Outcome.DROPPED, Outcome.RESULT)
    assert (second.wait_ms, second.decode_ms, second.inference_ms) == (1.5, 2.0, 30.0)
    assert (user.record.turns, user.record.fallbacks) == (3, 0)


async def test_after_the_first_turn_a_frame_goes_without_one_only_as_a_fallback(
    script: Script, http: aiohttp.ClientSession
) -> None:
    async with running_user(script, http, SwarmConfig(fps=15.0)) as user:
        await script.turn()
        assert await script.next_frame() == 1
        await script.result(1)
        # No turn comes: the next frame waits max(1 s, 2 / fps) after the last turn.
        assert await script.next_frame() == 2

    turned, fallback = user.ledger.sent
    assert turned.turn is not None
    assert fallback.turn is None
    assert fallback.sent - turned.turn >= FALLBACK_MIN_SECONDS
    assert (user.record.turns, user.record.fallbacks) == (1, 1)


@pytest.mark.parametrize(
    "settings", [{"ignore_turns": True}, {"mode": "firehose"}], ids=["ignore_turns", "firehose"]
)
async def test_a_swarm_told_to_ignore_turns_counts_them_and_sends_none_on_them(
    script: Script, http: aiohttp.ClientSession, settings: dict[str, Any]
) -> None:
    config = dataclasses.replace(SwarmConfig(), **settings)
    async with running_user(script, http, config) as user:
        for _ in range(3):
            await script.turn()
        assert await script.quiet()
    assert user.ledger.sent == []
    assert user.record.turns == 3
