"""bench.asked_rate: a session the server refuses is said once, with the server's reason."""

from __future__ import annotations

import gc
import logging
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bench import asked_rate
from tests.live import closing_at_hello


async def test_a_refused_session_is_said_once_with_the_servers_reason(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # On a busy 2-core machine admission by rate refuses its honest sessions: the run
    # ended in a SystemExit raised in a task, the reason left out, and a traceback of
    # each other session's exception that nobody retrieved.
    refusal = "full for holistic at --min-session-fps 10"
    server = await closing_at_hello(aiohttp_server, 1013, refusal)
    url = f"http://{server.host}:{server.port}"
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        with pytest.raises(asked_rate.Refused) as refused:
            await asked_rate.run(url, (b"",), 2, 1, 0.1)
        gc.collect()
    said = "the session was refused: close code 1013 full for holistic at --min-session-fps 10"
    assert str(refused.value) == said
    assert "never retrieved" not in caplog.text
