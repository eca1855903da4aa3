"""--access-keys as an operator uses it: a real server process, its keys file edited and
re-read on a real SIGHUP while sessions stay live."""

from __future__ import annotations

import json
import secrets
import signal
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import free_port
from tests.live import frame_message, video_frames
from tests.media import ASL_VIDEO
from tests.test_lifecycle import serving
from webapp.ws_close import sent_code

KEY_A = secrets.token_urlsafe(24)
KEY_B = secrets.token_urlsafe(24)


def write_keys(path: Path, *records: dict[str, Any]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


async def open_session(http: aiohttp.ClientSession, url: str, key: str) -> Any:
    ws = await http.ws_connect(url)
    await ws.send_json({"type": "hello", "version": 1, "track": "pose", "fps": 5, "key": key})
    return ws


async def next_message(ws: Any) -> tuple[str, Any]:
    """('ready' | 'result' | ..., message) or ('closed', (code, reason))."""
    while True:
        msg = await ws.receive()
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            return "closed", (sent_code(ws, msg), str(msg.extra or ""))
        if msg.type is aiohttp.WSMsgType.TEXT:
            message = json.loads(msg.data)
            if message["type"] not in {"stats", "turn"}:
                return str(message["type"]), message


async def roundtrip(ws: Any, seq: int) -> None:
    """One frame in, its result out: the session is live and served."""
    await ws.send_bytes(frame_message(seq, seq * 200.0, video_frames(ASL_VIDEO)[seq % 10]))
    kind, message = await next_message(ws)
    assert kind == "result", message
    assert message["seq"] == seq


async def test_sighup_rereads_the_keys_keeps_sessions_and_applies_new_limits(
    tmp_path: Path,
) -> None:
    keys = tmp_path / "keys.jsonl"
    write_keys(keys, {"name": "studio-a", "key": KEY_A, "max_sessions": 1})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with serving(port, "--access-keys", str(keys)) as server:
        loaded = [line for line in server.lines if "access keys:" in line]
        assert loaded, server.lines
        assert "1 keys from" in loaded[0]
        async with aiohttp.ClientSession() as http:
            first = await open_session(http, f"{url}/ws", KEY_A)
            assert (await next_message(first))[0] == "ready"
            await roundtrip(first, 0)
            refused = await open_session(http, f"{url}/ws", KEY_A)
            kind, (code, reason) = await next_message(refused)
            assert (kind, code) == ("closed", 1013)
            assert "max_sessions" in reason

            # A second key, and studio-a may now hold two sessions.
            write_keys(
                keys,
                {"name": "studio-a", "key": KEY_A, "max_sessions": 2},
                {"name": "guest-b", "key": KEY_B, "predict_per_minute": 0},
            )
            server.proc.send_signal(signal.SIGHUP)
            assert "studio-a, guest-b" in await server.wait_for("access keys: reloaded 2 keys")
            await roundtrip(first, 1)  # the live session never noticed
            second = await open_session(http, f"{url}/ws", KEY_A)
            assert (await next_message(second))[0] == "ready"
            await roundtrip(second, 0)
            guest = await http.post(f"{url}/predict", headers={"Authorization": f"Bearer {KEY_B}"})
            # guest-b's new limit: no still images at all, and no wait makes one fit (a 429
            # with Retry-After had a client ask every minute for ever).
            assert guest.status == 403
            assert "Retry-After" not in guest.headers
            refusal = await guest.json()
            assert (refusal["quota"], refusal["retry_after"]) == ("predict_per_minute", None)
            assert refusal["detail"] == (
                "key guest-b may make no requests here (its predict_per_minute is 0)"
            )

            # A bad file is refused and the keys in force stay.
            keys.write_text('{"name": "studio-a", "key": "short"}\n')
            server.proc.send_signal(signal.SIGHUP)
            line = await server.wait_for("access keys: reload refused")
            assert "line 1" in line
            access = await http.get(
                f"{url}/api/access", headers={"Authorization": f"Bearer {KEY_B}"}
            )
            assert (await access.json())["key"]["name"] == "guest-b"
            await roundtrip(first, 2)

            # studio-a removed: its live sessions carry on, new ones are refused with 4401.
            write_keys(keys, {"name": "guest-b", "key": KEY_B})
            server.proc.send_signal(signal.SIGHUP)
            await server.wait_for("access keys: reloaded 1 keys")
            await roundtrip(first, 3)
            await roundtrip(second, 1)
            gone = await open_session(http, f"{url}/ws", KEY_A)
            kind, (code, reason) = await next_message(gone)
            assert (kind, code, reason) == ("closed", 4401, "the access key was not accepted")
            metrics = await (await http.get(f"{url}/metrics")).text()
            assert 'holotrack_key_sessions{key="studio-a"} 2.0' in metrics
            for ws in (first, second):
                await ws.close()
            for key in (KEY_A, KEY_B):
                assert key not in metrics
    text = await server.rest()
    assert "Traceback" not in text, text[-2000:]
    for key in (KEY_A, KEY_B):
        assert key not in text
