"""bench.video_fairness: the live session it measures beside a video is admitted, and a
refusal is said in words rather than as a traceback."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bench.video_fairness import SERVER_ENV, live_phase
from tests.live import closing_at_hello
from webapp.config import load_config
from webapp.protocol import Track


def test_the_benchs_server_admits_the_live_session_beside_the_video() -> None:
    # With admission by rate, a worker that cannot give both the video and the live session
    # --min-session-fps refuses the live one (1013), on any slow or busy machine.
    assert SERVER_ENV["HOLOTRACK_MIN_SESSION_FPS"] == "0"  # not only conftest's default
    config = load_config([], SERVER_ENV)
    assert config.min_fps == {Track.HOLISTIC: 0.0, Track.POSE: 0.0}


async def test_a_refused_live_session_ends_the_bench_with_the_reason(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> None:
    refusal = "full for holistic at --min-session-fps 10"
    server = await closing_at_hello(aiohttp_server, 1013, refusal)
    url = f"http://{server.host}:{server.port}"
    with pytest.raises(SystemExit, match="closed 1013 full for holistic at --min-session-fps"):
        await live_phase(url, (b"",), fps=15.0, seconds=1.0)
