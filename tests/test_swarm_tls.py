"""A swarm sent to a wss:// address it cannot use says what went wrong with TLS.

OpenSSL's error class 1 was read as errno 1, so both cases said "Operation not permitted".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from ipaddress import ip_address
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

from swarm import echo
from swarm.config import SwarmConfig
from swarm.runner import Runner
from tests.test_swarm_faults import frames
from webapp import tls

MakeServer = Callable[[web.Application], Awaitable[TestServer]]


def runner(url: str) -> Runner:
    config = SwarmConfig(url=url, sessions="1", warmup=0.0, hold=0.5, drain=0.5, metrics_url="none")
    return Runner(config, frames())


async def test_a_wss_address_of_a_plain_server_says_it_does_not_speak_tls(
    aiohttp_server: MakeServer,
) -> None:
    server = await aiohttp_server(echo.create_app(stats_interval=0.3))
    run = await runner(f"wss://127.0.0.1:{server.port}/ws").run()
    (session,) = run.sessions
    assert session.error == (
        f"cannot connect to 127.0.0.1:{server.port}: TLS handshake failed: the server does "
        "not speak TLS there (a ws:// address?)"
    )


async def test_an_untrusted_certificate_is_named_as_such(tmp_path: Path) -> None:
    names = tls.MachineNames(frozenset({"localhost"}), frozenset({ip_address("127.0.0.1")}))
    made = tls.self_signed(tmp_path, names)
    server = TestServer(echo.create_app(stats_interval=0.3))
    await server.start_server(ssl=tls.server_context(made.cert, made.key))
    port = server.port
    try:
        run = await runner(f"wss://127.0.0.1:{port}/ws").run()
    finally:
        await server.close()
    (session,) = run.sessions
    assert session.error == (
        f"cannot connect to 127.0.0.1:{port}: TLS certificate not trusted: self-signed certificate"
    )
