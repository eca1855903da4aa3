"""A refusal keeps the reason the server gave: a key's quota is not the server's capacity."""

from __future__ import annotations

import csv
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

from swarm import echo
from swarm.config import SwarmConfig
from swarm.report import table, write_all
from swarm.runner import Runner
from tests.test_swarm_faults import frames
from webapp.protocol import Close

MakeServer = Callable[[web.Application], Awaitable[TestServer]]
QUOTA = "quota max_sessions: key a already holds 1 live session; its max_sessions is 1"


def quota_app() -> web.Application:
    """The echo server for its first session; every later one is refused at hello."""
    app = echo.create_app(stats_interval=0.3)
    answered = 0
    serve = next(
        r.handler for r in app.router.routes() if r.resource and r.resource.canonical == "/ws"
    )

    async def ws(request: web.Request) -> web.StreamResponse:
        nonlocal answered
        answered += 1
        if answered == 1:
            return await serve(request)
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.receive()
        await socket.close(code=Close.TRY_AGAIN_LATER, message=QUOTA.encode())
        return socket

    quota = web.Application()
    quota.router.add_get("/ws", ws)
    return quota


async def test_a_refusal_keeps_its_reason_in_the_table_the_report_and_sessions_csv(
    aiohttp_server: MakeServer, tmp_path: Path
) -> None:
    server = await aiohttp_server(quota_app())
    config = SwarmConfig(
        url=f"ws://127.0.0.1:{server.port}/ws",
        sessions="3",
        fps=15.0,
        warmup=0.0,
        hold=0.5,
        drain=0.5,
        spawn_rate=1.0,
        metrics_url="none",
    )
    run = await Runner(config, frames()).run()
    report = write_all(tmp_path, config, frames(), run)
    (step,) = report["steps"]
    assert step["refusals"] == 2
    assert report["refusals"] == {QUOTA: 2}
    assert f"refused: 2 x {QUOTA}" in table(report).splitlines()
    with (tmp_path / "sessions.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert sorted(row["refusal"] for row in rows) == ["", QUOTA, QUOTA]
