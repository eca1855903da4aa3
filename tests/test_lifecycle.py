"""The server as an operator runs it: a real process, stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys

import aiohttp

from tests.live import frame_message, video_frames
from tests.media import ASL_VIDEO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_until_serving(proc: asyncio.subprocess.Process) -> list[bytes]:
    """Reads the server's log until it says it is listening."""
    assert proc.stderr is not None
    lines: list[bytes] = []
    while True:
        line = await asyncio.wait_for(proc.stderr.readline(), 120)
        assert line, b"".join(lines).decode()
        lines.append(line)
        if b"Running on" in line:
            return lines


async def test_sigterm_closes_every_session_with_1001_and_exits() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "webapp",
        "--port",
        str(port),
        "--workers",
        "1",
        "--min-session-fps",  # two sessions on one worker, whatever the host's speed
        "0",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as http:
            await wait_until_serving(proc)
            sockets = []
            for _ in range(2):
                ws = await http.ws_connect(f"http://127.0.0.1:{port}/ws")
                await ws.send_json({"type": "hello", "version": 1, "track": "pose", "fps": 10})
                assert (await ws.receive_json())["type"] == "ready"
                await ws.send_bytes(frame_message(0, 0.0, video_frames(ASL_VIDEO)[0]))
                sockets.append(ws)
            proc.send_signal(signal.SIGTERM)
            for ws in sockets:
                while True:
                    msg = await ws.receive()
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                        break
                assert ws.close_code == 1001
                assert "shutting down" in str(msg.extra)
        code = await asyncio.wait_for(proc.wait(), 15)
        assert code == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if proc.stderr is not None:
            errors = await proc.stderr.read()
            assert b"Traceback" not in errors, errors.decode()[-2000:]
