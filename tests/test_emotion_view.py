"""PUT /api/emotion/{token}: only a link's camera holds an emotion over HTTP (the PC whose
phone is the camera, a stream deck's button); its session and watchers hear of it and
the rig carries it."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import Client, MakeClient
from tests.live import LiveClient, video_frames
from tests.media import ASL_VIDEO
from tests.test_access import KEY_A, KEY_B, auth, keys_file
from webapp.analysis.rig.emotion import EMOTIONS
from webapp.config import Config
from webapp.emotion_view import MAX_BODY_BYTES, SHAPE
from webapp.keys import LIVE

STEP_MS = 1000 / 15
HAPPY = {"type": "emotion", "name": "happy", "weight": 1.0}


async def camera(client: Client, **hello: Any) -> tuple[LiveClient, dict[str, Any]]:
    live = await LiveClient.connect(client)
    return live, await live.hello(rig=True, **hello)


async def watch(client: Client, token: str) -> aiohttp.ClientWebSocketResponse:
    ws = await client.ws_connect("/ws")
    await ws.send_json({"type": "watch", "version": 1, "token": token})
    assert (await ws.receive_json(timeout=30))["type"] == "watching"
    return ws


async def next_emotion(ws: aiohttp.ClientWebSocketResponse) -> Any:
    while True:
        message = await ws.receive_json(timeout=30)
        if message["type"] == "emotion":
            return message


async def put(
    client: Client, token: str, body: Any, headers: dict[str, str]
) -> aiohttp.ClientResponse:
    data = body if isinstance(body, bytes) else None
    json = None if isinstance(body, bytes) else body
    return await client.put(f"/api/emotion/{token}", data=data, json=json, headers=headers)


def emotions(result: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in result["rig"]["expressions"].items() if k in EMOTIONS}


async def test_only_the_camera_holds_an_emotion_and_its_session_and_watchers_hear_it(
    make_client: MakeClient,
) -> None:
    client = await make_client(Config(workers=1))
    live, ready = await camera(client)
    token, proof = ready["watch"], {"Holotrack-Resume": ready["resume"]}
    watcher = await watch(client, token)
    frames = video_frames(ASL_VIDEO)[:6]
    [before] = await live.lockstep(frames[:1], STEP_MS)
    assert emotions(before) == {}

    unknown = await put(client, secrets.token_urlsafe(16), {"name": "happy"}, proof)
    assert unknown.status == 404
    assert (await unknown.json())["error"] == "unknown_link"
    # A watcher knows the token, and nothing that proves it is the camera.
    for headers in ({}, {"Holotrack-Resume": token}, {"Holotrack-Link-Key": token + "x"}):
        refused = await put(client, token, {"name": "happy"}, headers)
        assert refused.status == 403, headers
        detail = (await refused.json())["detail"]
        assert "may hold its emotion" in detail or "is not a link key" in detail

    answer = await put(client, token, {"name": "happy"}, proof)
    assert answer.status == 200
    assert await answer.json() == {"name": "happy", "weight": 1.0}
    # Its session learns it with its next frame, tells its client and its watchers, and
    # the rig fades it in.
    await live.send(1, STEP_MS, frames[1])
    assert await live.next_of("emotion", "result") == HAPPY
    first = await live.next_of("result")
    assert emotions(first)["happy"] == 0.0
    later = await live.lockstep(frames[2:], STEP_MS, first=2)
    assert [emotions(r)["happy"] for r in later] == pytest.approx(
        [0.267, 0.533, 0.8, 1.0], abs=2e-3
    )
    assert await next_emotion(watcher) == HAPPY
    # A watcher who comes now hears what the link holds straight after watching.
    late = await watch(client, token)
    assert await late.receive_json(timeout=30) == HAPPY

    let_go = await put(client, token, {"name": None}, proof)
    assert await let_go.json() == {"name": None, "weight": 0.0}
    await live.send(6, 6 * STEP_MS, frames[0])
    assert await live.next_of("emotion", "result") == {
        "type": "emotion",
        "name": None,
        "weight": 0.0,
    }
    assert live.errors == []


async def test_the_holder_of_a_kept_links_key_under_the_cameras_access_key(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """The avatar page on a PC whose phone is the camera holds the link's key, not the
    phone's resume string; under --access-keys it needs the camera's access key too."""
    client = await make_client(Config(workers=1, access_keys=str(keys_file(tmp_path))))
    link_key = secrets.token_urlsafe(32)
    phone, ready = await camera(client, key=KEY_A, link_key=link_key)
    token, pc = ready["watch"], {"Holotrack-Link-Key": link_key}
    body = {"name": "surprised", "weight": 0.5}
    assert (await put(client, token, body, pc)).status == 401
    assert (await put(client, token, body, {**pc, **auth(KEY_B)})).status == 403
    wrong = link_key[:-1] + ("A" if link_key[-1] != "A" else "B")
    assert (
        await put(client, token, body, {**auth(KEY_A), "Holotrack-Link-Key": wrong})
    ).status == 403
    answer = await put(client, token, body, {**pc, **auth(KEY_A)})
    assert (answer.status, await answer.json()) == (200, {"name": "surprised", "weight": 0.5})
    [result] = await phone.lockstep(video_frames(ASL_VIDEO)[:1], STEP_MS)
    assert emotions(result)["surprised"] == 0.0  # from 0, it fades in from here
    await phone.ws.close()


async def test_each_emotion_held_over_http_is_logged_only_with_verbose(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A line at INFO for each press: a page or a stream deck pressing away filled the log,
    where the same presses on the camera's own connection said nothing."""
    caplog.set_level(logging.DEBUG, logger="webapp.emotion_view")
    client = await make_client(Config(workers=1))
    live, ready = await camera(client)
    token, proof = ready["watch"], {"Holotrack-Resume": ready["resume"]}
    for name in ("happy", None, "sad"):
        assert (await put(client, token, {"name": name}, proof)).status == 200
    said = [r for r in caplog.records if r.name == "webapp.emotion_view"]
    assert [(r.levelno, r.getMessage()) for r in said] == [
        (logging.DEBUG, f"{ready['session']} holds happy over HTTP"),
        (logging.DEBUG, f"{ready['session']} holds no emotion over HTTP"),
        (logging.DEBUG, f"{ready['session']} holds sad over HTTP"),
    ]
    await live.ws.close()


NAMES = "an emotion's name must be one of happy, angry, sad, relaxed, surprised, or null for none"


WRONG_BODIES = [
    (b"", f"the body must be JSON: {SHAPE}"),
    (b"happy", f"the body must be JSON: {SHAPE}"),
    (b"[" * 200, f"the body must be JSON: {SHAPE}"),
    (b'"happy"', f"the body must be {SHAPE}"),
    (b'["happy"]', f"the body must be {SHAPE}"),
    (b"{}", NAMES),
    (b'{"name": "Joy"}', NAMES),
    (
        b'{"name": "happy", "weight": 0}',
        "an emotion's weight must be a number above 0, at most 1",
    ),
    (
        b'{"name": "happy", "weight": NaN}',
        "an emotion's weight must be a number above 0, at most 1",
    ),
]


async def test_a_wrong_body_is_a_400_saying_what_is_wrong(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1))
    _, ready = await camera(client)
    for body, detail in WRONG_BODIES:
        answer = await put(client, ready["watch"], body, {"Holotrack-Resume": ready["resume"]})
        assert answer.status == 400, body
        assert (await answer.json())["detail"] == detail
    # None of them changed what the link holds.
    link = client.app[LIVE].tokens.find(ready["watch"])
    assert link is not None
    assert link.emotion is None


async def test_a_body_past_its_size_is_refused_unread(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1))
    _, ready = await camera(client)
    body = b'{"name": "happy"' + b" " * MAX_BODY_BYTES + b"}"
    answer = await put(client, ready["watch"], body, {"Holotrack-Resume": ready["resume"]})
    assert answer.status == 413
