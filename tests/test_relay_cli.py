"""The VMC relay's failures, as its user meets them: a clear line and an exit status, or a
warning, never a traceback and never a loop that cannot succeed."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import signal
import ssl
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
from aiohttp import web
from aiohttp._websocket.writer import WebSocketWriter
from aiohttp.test_utils import TestServer

from bench.common import free_port
from tests.conftest import Client, MakeClient
from tests.live import LiveClient, video_frames
from tests.media import ASL_VIDEO
from tests.test_lifecycle import serving
from tests.vmc_receiver import Received, vmc_receiver
from webapp import tls
from webapp.analysis.rig.idle import IDLE_BONES, idle_rig
from webapp.config import Config
from webapp.vmc import relay
from webapp.vmc.encode import to_unity_rotation
from webapp.vmc.relay import RETRY_FLOOR_S, Relay, Stop
from webapp.vmc.relay import run as run_relay
from webapp.vmc.relay_config import RelayConfig
from webapp.vmc.relay_config import parse as relay_parse
from webapp.vmc.sender import Target, VmcSender, parse_targets
from webapp.ws_close import sent_code

ROOT = Path(__file__).resolve().parents[1]
STEP_MS = 1000 / 15
# A port nothing listens on: the relay is refused there, or never gets that far.
NOWHERE = "ws://127.0.0.1:9/ws"


class RelayLog(logging.Handler):
    """The relay's log records, with an event to wait on for the next one."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        self.changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.changed.set()

    def lines(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]

    async def wait_for(self, found: Callable[[], bool]) -> None:
        async with asyncio.timeout(60):
            while not found():
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture(autouse=True)
def no_twins(monkeypatch: pytest.MonkeyPatch) -> None:
    """The relay's settings here are the tests' own, not a shell's HOLOTRACK_RELAY_WAIT=1."""
    for name in list(os.environ):
        if name.startswith("HOLOTRACK_RELAY_"):
            monkeypatch.delenv(name)


@pytest.fixture
def relay_log() -> Iterator[RelayLog]:
    handler = RelayLog()
    relay.log.addHandler(handler)
    relay.log.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        relay.log.removeHandler(handler)
        relay.log.setLevel(logging.NOTSET)


async def relay_cli(*args: str) -> tuple[int, str]:
    """`python -m webapp.vmc.relay *args` to its exit: (status, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "webapp.vmc.relay", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    try:
        async with asyncio.timeout(60):
            _, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, err.decode()


def ws_url(client: Client, path: str = "/ws") -> str:
    return str(client.make_url(path)).replace("http", "ws", 1)


async def relay_until_done(config: RelayConfig) -> int:
    async with asyncio.timeout(60):
        return await run_relay(config)


# -- arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize("to", ["999.1.1.1:39539", "nonexistent.invalid:39539"])
async def test_a_receiver_that_does_not_resolve_is_one_line_and_status_2(to: str) -> None:
    status, err = await relay_cli("--watch", NOWHERE, "--token", "t", "--to", to)
    assert status == 2
    assert "Traceback" not in err
    [line] = err.strip().splitlines()
    assert f"ERROR cannot send VMC to {to}: " in line


def test_good_arguments_still_parse() -> None:
    config = relay_parse(["--watch", "wss://[::1]:8443/ws", "--token", "t", "--retry-max", "0.5"])
    assert config.watch == "wss://[::1]:8443/ws"
    assert config.retry_max_s == 0.5
    for watch in ("ws://studio-pc.local:8080/ws", "wss://bücher.example/ws", "ws://10.0.0.2/ws"):
        assert relay_parse(["--watch", watch, "--token", "t"]).watch == watch


def test_each_flag_has_a_twin_in_the_environment_and_the_flag_wins() -> None:
    """A token in the environment stays out of `ps`, which shows a flag to every user."""
    environ = {
        "HOLOTRACK_RELAY_WATCH": "ws://studio-pc.local:8080/ws",
        "HOLOTRACK_RELAY_TOKEN": "from-env",
        "HOLOTRACK_RELAY_TO": "127.0.0.1:40000,127.0.0.1:40001",
        "HOLOTRACK_RELAY_RETRY_MAX": "2.5",
        "HOLOTRACK_RELAY_WAIT": "yes",
    }
    config = relay_parse([], environ)
    assert config.watch == "ws://studio-pc.local:8080/ws"
    assert config.token == "from-env"
    assert config.to == parse_targets("127.0.0.1:40000,127.0.0.1:40001")
    assert (config.retry_max_s, config.wait) == (2.5, True)
    flags = ["--watch", NOWHERE, "--token", "t", "--to", "127.0.0.1:39539", "--retry-max", "1"]
    config = relay_parse([*flags, "--wait=no"], environ)
    assert (config.watch, config.token, config.retry_max_s) == (NOWHERE, "t", 1.0)
    assert config.to == parse_targets("127.0.0.1:39539")
    assert config.wait is False
    assert relay_parse(["--watch", NOWHERE, "--token", "t"], {}).wait is False
    assert relay_parse(["--watch", NOWHERE, "--token", "t", "--wait"], {}).wait is True


def test_spaces_copied_around_the_token_are_not_sent() -> None:
    assert relay_parse(["--watch", NOWHERE, "--token", " tok\r\n"], {}).token == "tok"
    assert relay_parse(["--watch", NOWHERE], {"HOLOTRACK_RELAY_TOKEN": "tok "}).token == "tok"


@pytest.mark.parametrize(
    ("environ", "said"),
    [
        ({}, "--token [HOLOTRACK_RELAY_TOKEN] is empty or missing"),
        ({"HOLOTRACK_RELAY_TOKEN": "t", "HOLOTRACK_RELAY_WAIT": "maybe"}, "HOLOTRACK_RELAY_WAIT"),
        (
            {"HOLOTRACK_RELAY_TOKEN": "t", "HOLOTRACK_RELAY_RETRY_MAX": "0"},
            "--retry-max [HOLOTRACK_RELAY_RETRY_MAX]: must be a positive number",
        ),
        (
            {"HOLOTRACK_RELAY_TOKEN": "t", "HOLOTRACK_RELAY_CAFILE": "/nonexistent.pem"},
            "--cafile [HOLOTRACK_RELAY_CAFILE]: '/nonexistent.pem': not a PEM certificate",
        ),
    ],
)
def test_a_twin_missing_or_wrong_is_said_like_a_flag(
    environ: dict[str, str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        relay_parse(["--watch", NOWHERE], environ)
    assert exited.value.code == 2
    assert said in capsys.readouterr().err


def test_a_flag_that_is_no_boolean_says_what_it_takes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        relay_parse(["--watch", NOWHERE, "--token", "t", "--wait=maybe"], {})
    assert exited.value.code == 2
    said = capsys.readouterr().err
    assert "argument --wait: not a boolean: 'maybe'; use yes or no" in said, said
    assert "parse_bool" not in said


# -- reconnecting ---------------------------------------------------------------------------


async def test_a_5xx_answer_is_retried_but_never_faster_than_the_floor(
    relay_log: RelayLog,
) -> None:
    loop = asyncio.get_running_loop()
    hits: list[float] = []
    links: list[str | None] = []
    fifth = asyncio.Event()

    async def restarting(request: web.Request) -> web.Response:
        hits.append(loop.time())
        links.append(request.query.get("link"))
        if len(hits) == 5:
            fifth.set()
        return web.Response(status=503, text="restarting")

    app = web.Application()
    app.router.add_get("/ws", restarting)
    server = TestServer(app)
    await server.start_server()
    url = str(server.make_url("/ws")).replace("http", "ws", 1)
    # A config from code, not the command line, with no wait at all: each retry still waits.
    token = "Q0vXw0lH4mEy5xkTzB2bq4"
    task = asyncio.create_task(run_relay(RelayConfig(url, token, (Target("127.0.0.1", 9),), 0.0)))
    try:
        async with asyncio.timeout(30):
            await fifth.wait()
        assert not task.done()
    finally:
        task.cancel()
        await server.close()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Each wait at least the floor (the audit saw 4,400 tries in 3 s with --retry-max 0).
    assert min(b - a for a, b in itertools.pairwise(hits)) >= RETRY_FLOOR_S * 0.95
    # Each try names the link, so a balancer sends it to the replica that holds it.
    assert set(links) == {token}
    # Told in words, and not as the URL asked, whose ?link= is the watch token: aiohttp's
    # own words wrote it into the log at every retry.
    warning = relay_log.lines(logging.WARNING)[0]
    assert "the WebSocket upgrade was answered HTTP 503 Service Unavailable" in warning, warning
    assert token not in warning


async def test_a_password_in_the_watch_url_stays_out_of_the_log(relay_log: RelayLog) -> None:
    """wss://me:secret@host/ws (a proxy's Basic auth) was written out whole in every
    retry's warning."""
    url = f"ws://me:s3cret@127.0.0.1:{free_port()}/ws"
    task = asyncio.create_task(run_relay(RelayConfig(url, "t", (Target("127.0.0.1", 9),), 0.2)))
    try:
        await relay_log.wait_for(lambda: bool(relay_log.lines(logging.WARNING)))
    finally:
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    warning = relay_log.lines(logging.WARNING)[0]
    assert warning.startswith(f"cannot watch {url.replace('s3cret', '***')}: "), warning
    assert "s3cret" not in warning


async def test_a_server_that_never_answers_the_upgrade_is_retried(
    relay_log: RelayLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It accepts the connection and says nothing: each try gives up after the handshake
    timeout, with a warning, and the next one comes."""
    # raising=False: a relay without a handshake timeout must fail on the hang, not here.
    monkeypatch.setattr(relay, "HANDSHAKE_S", 0.3, raising=False)
    accepted: list[asyncio.StreamWriter] = []
    second = asyncio.Event()

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        if len(accepted) == 2:
            second.set()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"ws://127.0.0.1:{port}/ws"
    task = asyncio.create_task(run_relay(RelayConfig(url, "t", (Target("127.0.0.1", 9),), 0.2)))
    try:
        async with asyncio.timeout(30):
            await second.wait()
    finally:
        task.cancel()
        for writer in accepted:
            writer.close()
        server.close()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert relay_log.lines(logging.WARNING)[0] == (
        f"cannot watch {url}: no answer to the WebSocket upgrade within 0.3 s; retry in 0.2 s"
    )


async def test_a_wrong_path_fails_at_once(make_client: MakeClient, relay_log: RelayLog) -> None:
    client = await make_client(Config(workers=1))
    url = ws_url(client, "/wss")
    config = RelayConfig(url, "t", (Target("127.0.0.1", 9),), 0.2)
    assert await relay_until_done(config) == 1
    assert relay_log.lines(logging.ERROR) == [
        f"{url} answered HTTP 404 Not Found: --watch must be the server's /ws URL, "
        "ws(s)://HOST:PORT/ws"
    ]
    assert relay_log.lines(logging.WARNING) == []


@pytest.mark.parametrize("path", ["/", "/healthz", "/avatar?watch=t"])
async def test_a_page_instead_of_the_websocket_fails_at_once(
    make_client: MakeClient, relay_log: RelayLog, path: str
) -> None:
    """A page answers the upgrade with 200 (the avatar page's own URL, pasted from the
    browser, say): no later try can become a WebSocket."""
    client = await make_client(Config(workers=1))
    url = ws_url(client, path)
    config = RelayConfig(url, "t", (Target("127.0.0.1", 9),), 0.2)
    assert await relay_until_done(config) == 1
    assert relay_log.lines(logging.ERROR) == [
        f"{url} answered HTTP 200 OK, a page, not a WebSocket: --watch must be the server's "
        "/ws URL, ws(s)://HOST:PORT/ws"
    ]
    assert relay_log.lines(logging.WARNING) == []


async def test_the_relay_says_it_is_there_while_it_watches(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server hears nothing from a watcher that only listens, and its heartbeat cut the
    relay in a 20 s network drop that the camera rode out: the relay sends a keepalive."""
    monkeypatch.setattr(relay, "KEEPALIVE_S", 0.05)
    heard: list[str] = []

    async def server(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        assert json.loads((await ws.receive()).data)["type"] == "watch"
        await ws.send_json({"type": "watching", "session": "s1"})
        while len(heard) < 3:
            heard.append(json.loads((await ws.receive()).data)["type"])
        await ws.close(code=1000, message=b"the watched session ended: the client left")
        return ws

    app = web.Application()
    app.router.add_get("/ws", server)
    client = await aiohttp_client(app)
    config = RelayConfig(ws_url(client), "t", (Target("127.0.0.1", 9),), 0.2)
    assert await relay_until_done(config) == 0
    assert heard == ["keepalive"] * 3


async def test_with_wait_a_link_the_server_lacks_is_asked_for_at_a_steady_pace(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    monkeypatch: pytest.MonkeyPatch,
    relay_log: RelayLog,
) -> None:
    """After a server restart, a relay with --wait heard 4003 until the camera came back,
    and backed off each time as from a server that was down: it came back 8 s after the
    camera and the OBS view. A server that answers is asked again at LINK_POLL_S."""
    monkeypatch.setattr(relay, "LINK_POLL_S", 0.05)
    asked: list[float] = []
    fifth = asyncio.Event()

    async def server(request: web.Request) -> web.WebSocketResponse:
        asked.append(time.monotonic())
        if len(asked) == 5:
            fifth.set()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()
        await ws.close(code=4003, message=b"this watch link names no live session")
        return ws

    app = web.Application()
    app.router.add_get("/ws", server)
    client = await aiohttp_client(app)
    config = RelayConfig(ws_url(client), "t", (Target("127.0.0.1", 9),), 10.0, wait=True)
    task = asyncio.create_task(run_relay(config))
    try:
        async with asyncio.timeout(30):
            await fifth.wait()
    finally:
        task.cancel()
    # Backing off, the waits were 0.5, 1, 2 and 4 s, and a review found the first wait
    # after a restart still the backed-off one: now the first answer sets the pace.
    assert max(b - a for a, b in itertools.pairwise(asked)) < 0.4
    waiting = [line for line in relay_log.lines(logging.INFO) if "waiting for it" in line]
    assert len(waiting) == 1


# -- the token --------------------------------------------------------------------------------


async def test_a_bad_token_is_an_error_with_status_1(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1))
    await open_session(client, rig=True)
    status, err = await relay_cli(
        "--watch", ws_url(client), "--token", "nope", "--to", "127.0.0.1:9"
    )
    assert status == 1
    assert "Traceback" not in err
    assert "ERROR the server does not know this watch token (4003, unknown or expired" in err
    assert "check --token" in err


async def test_a_server_that_takes_no_watchers_is_an_error_with_status_1(
    make_client: MakeClient, relay_log: RelayLog
) -> None:
    """--max-watchers 0 closes each watcher with 1008: the relay asked again for ever, with a
    warning each time, for a place no wait would give it."""
    client = await make_client(Config(workers=1, max_watchers=0))
    config = RelayConfig(ws_url(client), "nope", (Target("127.0.0.1", 9),), 0.2)
    assert await relay_until_done(config) == 1
    [line] = relay_log.lines(logging.ERROR)
    assert line.startswith("the server takes no watchers, and a relay is one (1008: ")
    assert "--max-watchers 1 or more" in line
    assert relay_log.lines(logging.WARNING) == []


async def test_the_token_of_a_session_that_ended_is_an_error(
    make_client: MakeClient, relay_log: RelayLog
) -> None:
    client = await make_client(Config(workers=1))
    live, ready = await open_session(client, rig=True)
    # A watcher hears the end once the token is revoked.
    watcher = await client.ws_connect("/ws")
    await watcher.send_json({"type": "watch", "version": 1, "token": ready["watch"]})
    assert (await watcher.receive_json())["type"] == "watching"
    await live.ws.close()
    assert sent_code(watcher, await watcher.receive()) == 1000
    config = RelayConfig(ws_url(client), ready["watch"], (Target("127.0.0.1", 9),), 0.2)
    assert await relay_until_done(config) == 1
    [line] = relay_log.lines(logging.ERROR)
    assert line.startswith("the server does not know this watch token (4003")


async def test_a_session_ending_is_the_end_even_when_the_close_cannot_be_answered(
    make_client: MakeClient, relay_log: RelayLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI, 2026-12-06: the server's 1000 came with its connection already gone, aiohttp's
    reply to it failed and put 1006 in close_code, and the relay reconnected to a token that
    no longer was (status 1). The failure is forced here as aiohttp meets it then."""
    client = await make_client(Config(workers=1))
    live, ready = await open_session(client, rig=True)
    async with relaying(client, ready["watch"], 9) as task:
        await relay_log.wait_for(watching(relay_log))

        answer = WebSocketWriter.close
        camera = live.ws._writer

        async def connection_gone(writer: WebSocketWriter, *args: Any, **kwargs: Any) -> None:
            if not writer.use_mask or writer is camera:  # the server's or the camera's
                return await answer(writer, *args, **kwargs)
            raise aiohttp.ClientConnectionResetError("Cannot write to closing transport")

        monkeypatch.setattr(WebSocketWriter, "close", connection_gone)
        await live.ws.close()
        async with asyncio.timeout(60):
            assert await task == 0
    [line] = relay_log.lines(logging.INFO)[-1:]
    assert line.startswith("the watched session is over: the watched session ended")
    assert relay_log.lines(logging.ERROR) == []


async def test_a_self_signed_server_is_watched_with_its_certificate_given(
    tmp_path: Path, relay_log: RelayLog
) -> None:
    """The phone flow's server (--self-signed) seen from another machine: the relay retried
    its certificate failure for ever. Now one line says to give the certificate with
    --cafile, status 1; given it, the relay watches."""
    state, port = tmp_path / "state", free_port()
    url = f"wss://127.0.0.1:{port}/ws"
    async with serving(port, "--self-signed", "--state-dir", str(state)):
        cert = state / tls.CERT_FILE
        async with aiohttp.ClientSession() as http:
            camera = await http.ws_connect(url, ssl=ssl.create_default_context(cafile=cert))
            hello = {"type": "hello", "version": 1, "track": "pose", "fps": 5, "rig": True}
            await camera.send_json(hello)
            ready = await camera.receive_json(timeout=60)
            to = (Target("127.0.0.1", 9),)
            assert await relay_until_done(RelayConfig(url, ready["watch"], to, 0.2)) == 1
            [line] = relay_log.lines(logging.ERROR)
            assert "certificate is not one this machine trusts" in line
            assert "--cafile" in line

            # Token and certificate from the environment (the flags' twins), as a relay
            # kept out of `ps` is started.
            twins = {"HOLOTRACK_RELAY_TOKEN": ready["watch"], "HOLOTRACK_RELAY_CAFILE": str(cert)}
            config = relay_parse(["--watch", url], twins)
            assert config.ssl_context is not None
            watching = asyncio.create_task(run_relay(replace(config, to=to)))
            await relay_log.wait_for(
                lambda: any("watching session" in x for x in relay_log.lines(logging.INFO))
            )
            await camera.close()
            async with asyncio.timeout(60):
                assert await watching == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_trusted_certificate_for_other_names_says_to_copy_it_again(
    tmp_path: Path, relay_log: RelayLog, host: str
) -> None:
    """A --self-signed server whose addresses changed made a new certificate; the copy the
    relay trusts is the old one, for names this URL does not use (an address, then a name)."""
    elsewhere = tls.MachineNames(frozenset({"elsewhere.invalid"}), frozenset())
    made = tls.self_signed(tmp_path, elsewhere)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(
        silent, "127.0.0.1", 0, ssl=tls.server_context(made.cert, made.key)
    )
    url = f"wss://{host}:{server.sockets[0].getsockname()[1]}/ws"
    try:
        config = relay_parse(["--watch", url, "--token", "t", "--cafile", str(made.cert)])
        to = (Target("127.0.0.1", 9),)
        assert await relay_until_done(replace(config, to=to, retry_max_s=0.2)) == 1
    finally:
        server.close()
    [line] = relay_log.lines(logging.ERROR)
    assert f"the server's certificate does not name {host}" in line
    assert "copy its self-signed-cert.pem again" in line


async def test_wss_to_a_plain_http_server_says_to_watch_ws(relay_log: RelayLog) -> None:
    """wss:// for a server without TLS: the relay retried for ever, each try failing the
    same way. It stops at once, status 1, with the ws:// URL to watch."""

    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(plain, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        config = relay_parse(["--watch", f"wss://127.0.0.1:{port}/ws", "--token", "t"])
        to = (Target("127.0.0.1", 9),)
        assert await relay_until_done(replace(config, to=to, retry_max_s=0.2)) == 1
    finally:
        server.close()
    [line] = relay_log.lines(logging.ERROR)
    assert "the server answered in plain HTTP, not TLS" in line
    assert f"watch ws://127.0.0.1:{port}/ws" in line


async def test_ws_to_a_tls_server_says_to_watch_wss(tmp_path: Path, relay_log: RelayLog) -> None:
    """ws:// for a server that speaks TLS (--self-signed, --tls-cert): it hangs up on the
    plain request, and the relay retried for ever, "Server disconnected" each time. It
    stops at once, status 1, with the wss:// URL to watch."""
    made = tls.self_signed(tmp_path, tls.MachineNames(frozenset({"localhost"}), frozenset()))

    async def unreached(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(
        unreached, "127.0.0.1", 0, ssl=tls.server_context(made.cert, made.key)
    )
    port = server.sockets[0].getsockname()[1]
    try:
        config = relay_parse(["--watch", f"ws://127.0.0.1:{port}/ws", "--token", "t"])
        to = (Target("127.0.0.1", 9),)
        async with asyncio.timeout(20):
            assert await run_relay(replace(config, to=to, retry_max_s=0.2)) == 1
    finally:
        server.close()
    [line] = relay_log.lines(logging.ERROR)
    assert "the server speaks TLS, not plain HTTP" in line
    assert f"watch wss://127.0.0.1:{port}/ws" in line


async def test_a_cafile_that_is_no_certificate_is_refused_with_status_2(tmp_path: Path) -> None:
    junk = tmp_path / "cert.pem"
    junk.write_text("not a certificate")
    for cafile in (str(junk), str(tmp_path / "missing.pem")):
        status, err = await relay_cli("--watch", NOWHERE, "--token", "t", "--cafile", cafile)
        assert status == 2
        assert "not a PEM certificate file" in err
        assert "Traceback" not in err


async def test_a_token_that_goes_while_the_relay_is_away_is_told_apart() -> None:
    sender = await VmcSender.open(Target("127.0.0.1", 9))
    try:
        watcher = Relay(RelayConfig(NOWHERE, "t", (Target("127.0.0.1", 9),)), sender)
        watcher.watched = True
        with pytest.raises(Stop, match="no longer names a live session") as stopped:
            watcher._closed(4003, "this watch link names no live session")
        assert stopped.value.status == 1
        with pytest.raises(Stop, match="the watched session is over") as ended:
            watcher._closed(1000, "the watched session ended: the client left")
        assert ended.value.status == 0
    finally:
        sender.close()


# -- what the relay cannot read ---------------------------------------------------------------


async def test_messages_the_relay_cannot_read_cost_a_frame_each_not_the_relay(
    relay_log: RelayLog,
) -> None:
    """A server of another version, or a proxy that mangles, sent messages that ended the
    relay with a traceback; each now costs its frame, with one warning, and the next
    rig goes out."""
    rest = idle_rig()
    unreadable = [
        "[1, 2]",
        "not json",
        json.dumps({"type": "result", "rig": {"bones": {"hips": [0, 0, 1]}}}),
        json.dumps({"type": "result", "rig": {"bones": None}}),
        json.dumps({"type": "result", "rig": {**rest, "expressions": {"aa": 1e300}}}),
    ]

    async def serve(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive_json()  # the watch
        await ws.send_json({"type": "watching", "session": "s1"})
        for text in unreadable:
            await ws.send_str(text)
        await ws.send_json({"type": "result", "rig": rest})
        await ws.receive()  # open until the test is done
        return ws

    app = web.Application()
    app.router.add_get("/ws", serve)
    server = TestServer(app)
    await server.start_server()
    url = str(server.make_url("/ws")).replace("http", "ws", 1)
    async with vmc_receiver() as (port, received):
        task = asyncio.create_task(run_relay(RelayConfig(url, "t", (Target("127.0.0.1", port),))))
        try:
            await received.wait_frames(1)
            assert not task.done()
        finally:
            task.cancel()
            await server.close()
    warnings = relay_log.lines(logging.WARNING)
    assert len(warnings) == 1, warnings
    assert "the relay cannot read" in warnings[0]


# -- a session without a rig ------------------------------------------------------------------


async def open_session(client: Client, **options: Any) -> tuple[LiveClient, dict[str, Any]]:
    live = await LiveClient.connect(client)
    return live, await live.hello("holistic", 15, **options)


@asynccontextmanager
async def relaying(client: Client, token: str, port: int) -> AsyncIterator[asyncio.Task[int]]:
    config = RelayConfig(ws_url(client), token, (Target("127.0.0.1", port),), 0.2)
    task = asyncio.create_task(run_relay(config))
    try:
        yield task
    finally:
        if not task.done():
            task.cancel()


def watching(log: RelayLog) -> Callable[[], bool]:
    return lambda: any(line.startswith("watching session") for line in log.lines(logging.INFO))


async def test_a_session_without_a_rig_is_warned_of_once(
    make_client: MakeClient, relay_log: RelayLog
) -> None:
    client = await make_client(Config(workers=1))
    live, ready = await open_session(client)  # no "rig": true
    frames = video_frames(ASL_VIDEO)
    async with vmc_receiver() as (port, received), relaying(client, ready["watch"], port) as task:
        await relay_log.wait_for(watching(relay_log))
        seq = 0
        while not relay_log.lines(logging.WARNING):
            await live.send(seq, seq * STEP_MS, frames[seq % len(frames)])
            await live.next_of("result")
            seq += 1
            assert seq < 300, "the relay never said the results carry no rig"
        for more in range(seq, seq + 5):
            await live.send(more, more * STEP_MS, frames[more % len(frames)])
            await live.next_of("result")
        await live.ws.close()
        async with asyncio.timeout(60):
            assert await task == 0
    assert relay_log.lines(logging.WARNING) == [relay.NO_RIG]
    assert received.frames == 0


async def test_results_with_no_one_in_view_are_no_reason_to_warn(
    make_client: MakeClient, relay_log: RelayLog
) -> None:
    client = await make_client(Config(workers=1))
    live, ready = await open_session(client, rig=True)
    ok, empty = cv2.imencode(".jpg", np.zeros((360, 480, 3), np.uint8))
    assert ok
    person = video_frames(ASL_VIDEO)[0]
    async with vmc_receiver() as (port, received), relaying(client, ready["watch"], port) as task:
        await relay_log.wait_for(watching(relay_log))
        for seq in range(5):
            await live.send(seq, seq * STEP_MS, empty.tobytes())
            result = await live.next_of("result")
            assert result["landmarks"]["pose"] is None
            assert "rig" not in result
        # Results reach the relay in order: once a rig arrives, the empty ones were read.
        await live.send(5, 5 * STEP_MS, person)
        assert "rig" in await live.next_of("result")
        await received.wait_frames(1)
        await live.ws.close()
        async with asyncio.timeout(60):
            assert await task == 0
    assert relay_log.lines(logging.WARNING) == []


# -- stopping ---------------------------------------------------------------------------------


def default_signals() -> None:
    # As from a terminal or a service manager: a test run as a shell's background job would
    # otherwise hand the relay its ignored SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def left_arm(received: Received) -> tuple[Any, ...]:
    (rotation,) = [
        args[4:]
        for address, args in received.last_frame()
        if address == "/VMC/Ext/Bone/Pos" and args[0] == "LeftUpperArm"
    ]
    return rotation


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
async def test_a_signal_stops_the_relay_with_the_receivers_at_rest(
    make_client: MakeClient, signum: signal.Signals, status: int
) -> None:
    """kill, systemd and docker stop send SIGTERM, Ctrl-C SIGINT: either way the avatar is
    left at rest, not frozen mid-gesture, and the relay says why it stopped. The relay runs
    with only its light install importable, as on a PC at home (tests/light_relay.py)."""
    client = await make_client(Config(workers=1))
    live, ready = await open_session(client, rig=True)
    frames = video_frames(ASL_VIDEO)
    idle = to_unity_rotation(IDLE_BONES["leftUpperArm"])
    async with vmc_receiver() as (port, received):
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "tests" / "light_relay.py"), "--watch", ws_url(client),
            f"--token={ready['watch']}", "--to", f"127.0.0.1:{port}",
            stderr=asyncio.subprocess.PIPE, cwd=ROOT, preexec_fn=default_signals,
        )  # fmt: skip
        try:
            seq = 0
            # Bounded by time, not frames: a loaded host starts the relay's interpreter
            # slowly while the frames run on (300 frames once went by before it watched).
            deadline = asyncio.get_running_loop().time() + 90.0
            while received.frames < 3:
                await live.send(seq, seq * STEP_MS, frames[seq % len(frames)])
                await live.next_of("result")
                seq += 1
                if process.returncode is not None or asyncio.get_running_loop().time() > deadline:
                    if process.returncode is None:
                        process.kill()
                    _, err = await process.communicate()
                    pytest.fail(f"the relay forwarded nothing after {seq} frames: {err.decode()}")
            assert left_arm(received) != pytest.approx(idle, abs=1e-3)
            process.send_signal(signum)
            async with asyncio.timeout(30):
                _, err = await process.communicate()
            await received.wait_until(lambda: left_arm(received) == pytest.approx(idle, abs=1e-4))
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == status
    lines = err.decode().strip().splitlines()
    assert "Traceback" not in err.decode()
    assert lines[-1].endswith(f"INFO stopped by {signum.name}")
    assert sum("stopped by" in line for line in lines) == 1
