"""`python -m webapp.healthcheck`, the image's HEALTHCHECK, against real servers."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bench.common import free_port
from tests.test_lifecycle import serving
from webapp import healthcheck
from webapp.config import load_config
from webapp.healthcheck import health_url


async def check(environ: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "webapp.healthcheck",
        env={**os.environ, **environ},
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_a_server_with_a_certificate_is_healthy(tmp_path: Path) -> None:
    port = free_port()
    state = str(tmp_path / "state")
    async with serving(port, "--self-signed", "--state-dir", state):
        environ = {
            "HOLOTRACK_PORT": str(port),
            "HOLOTRACK_SELF_SIGNED": "1",
            "HOLOTRACK_STATE_DIR": state,
        }
        assert await check(environ) == (0, "")


async def test_a_server_on_every_ipv6_address_is_healthy() -> None:
    """Listening on "::" is IPv6 alone (asyncio sets IPV6_V6ONLY): asked at 127.0.0.1, the
    server was unhealthy for ever."""
    port = free_port()
    async with serving(port, "--host", "::"):
        assert await check({"HOLOTRACK_PORT": str(port), "HOLOTRACK_HOST": "::"}) == (0, "")


async def test_a_plain_server_is_healthy_and_no_server_is_not() -> None:
    port = free_port()
    async with serving(port):
        assert await check({"HOLOTRACK_PORT": str(port)}) == (0, "")
    status, said = await check({"HOLOTRACK_PORT": str(port)})
    assert status == 1
    assert f"http://127.0.0.1:{port}/healthz" in said


async def test_a_proxy_set_for_outgoing_traffic_is_not_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A container's HTTP_PROXY sent the check for 127.0.0.1 to the proxy: a server
    answering /healthz was marked unhealthy."""

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    nobody = free_port()
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{nobody}")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    try:
        argv = ["--port", str(server.port)]
        assert await asyncio.to_thread(healthcheck.main, argv) == 0
    finally:
        await server.close()


async def test_a_keys_file_broken_since_the_start_leaves_the_server_healthy(
    tmp_path: Path,
) -> None:
    """The server refuses a bad keys file on reload and keeps the keys in force; the
    health check read the file anew, exited 2, and the container was marked unhealthy (and
    replaced by one that would not start)."""
    keys = tmp_path / "keys.jsonl"
    keys.write_text('{"name": "studio-a", "key": "' + "k" * 32 + '"}\n')
    port = free_port()
    async with serving(port, "--access-keys", str(keys)):
        keys.write_text('{"name": "bad key!", "key": "short"}\n')
        environ = {"HOLOTRACK_PORT": str(port), "HOLOTRACK_ACCESS_KEYS": str(keys)}
        assert await check(environ) == (0, "")


@pytest.mark.parametrize(
    ("argv", "url"),
    [
        (["--host", "0.0.0.0"], "http://127.0.0.1:8080/healthz"),
        (["--host", "::", "--port", "9000"], "http://[::1]:9000/healthz"),
        (["--host", "::1", "--self-signed"], "https://[::1]:8080/healthz"),
        (["--self-signed", "--local-http-port", "8081"], "http://127.0.0.1:8081/healthz"),
    ],
)
def test_the_url_follows_where_the_server_listens(argv: list[str], url: str) -> None:
    assert health_url(load_config(argv, environ={})) == url


def test_its_help_names_itself_and_what_it_answers(capsys: pytest.CaptureFixture[str]) -> None:
    """It printed the server's own help, "usage: python -m webapp", for the check."""
    with pytest.raises(SystemExit) as stopped:
        healthcheck.main(["--help"])
    assert stopped.value.code == 0
    said = capsys.readouterr().out
    assert said.startswith("usage: python -m webapp.healthcheck ")
    assert "answers /healthz" in said
    assert "--port PORT" in said  # the server's flags, which say where it listens
