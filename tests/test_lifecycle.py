"""The server as an operator runs it: a real process, stopped with SIGTERM.

`serving` is how every test here and elsewhere (TLS, key reloads) starts one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest

from bench.common import free_port
from tests.live import frame_message, video_frames
from tests.media import ASL_VIDEO, GESTURE_VIDEO, PERSON_JPEG
from webapp.config import Config
from webapp.engine.process import ChildLogs
from webapp.ws_close import sent_code


def webapp_command(port: int, *flags: str) -> list[str]:
    """`python -m webapp` with one worker on 127.0.0.1:`port`, and `flags`."""
    return [sys.executable, "-m", "webapp", "--port", str(port), "--workers", "1", *flags]


class Server:
    """A running server and its log (stderr), read line by line up to what a test waits for."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        self.proc = proc
        self._stderr = proc.stderr
        self.lines: list[str] = []

    async def wait_for(self, words: str) -> str:
        while True:
            raw = await asyncio.wait_for(self._stderr.readline(), 120)
            assert raw, "the server exited:\n" + "".join(self.lines)
            line = raw.decode()
            self.lines.append(line)
            if words in line:
                return line

    async def rest(self) -> str:
        """The whole log, once the server has exited."""
        self.lines.append((await self._stderr.read()).decode())
        return "".join(self.lines)


@asynccontextmanager
async def serving(port: int, *flags: str) -> AsyncIterator[Server]:
    """`webapp_command(port, *flags)`, from the moment its log says it is listening. Stopped
    with SIGTERM at the end unless the test stopped it, after which it must exit with 0."""
    proc = await asyncio.create_subprocess_exec(
        *webapp_command(port, *flags),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        server = Server(proc)
        await server.wait_for("Running on")
        yield server
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_an_empty_host_is_logged_as_every_interface_it_listens_on() -> None:
    """An empty --host (HOLOTRACK_HOST= in a compose file) listens on IPv6 too, which the
    log, "Running on http://0.0.0.0:PORT", did not say."""
    port = free_port()
    async with serving(port, "--host", "") as server:
        (line,) = [line for line in server.lines if "Running on" in line]
        assert f"http://0.0.0.0:{port} and http://[::]:{port}" in line
        async with aiohttp.ClientSession() as http, http.get(f"http://[::1]:{port}/healthz") as got:
            assert got.status == 200


async def test_sigterm_closes_every_session_and_watcher_with_1001_and_exits() -> None:
    """1001, not 1000, for the watchers too: their sessions did not end, and a coach's card
    waits for a kept link to come back with its camera when the server is back. A session
    counting an exercise gets its workout last, for its log, as when its client ends it."""
    port = free_port()
    # Two sessions on one worker, whatever the host's speed.
    async with serving(port, "--min-session-fps", "0") as server:
        async with aiohttp.ClientSession() as http:
            sockets = []
            for exercise in ("squat", None):
                ws = await http.ws_connect(f"http://127.0.0.1:{port}/ws")
                hello = {"type": "hello", "version": 1, "track": "pose", "fps": 10}
                await ws.send_json(hello | ({"exercise": exercise} if exercise else {}))
                ready = await ws.receive_json()
                assert ready["type"] == "ready"
                await ws.send_bytes(frame_message(0, 0.0, video_frames(ASL_VIDEO)[0]))
                sockets.append(ws)
            watcher = await http.ws_connect(f"http://127.0.0.1:{port}/ws")
            await watcher.send_json({"type": "watch", "version": 1, "token": ready["watch"]})
            assert (await watcher.receive_json())["type"] == "watching"
            sockets.append(watcher)
            server.proc.send_signal(signal.SIGTERM)

            async def last_before_close(ws: aiohttp.ClientWebSocketResponse) -> str | None:
                last = None
                while True:
                    msg = await ws.receive()
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                        break
                    last = json.loads(msg.data)["type"]
                assert sent_code(ws, msg) == 1001
                assert "shutting down" in str(msg.extra)
                return last

            # Each read as its own client would: read one after another, a socket whose
            # close frame waited behind the others' was answered after the server exited
            # (1006 at the client, though the server had sent 1001).
            lasts = await asyncio.gather(*map(last_before_close, sockets))
            assert lasts[0] == "workout"
            assert "workout" not in lasts[1:]
        assert await asyncio.wait_for(server.proc.wait(), 15) == 0
    errors = await server.rest()
    assert "Traceback" not in errors, errors[-2000:]
    # The sessions' end lines follow the reason they ended; the last line says it is done.
    assert "SIGTERM: shutting down" in errors, errors[-2000:]
    assert errors.index("SIGTERM: shutting down") < errors.index("code=1001")
    assert "shut down in " in errors.strip().splitlines()[-1], errors[-2000:]


async def test_a_video_stopped_by_sigterm_ends_with_its_summary() -> None:
    """aiohttp cancelled a running video's handler at shutdown: the client's stream was cut
    short with no summary, and the end line said 'left by its client' while the client was
    still reading. It stops between two frames with a summary saying why."""
    port = free_port()
    async with serving(port) as server, aiohttp.ClientSession() as http:
        answer = await http.post(
            f"http://127.0.0.1:{port}/api/video",
            data=ASL_VIDEO.read_bytes(),
            headers={"Content-Type": "video/mp4"},
        )
        assert answer.status == 200
        assert (await answer.content.readline()).startswith(b'{"frame":')
        server.proc.send_signal(signal.SIGTERM)
        rest = [json.loads(line) for line in (await answer.read()).splitlines()]
        assert await asyncio.wait_for(server.proc.wait(), 30) == 0
    summary = rest[-1]["summary"]
    assert summary["complete"] is False
    assert summary["error"]["error"] == "busy"
    assert summary["error"]["detail"].startswith("the server is shutting down: the video stopped")
    log = await server.rest()
    ends = [line for line in log.splitlines() if ": video " in line and "frames" in line]
    assert any("the server is shutting down" in line for line in ends), ends
    assert not any("left by its client" in line for line in ends), ends
    assert not any("WARNING" in line for line in ends), ends  # a stop, not a failure


async def test_sighup_without_a_keys_file_leaves_the_server_running() -> None:
    """SIGHUP's default action ends the process: a fleet's routine reload (systemd's
    ExecReload=kill -HUP) killed every server that had no keys file, its sessions with it."""
    port = free_port()
    async with serving(port) as server, aiohttp.ClientSession() as http:
        server.proc.send_signal(signal.SIGHUP)
        await server.wait_for("SIGHUP: no keys file to re-read")
        async with http.get(f"http://127.0.0.1:{port}/healthz") as answer:
            assert answer.status == 200
        assert server.proc.returncode is None


async def abandon_upload(port: int, path: str, content_type: str) -> None:
    """Starts an upload, waits until its handler reads the body (100 Continue), sends part
    of it and leaves."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: holotrack\r\nContent-Type: {content_type}\r\n"
        "Content-Length: 100000\r\nExpect: 100-continue\r\n\r\n"
    )
    writer.write(head.encode())
    assert (await reader.readline()).startswith(b"HTTP/1.1 100")
    await reader.readline()
    writer.write(bytes(5000))
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_a_client_that_leaves_mid_upload_leaves_no_traceback() -> None:
    port = free_port()
    async with serving(port) as server:
        await abandon_upload(port, "/predict", "image/jpeg")
        await abandon_upload(port, "/api/video", "video/mp4")
        await abandon_upload(port, "/api/export?format=csv", "application/x-ndjson")
        async with aiohttp.ClientSession() as http:
            ok = await http.post(
                f"http://127.0.0.1:{port}/predict",
                data=PERSON_JPEG.read_bytes(),
                headers={"Content-Type": "image/jpeg"},
            )
            assert ok.status == 200
    log = await server.rest()
    assert "Traceback" not in log, log[-3000:]
    assert "Error handling request" not in log, log[-3000:]


async def leave_a_video(port: int, body: bytes, after_s: float) -> None:
    """Uploads the whole of `body` to /api/video and leaves `after_s` after it is sent."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        "POST /api/video HTTP/1.1\r\nHost: holotrack\r\nContent-Type: video/mp4\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    await asyncio.sleep(after_s)
    writer.close()
    await writer.wait_closed()


async def test_clients_that_leave_as_their_videos_start_leave_the_server_up() -> None:
    """A client that leaves cancels its handler wherever it is: often while the first frame
    or the one ahead decodes on its thread, and the cleanup then closes the reader. Until
    the reader waited for its frame, FFmpeg aborted the whole server within a few of these
    (2026-12-03). The sleep is not a wait: it sweeps the moment of leaving across the
    spooling, the opening and the first frames (0 to 15 ms after the upload)."""
    port = free_port()
    body = GESTURE_VIDEO.read_bytes()
    async with serving(port) as server:
        async with aiohttp.ClientSession() as http:
            for step in range(31):
                await leave_a_video(port, body, step * 0.0005)
                assert (await http.get(f"http://127.0.0.1:{port}/healthz")).status == 200
            ok = await http.post(
                f"http://127.0.0.1:{port}/predict",
                data=PERSON_JPEG.read_bytes(),
                headers={"Content-Type": "image/jpeg"},
            )
            assert ok.status == 200
        assert server.proc.returncode is None
    log = await server.rest()
    assert "Traceback" not in log, log[-3000:]


async def raw_request(port: int, head: bytes) -> bytes:
    """The status line the server answers `head` with."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    await writer.drain()
    status = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return status


async def test_a_malformed_request_is_the_clients_error_in_the_log() -> None:
    port = free_port()
    malformed = {
        "a header line over the limit": b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 20000 + b"\r\n\r\n",
        "a header without a colon": b"GET / HTTP/1.1\r\nHost: holotrack\r\nno colon\r\n\r\n",
        "a bad request line": b"GET /\x00 HTTP/1.1\r\n\r\n",
    }
    async with serving(port) as server:
        for name, head in malformed.items():
            assert (await raw_request(port, head)).split(b" ")[1] == b"400", name
        async with aiohttp.ClientSession() as http:
            assert (await http.get(f"http://127.0.0.1:{port}/healthz")).status == 200
    log = await server.rest()
    said = [line for line in log.splitlines() if "malformed request" in line]
    assert len(said) == len(malformed), log[-3000:]
    assert all(" INFO " in line for line in said), said
    # One line each: what aiohttp quoted and pointed at is folded into it.
    assert "b'no colon' ^" in said[1]
    assert "Traceback" not in log, log[-3000:]
    assert " ERROR " not in log, log[-3000:]


async def test_a_malformed_request_is_logged_without_the_secrets_it_carried() -> None:
    """aiohttp quotes the line it could not parse, and the log kept it: the access key of
    a URL with an unencoded character in its query, or of an Authorization header with a
    stray byte, in clear, and a link's watch token."""
    port = free_port()
    key = b"SECRET-ACCESS-KEY-1234567890"
    token = b"SECRET-WATCH-TOKEN-123456"
    malformed = [
        b"GET /ws?key=" + key + b"&name=caf\xc3\xa9 x HTTP/1.1\r\nHost: h\r\n\r\n",
        b"POST /predict HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer " + key + b"\x7f\r\n\r\n",
        b"GET /avatar/link/" + token + b".vrm\x01 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"PUT /api/emotion/- HTTP/1.1\r\nHost: h\r\nHolotrack-Resume: " + token + b"\x01\r\n\r\n",
        b"GET /ws?watcher=1&link=" + token + b"&pad=" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",
        b"POST /predict HTTP/1.1\r\nHost: h\r\nAuthorization : Bearer " + key + b"\r\n\r\n",
        b"GET /ws?key=" + key[:6] + b"\x01" + key[6:] + b" HTTP/1.1\r\nHost: h\r\n\r\n",
    ]
    async with serving(port) as server:
        for head in malformed:
            assert (await raw_request(port, head)).split(b" ")[1] == b"400", head[:40]
    log = await server.rest()
    said = [line for line in log.splitlines() if "malformed request" in line]
    assert len(said) == len(malformed), log[-3000:]
    assert "key=-&name" in said[0], said
    assert "Authorization: -" in said[1], said
    assert "/avatar/link/-" in said[2], said
    assert "Holotrack-Resume: -" in said[3], said
    assert "link=-&pad" in said[4], said
    # A space before the colon, and a stray byte inside the key, left them in clear.
    assert "Authorization: -" in said[5], said
    assert "key=- HTTP" in said[6], said
    assert key.decode() not in log, said
    assert key[6:].decode() not in log, said
    assert token.decode() not in log, said


async def trickle(writer: asyncio.StreamWriter, data: bytes, sent: list[int]) -> None:
    """Sends `data` a byte at a time, five a second, until the server hangs up; each byte
    sent goes into `sent`."""
    with contextlib.suppress(ConnectionError):
        for byte in data:
            writer.write(bytes([byte]))
            await writer.drain()
            sent.append(byte)
            await asyncio.sleep(0.2)


async def test_a_connection_without_a_whole_request_is_closed_after_the_keepalive() -> None:
    """aiohttp's AppRunner keeps an idle connection for 3630 s (run_app's 75 s was lost
    with it): one that sent nothing, or trickled its headers, held its socket for an hour.
    A live session, whose request is in progress, lasts past it."""
    port = free_port()
    async with serving(port, "--keepalive-timeout", "1") as server:
        # The session's connection opened first, so that its keepalive has passed when the
        # others' have: its frame is answered after that.
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"http://127.0.0.1:{port}/ws") as ws,
        ):
            await ws.send_json({"type": "hello", "version": 1, "track": "pose"})
            assert (await ws.receive_json())["type"] == "ready"
            silent = await asyncio.open_connection("127.0.0.1", port)
            slow = await asyncio.open_connection("127.0.0.1", port)
            head = b"GET /healthz HTTP/1.1\r\nHost: holotrack\r\nX-Slow: " + b"a" * 100
            sent: list[int] = []
            trickling = asyncio.create_task(trickle(slow[1], head, sent))
            # Both are cut with nothing said: neither asked anything to answer.
            assert await asyncio.wait_for(silent[0].read(), 10) == b""
            assert await asyncio.wait_for(slow[0].read(), 10) == b""
            assert 0 < len(sent) < len(head)
            trickling.cancel()
            frame = frame_message(1, 0.0, video_frames(ASL_VIDEO, count=1)[0])
            await ws.send_bytes(frame)
            while (await ws.receive_json())["type"] != "result":
                pass
        for writer in (silent[1], slow[1]):
            writer.close()
    log = await server.rest()
    assert "Traceback" not in log, log[-3000:]


async def test_an_expect_header_that_is_not_utf8_is_one_info_line() -> None:
    """aiohttp fails on its own refusal of such a header, still used on a path no route
    serves (every route's is http_errors.expect, a JSON 417): each request was a 500 and a
    traceback of 20 lines at ERROR, for anyone to repeat as fast as they can send."""
    port = free_port()
    head = b"GET /nothing-here HTTP/1.1\r\nHost: holotrack\r\nExpect: \xff\r\n\r\n"
    served = b"GET /healthz HTTP/1.1\r\nHost: holotrack\r\nExpect: \xff\r\n\r\n"
    async with serving(port) as server:
        assert (await raw_request(port, served)).split(b" ")[1] == b"417"
        for _ in range(3):
            assert (await raw_request(port, head)).split(b" ")[1] == b"500"
        async with aiohttp.ClientSession() as http:
            assert (await http.get(f"http://127.0.0.1:{port}/healthz")).status == 200
    log = await server.rest()
    said = [line for line in log.splitlines() if "Expect header" in line]
    assert len(said) == 3, log[-3000:]
    assert all(" INFO " in line for line in said), said
    # Once each, after whom it came from (it was said twice, with no "from").
    assert all(line.count("Expect header") == 1 for line in said), said
    assert all("Error handling request from 127.0.0.1: an Expect" in line for line in said), said
    assert "Traceback" not in log, log[-3000:]
    assert " ERROR " not in log, log[-3000:]


async def test_a_handshake_asking_for_subprotocols_is_one_short_info_line() -> None:
    """aiohttp logged each such handshake at WARNING, quoting every name it asked for: a
    header of 5 KB was a WARNING line of 5 KB per connection, for anyone to repeat."""
    port = free_port()
    names = ", ".join(f"protocol-{n}" for n in range(400))
    async with serving(port) as server, aiohttp.ClientSession() as http:
        headers = {"Sec-WebSocket-Protocol": names}
        async with http.ws_connect(f"http://127.0.0.1:{port}/ws", headers=headers) as ws:
            await ws.send_json({"type": "hello", "version": 1, "track": "pose"})
            assert (await ws.receive_json())["type"] == "ready"
            assert ws.protocol is None
    log = await server.rest()
    (said,) = [line for line in log.splitlines() if "subprotocols" in line]
    assert " INFO " in said, said
    assert len(said) < 300, said
    assert " WARNING " not in log, log[-3000:]


async def test_a_workers_own_log_lines_are_in_the_servers_format() -> None:
    """With --log-format json a worker's Python lines (a failed job's traceback, the one the
    HolotrackServerErrors alert sends an operator to read) were text among the JSON."""
    assert ChildLogs.of(Config(log_format="json")).args() == ["--log-format", "json"]
    code = (
        "import logging\n"
        "from webapp.engine.child import _quiet_native_logs\n"
        "_quiet_native_logs(False, 'json')\n"
        "try:\n"
        "    raise ValueError('a frame it could not take')\n"
        "except ValueError:\n"
        "    logging.getLogger('webapp.engine.worker').exception('job 7 failed')\n"
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(child.communicate(), 60)
    assert child.returncode == 0
    [line] = err.decode().splitlines()
    said = json.loads(line)
    assert (said["levelname"], said["message"]) == ("ERROR", "job 7 failed")
    assert "ValueError: a frame it could not take" in said["exc_info"]


# How a worker fails its start, and the words that say it: its module does not exist (it
# exits with 1), or it is given up on before its model is loaded.
START_FAILURES = {
    "dead": (
        "process.CHILD_MODULE = 'tests.no_such_module'",
        "inference worker 0 exited with code 1 before it was ready",
    ),
    "slow": ("process.START_TIMEOUT = 0.01", "inference worker 0 was not ready within 0.01 s"),
}


@pytest.mark.parametrize("how", START_FAILURES)
@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_a_worker_that_fails_as_the_server_starts_is_said_in_one_line(
    log_format: str, how: str
) -> None:
    """A worker that ended before it was ready (killed as it loaded its model in a container
    short of memory, a broken install) ended the start with a traceback whose last line was
    "RuntimeError: worker 0 failed to start: None", exit status 1; one slower than the
    start's limit, with a bare TimeoutError's. In JSON logs, a text traceback a collector
    drops."""
    fault, said = START_FAILURES[how]
    start = (
        f"from webapp.engine import process\n{fault}\nfrom webapp.__main__ import main\nmain()\n"
    )
    flags = ["--port", str(free_port()), "--workers", "1", "--log-format", log_format]
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", start, *flags, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(server.communicate(), 120)
    log = err.decode()
    assert server.returncode == 2, log
    assert "Traceback" not in log, log
    last = log.splitlines()[-1]
    if log_format == "text":
        assert last == f"python -m webapp: error: {said}"
    else:
        assert json.loads(last)["message"] == f"cannot start: {said}"
