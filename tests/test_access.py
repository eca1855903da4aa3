"""Access keys and quotas (--access-keys): every route with no key, a wrong key and a good
key; quotas reached and recovered on an injected clock; keys never in logs or metrics; a
fuzz of the Authorization header and the hello's "key"; constant-time comparison."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import random
import re
import secrets
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from tests.conftest import Client, MakeClient
from tests.live import LiveClient, until, video_frames
from tests.media import ASL_VIDEO, GESTURE_VIDEO, PERSON_JPEG
from tests.videos import held_upload, write_clip
from webapp.access.credentials import bearer
from webapp.access.errors import AccessDenied, QuotaExceeded
from webapp.access.http import PUBLIC_ROUTES, charge_video_seconds
from webapp.access.keyfile import Limits, parse_keys, read_keys
from webapp.access.metrics import AccessMetrics
from webapp.access.quotas import Quotas
from webapp.access.service import Access
from webapp.access.socket import Gate
from webapp.access.store import KeyStore
from webapp.app import create_app
from webapp.config import Config, load_config
from webapp.keys import ACCESS, METRICS, SESSIONS
from webapp.live.errors import SessionClosed
from webapp.protocol import Close

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Fresh secrets per run, so finding one in a log or a metric cannot be a coincidence.
KEY_A = secrets.token_urlsafe(24)
KEY_B = secrets.token_urlsafe(24)
KEY_C = secrets.token_urlsafe(24)
KEY_V = secrets.token_urlsafe(24)
KEYS = (KEY_A, KEY_B, KEY_C, KEY_V)
RECORDS: list[dict[str, Any]] = [
    # A comment line and a field from the future are allowed (see keys_file).
    {"name": "studio-a", "key": KEY_A, "max_sessions": 1, "predict_per_minute": 2},
    {"name": "open-b", "key": KEY_B, "colour": "blue"},
    {"name": "coach-c", "key": KEY_C, "max_sessions": 2},
    {"name": "video-v", "key": KEY_V, "predict_per_minute": 100, "video_seconds_per_hour": 100},
]
WRONG = "Bearer " + "x" * 32
JPEG = {"Content-Type": "image/jpeg"}


def keys_file(folder: Path, records: list[dict[str, Any]] = RECORDS) -> Path:
    path = folder / "keys.jsonl"
    lines = ["# who may use this server", ""] + [json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n")
    return path


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Clock:
    """Time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def no_key_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    for key in KEYS:
        assert key not in caplog.text


@pytest.fixture
def keyed(make_client: MakeClient, tmp_path: Path) -> Callable[[], Awaitable[Client]]:
    async def build() -> Client:
        return await make_client(Config(workers=1, access_keys=str(keys_file(tmp_path))))

    return build


def offline_access(clock: Clock | None = None) -> Access:
    store = KeyStore(parse_keys("\n".join(json.dumps(r) for r in RECORDS), "test"))
    return Access(None, AccessMetrics(CollectorRegistry()), store, clock or Clock())


def sample(text: str, name: str, labels: str) -> float:
    found = re.search("^" + re.escape(f"{name}{{{labels}}}") + r" (\S+)$", text, re.MULTILINE)
    assert found, f"{name}{{{labels}}} not in metrics"
    return float(found.group(1))


async def closed_after(
    client: Client, first: dict[str, Any] | None, url: str = "/ws", **kwargs: Any
) -> tuple[int, str]:
    live = LiveClient(await client.ws_connect(url, **kwargs))
    if first is not None:
        await live.ws.send_json(first)
    return await live.closed()


def hello(**fields: Any) -> dict[str, Any]:
    return {"type": "hello", "version": 1, "track": "pose", "fps": 5, **fields}


# -- every route -------------------------------------------------------------------------------
async def test_every_http_route_needs_a_good_key_except_the_public_ones(
    keyed: Callable[[], Awaitable[Client]], caplog: pytest.LogCaptureFixture
) -> None:
    client = await keyed()
    assert "access keys: 4 keys from" in caplog.text
    assert "studio-a, open-b, coach-c, video-v" in caplog.text
    checked = 0
    for route in client.app.router.routes():
        if route.method not in {"GET", "POST"}:
            continue
        canonical = route.resource.canonical if route.resource else ""
        path = re.sub(r"\{[^}]*\}", "x", canonical)
        if canonical == "/static/{name}":
            path = "/static/style.css"
        if path == "/ws":
            continue  # the key arrives in the hello: test_ws_* below
        bare = await client.request(route.method, path)
        if canonical in PUBLIC_ROUTES:
            assert bare.status != 401, path
            continue
        checked += 1
        await assert_refused(client, route.method, path)
        body = PERSON_JPEG.read_bytes() if path == "/predict" else b""
        good = await client.request(route.method, path, data=body, headers={**JPEG, **auth(KEY_B)})
        # With the key the request reaches its handler, which judges the body on its own.
        assert good.status == {"/predict": 200, "/api/video": 415}.get(path, 400), path
    assert checked == 3  # /predict, /api/video, /api/export; the loop covers what comes later
    # Any path at all is covered without a word.
    await assert_refused(client, "GET", "/nothing")
    assert (await client.request("GET", "/nothing", headers=auth(KEY_B))).status == 404
    # A public prefix, an escape or a case change never reaches /predict without a key.
    for path in ("/static/../predict", "/static%2F..%2Fpredict", "/PREDICT", "/predict/"):
        sneaky = await client.post(path, data=PERSON_JPEG.read_bytes(), headers=JPEG)
        assert sneaky.status == 401, path


async def assert_refused(client: Client, method: str, path: str) -> None:
    bare = await client.request(method, path)
    assert bare.status == 401, path
    assert bare.headers["WWW-Authenticate"] == 'Bearer realm="holotrack"'
    body = await bare.json()
    assert body["error"] == "unauthorized"
    assert body["reason"] == "missing_key"
    assert "Authorization: Bearer" in body["detail"]
    for header in (WRONG, "Basic " + KEY_B, KEY_B, "Bearer " + KEY_B + "x", "Bearer"):
        wrong = await client.request(method, path, headers={"Authorization": header})
        assert wrong.status == 401, (path, header)
        reason = (await wrong.json())["reason"]
        assert reason in {"missing_key", "wrong_key"}
        if reason == "wrong_key":
            assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]


async def test_ws_needs_a_good_key_in_the_hello_the_query_or_the_header(
    keyed: Callable[[], Awaitable[Client]],
) -> None:
    client = await keyed()
    code, reason = await closed_after(client, hello())
    assert code == 4401
    assert Close.UNAUTHORIZED.value == 4401
    assert "needs an access key" in reason
    assert '"key"' in reason
    assert await closed_after(client, hello(key="y" * 30)) == (
        4401,
        "the access key was not accepted",
    )
    assert (await closed_after(client, hello(key=12345)))[0] == 4401
    # A wrong key with the upgrade is refused before any message is read.
    assert (await closed_after(client, None, f"/ws?key={'z' * 20}"))[0] == 4401
    assert (await closed_after(client, None, headers={"Authorization": WRONG}))[0] == 4401
    # A watcher needs no key, but a wrong one it sends is still wrong.
    watch = {"type": "watch", "version": 1, "token": "nope"}
    assert (await closed_after(client, watch, "/ws?key=wrongwrongwrong"))[0] == 4401
    assert (await closed_after(client, {**watch, "key": "wrongwrongwrong"}))[0] == 4401
    assert (await closed_after(client, watch))[0] == Close.UNKNOWN_WATCH
    assert (await closed_after(client, {**watch, "key": KEY_B}))[0] == Close.UNKNOWN_WATCH
    # A watcher's empty key is none, as a hello's is: not "this server needs an access key".
    for empty in (None, ""):
        assert (await closed_after(client, {**watch, "key": empty}))[0] == Close.UNKNOWN_WATCH
    ways: list[tuple[str, dict[str, str], dict[str, str]]] = [
        ("/ws", {}, {"key": KEY_B}),
        (f"/ws?key={KEY_B}", {}, {}),
        ("/ws", auth(KEY_B), {}),
    ]
    for url, headers, fields in ways:
        live = LiveClient(await client.ws_connect(url, headers=headers))
        ready = await live.hello("pose", 5, **fields)
        assert ready["type"] == "ready"
        await live.lockstep(video_frames(ASL_VIDEO)[:1])
        await live.ws.close()
    await client.app[SESSIONS].wait_empty()
    metrics = await (await client.get("/metrics")).text()
    assert sample(metrics, "holotrack_key_frames_total", 'key="open-b",outcome="processed"') == 3
    assert sample(metrics, "holotrack_key_refusals_total", 'key="-",reason="missing_key"') == 1
    assert sample(metrics, "holotrack_key_refusals_total", 'key="-",reason="wrong_key"') == 6
    assert sample(metrics, "holotrack_sessions_closed_total", 'code="4401"') == 6
    for key in KEYS:
        assert key not in metrics


# -- quotas --------------------------------------------------------------------------------------
async def test_predict_per_minute_counts_cache_hits_and_recovers_after_the_window(
    keyed: Callable[[], Awaitable[Client]],
) -> None:
    client = await keyed()
    clock = Clock()
    client.app[ACCESS].quotas.clock = clock
    image = PERSON_JPEG.read_bytes()

    async def predict() -> aiohttp.ClientResponse:
        return await client.post("/predict", data=image, headers={**JPEG, **auth(KEY_A)})

    first = await predict()
    assert first.status == 200
    assert (await first.json())["cached"] is False
    clock.now += 10
    second = await predict()
    assert second.status == 200
    assert (await second.json())["cached"] is True
    clock.now += 10
    over = await predict()
    assert over.status == 429
    assert over.headers["Retry-After"] == "40"  # the first request leaves the minute in 40 s
    body = await over.json()
    assert body["error"] == "quota"
    assert body["quota"] == "predict_per_minute"
    assert body["retry_after"] == 40
    assert "studio-a" in body["detail"]
    # The key's holder sees what counts against it: the two within the minute, not the 429.
    usage = await (await client.get("/api/access", headers=auth(KEY_A))).json()
    assert (usage["key"]["requests_last_minute"], usage["key"]["predict_per_minute"]) == (2, 2)
    clock.now += 39.5
    assert (await predict()).headers["Retry-After"] == "1"  # never 0: 0.5 s rounds up
    clock.now += 0.5
    assert (await predict()).status == 200  # recovered
    clock.now += 1
    again = await predict()
    assert again.status == 429
    assert again.headers["Retry-After"] == "9"
    # Another key's minute is its own.
    assert (
        await client.post("/predict", data=image, headers={**JPEG, **auth(KEY_B)})
    ).status == 200
    metrics = await (await client.get("/metrics")).text()
    refused = 'key="studio-a",reason="predict_per_minute"'
    assert sample(metrics, "holotrack_key_refusals_total", refused) == 3
    assert sample(metrics, "holotrack_key_requests_total", 'key="studio-a"') == 3
    assert sample(metrics, "holotrack_predict_requests_total", 'status="429"') == 3


async def test_a_camera_back_at_its_keys_max_sessions_takes_its_own_session_over(
    keyed: Callable[[], Awaitable[Client]],
) -> None:
    """studio-a may hold one session. Its camera's next connection (a network blip not yet
    found dead, a second tab) names the same link: it was refused 1013 max_sessions until
    the old connection was found dead; it takes the old one over, which ends."""
    client = await keyed()
    link_key = secrets.token_urlsafe(32)
    first = await LiveClient.connect(client)
    ready = await first.hello("pose", 5, key=KEY_A, link_key=link_key)
    second = await LiveClient.connect(client)
    again = await second.hello("pose", 5, key=KEY_A, link_key=link_key)
    assert (again["watch"], again["resumed"]) == (ready["watch"], True)
    code, reason = await first.closed()
    assert (code, reason) == (
        Close.NORMAL,
        f"another connection took its link over as {again['session']}",
    )
    # Still one at a time: a session of the key that takes nothing over is refused.
    code, reason = await closed_after(client, hello(key=KEY_A))
    assert code == Close.TRY_AGAIN_LATER
    assert "max_sessions" in reason
    await second.ws.close()
    await client.app[SESSIONS].wait_empty()
    metrics = await (await client.get("/metrics")).text()
    assert sample(metrics, "holotrack_key_sessions", 'key="studio-a"') == 0


async def test_max_sessions_counts_watchers_and_recovers_when_one_ends(
    keyed: Callable[[], Awaitable[Client]],
) -> None:
    client = await keyed()
    first = await LiveClient.connect(client)
    ready = await first.hello("pose", 5, key=KEY_A)
    code, reason = await closed_after(client, hello(key=KEY_A))
    assert code == Close.TRY_AGAIN_LATER
    assert reason.startswith("quota max_sessions: key studio-a already holds 1 live session")
    # The watcher brings no key and counts as one of studio-a's sessions.
    watch = {"type": "watch", "version": 1, "token": ready["watch"]}
    code, reason = await closed_after(client, watch)
    assert code == Close.TRY_AGAIN_LATER
    assert "max_sessions" in reason
    metrics = await (await client.get("/metrics")).text()
    assert sample(metrics, "holotrack_key_sessions", 'key="studio-a"') == 1
    await first.ws.close()
    await client.app[SESSIONS].wait_empty()
    recovered = await LiveClient.connect(client)
    assert (await recovered.hello("pose", 5, key=KEY_A))["type"] == "ready"
    await recovered.ws.close()
    # coach-c allows two: its session and one watcher; the second watcher is one too many.
    camera = await LiveClient.connect(client)
    token = (await camera.hello("pose", 5, key=KEY_C))["watch"]
    watcher = LiveClient(await client.ws_connect("/ws"))
    await watcher.ws.send_json({"type": "watch", "version": 1, "token": token})
    assert (await watcher.next_of("watching"))["session"]
    code, reason = await closed_after(client, {"type": "watch", "version": 1, "token": token})
    assert code == Close.TRY_AGAIN_LATER
    assert "coach-c" in reason
    assert "max_sessions" in reason
    await camera.lockstep(video_frames(ASL_VIDEO)[:1])
    assert (await watcher.next_of("result"))["seq"] == 0
    await watcher.ws.close()
    await camera.ws.close()
    await client.app[SESSIONS].wait_empty()
    metrics = await (await client.get("/metrics")).text()
    assert sample(metrics, "holotrack_key_sessions", 'key="coach-c"') == 0
    assert (
        sample(metrics, "holotrack_key_refusals_total", 'key="studio-a",reason="max_sessions"') == 2
    )
    assert (
        sample(metrics, "holotrack_key_refusals_total", 'key="coach-c",reason="max_sessions"') == 1
    )
    # A key at its own limit is not a full server: deploy/README reads any refusal there
    # as a replica out of room (add replicas), which more replicas would not change.
    registry = client.app[METRICS].registry
    assert registry.get_sample_value("holotrack_sessions_refused_total") == 0


async def test_a_video_holds_one_of_its_keys_sessions(
    keyed: Callable[[], Awaitable[Client]], tmp_path: Path
) -> None:
    """A video runs in one of the server's sessions: a key allowed one held a live session
    and videos besides, and a key allowed none filled the server with videos. Its place is
    held from before its upload (refused, it sends no body) to its last line."""
    client = await keyed()
    quotas = client.app[ACCESS].quotas
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.mp4", 5).read_bytes()
    mp4 = {**auth(KEY_A), "Content-Type": "video/mp4"}
    go_on = asyncio.Event()
    video = held_upload(client, clip, go_on, auth(KEY_A))
    await until(lambda: quotas.sessions("studio-a") == 1, "the upload holds studio-a's place")
    code, reason = await closed_after(client, hello(key=KEY_A))
    assert code == Close.TRY_AGAIN_LATER
    assert reason.startswith("quota max_sessions: key studio-a already holds 1 live session")
    second = await client.post("/api/video", data=clip, headers=mp4)
    assert second.status == 429
    assert (await second.json())["quota"] == "max_sessions"
    go_on.set()
    answer = await video
    assert answer.status == 200
    *_, last = [json.loads(line) for line in (await answer.text()).splitlines()]
    assert last["summary"]["frames"] == 5
    await until(lambda: quotas.sessions("studio-a") == 0, "the video's end gives it back")
    live = await LiveClient.connect(client)
    assert (await live.hello("pose", 5, key=KEY_A))["type"] == "ready"
    await live.ws.close()
    # A video refused after its place was taken gives it back too.
    bad = await client.post(
        "/api/video", data=b"x" * 100, headers={**auth(KEY_C), "Content-Type": "video/mp4"}
    )
    assert bad.status == 400
    assert quotas.sessions("coach-c") == 0


async def test_a_limit_of_0_is_never_said_to_free(make_client: MakeClient, tmp_path: Path) -> None:
    """`0` allows none: a 429 or a 1013 told the client to come back, and one that obeys
    came back for ever. 403 and 1008 say it will not fit."""
    nothing = {"name": "nothing-n", "key": KEY_B, "max_sessions": 0, "predict_per_minute": 0}
    client = await make_client(
        Config(workers=1, access_keys=str(keys_file(tmp_path, [*RECORDS[:1], nothing])))
    )
    code, reason = await closed_after(client, hello(key=KEY_B))
    assert code == Close.POLICY
    assert reason == (
        "quota max_sessions: key nothing-n may hold no sessions (its max_sessions is 0)"
    )
    refused = await client.post("/predict", data=PERSON_JPEG.read_bytes(), headers=auth(KEY_B))
    assert refused.status == 403
    assert "Retry-After" not in refused.headers
    assert (await refused.json())["retry_after"] is None
    # A key that may post no video is told before its upload is read (it was 413 "send a
    # shorter cut" once the whole file had arrived).
    novideo = {"name": "novideo-v", "key": KEY_V, "video_seconds_per_hour": 0}
    keys_file(tmp_path, [*RECORDS[:1], nothing, novideo])
    client.app[ACCESS].reload()
    unread = await client.post(
        "/api/video", data=b"x" * 10, headers={**auth(KEY_V), "Content-Type": "video/mp4"}
    )
    assert unread.status == 403
    assert (await unread.json())["detail"] == (
        "key novideo-v may post no video (its video_seconds_per_hour is 0)"
    )
    assert client.app[ACCESS].quotas.sessions("novideo-v") == 0
    # A limit reached, not 0, frees in time: studio-a's one session is taken.
    first = await LiveClient.connect(client)
    await first.hello("pose", 5, key=KEY_A)
    code, _ = await closed_after(client, hello(key=KEY_A))
    assert code == Close.TRY_AGAIN_LATER
    await first.ws.close()


async def test_every_limit_of_0_refusal_is_counted_under_its_key(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """holotrack_key_refusals_total counts every quota's refusals: a key allowed no video
    got its 403s uncounted, while one allowed no image or session had them counted."""
    nothing = {
        "name": "nothing-n",
        "key": KEY_B,
        "max_sessions": 0,
        "predict_per_minute": 0,
        "video_seconds_per_hour": 0,
    }
    novideo = {"name": "novideo-v", "key": KEY_V, "video_seconds_per_hour": 0}
    client = await make_client(
        Config(workers=1, access_keys=str(keys_file(tmp_path, [nothing, novideo])))
    )
    code, _ = await closed_after(client, hello(key=KEY_B))
    assert code == Close.POLICY
    image = await client.post("/predict", data=PERSON_JPEG.read_bytes(), headers=auth(KEY_B))
    assert image.status == 403
    video = await client.post(
        "/api/video", data=b"x" * 10, headers={**auth(KEY_V), "Content-Type": "video/mp4"}
    )
    assert video.status == 403
    text = await (await client.get("/metrics")).text()
    name = "holotrack_key_refusals_total"
    assert sample(text, name, 'key="nothing-n",reason="max_sessions"') == 1
    assert sample(text, name, 'key="nothing-n",reason="predict_per_minute"') == 1
    assert sample(text, name, 'key="novideo-v",reason="video_seconds_per_hour"') == 1


async def video_route(request: web.Request) -> web.Response:
    """What POST /api/video does with its key, on a path of its own so a test can name the
    seconds (test_video.py charges a real upload)."""
    seconds = float(request.query["seconds"])
    charge_video_seconds(request, seconds)
    return web.json_response({"charged": seconds})


@pytest.fixture
async def charging(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]], tmp_path: Path
) -> Client:
    """A server with the keys of RECORDS and video_route at /test/video-seconds."""
    app = create_app(Config(workers=1, access_keys=str(keys_file(tmp_path))))
    app.router.add_post("/test/video-seconds", video_route)
    return await aiohttp_client(app)


async def test_video_seconds_per_hour_from_a_route_that_charges_them(charging: Client) -> None:
    client = charging
    clock = Clock()
    client.app[ACCESS].quotas.clock = clock

    async def video(seconds: float, key: str = KEY_V) -> aiohttp.ClientResponse:
        return await client.post(f"/test/video-seconds?seconds={seconds}", headers=auth(key))

    assert (await client.post("/test/video-seconds?seconds=1")).status == 401
    assert (await video(60)).status == 200
    clock.now += 100
    assert (await video(40)).status == 200
    clock.now += 100
    over = await video(1)
    assert over.status == 429
    assert over.headers["Retry-After"] == "3400"  # the 60 s charged first leave the hour then
    body = await over.json()
    assert body["quota"] == "video_seconds_per_hour"
    assert "100" in body["detail"]
    # More than the whole hour holds: no wait makes it fit, so no Retry-After.
    whole = await video(500)
    assert (whole.status, "Retry-After" in whole.headers) == (413, False)
    body = await whole.json()
    assert body["error"] == "too_large"
    assert body["detail"] == (
        "the video takes 500 s, and key video-v may post 100 s of video an hour "
        "(video_seconds_per_hour): send a shorter cut of it"
    )
    # Counted as a refusal of the key's video seconds, as the 429 is.
    refusals = client.app[METRICS].registry.get_sample_value(
        "holotrack_key_refusals_total", {"key": "video-v", "reason": "video_seconds_per_hour"}
    )
    assert refusals == 2.0  # the 429 above, and this
    clock.now += 3400
    assert (await video(60)).status == 200  # recovered
    # The real /api/video counts toward predict_per_minute like /predict (studio-a allows
    # 2), before its handler looks at the body: an empty one is its 400, not a free pass.
    empty = {**auth(KEY_A), "Content-Type": "video/mp4"}
    assert (await client.post("/api/video", headers=empty)).status == 400
    assert (await client.post("/api/video", headers=empty)).status == 400
    third = await client.post("/api/video", headers=empty)
    assert third.status == 429
    assert (await third.json())["quota"] == "predict_per_minute"
    nobody = await client.post("/api/video", headers={"Content-Type": "video/mp4"})
    assert nobody.status == 401
    metrics = await (await client.get("/metrics")).text()
    assert sample(metrics, "holotrack_key_video_seconds_total", 'key="video-v"') == 160
    # Each answer of /api/video counted once, those refused before its view too (they
    # were not: an alert on refusals saw none).
    for status, count in (("400", 2), ("429", 1), ("401", 1)):
        assert sample(metrics, "holotrack_video_requests_total", f'status="{status}"') == count


async def test_the_video_seconds_used_are_said_rounded(charging: Client) -> None:
    client = charging
    for seconds in (0.1, 0.2):
        charged = await client.post(f"/test/video-seconds?seconds={seconds}", headers=auth(KEY_V))
        assert charged.status == 200
    usage = (await (await client.get("/api/access", headers=auth(KEY_V))).json())["key"]
    assert usage["video_seconds_last_hour"] == 0.3  # not 0.30000000000000004


def test_a_limit_lowered_by_a_reload_says_when_the_window_is_under_it_again() -> None:
    """Three requests in the minute and predict_per_minute lowered to 2 by a reload: room
    opens when the window holds one, once the second request leaves it, not the first."""
    clock = Clock()
    quotas = Quotas(clock)
    for _ in range(3):
        quotas.charge_request("studio-a", Limits(predict_per_minute=3))
        clock.now += 10
    lowered = Limits(predict_per_minute=2)
    with pytest.raises(QuotaExceeded) as refused:
        quotas.charge_request("studio-a", lowered)
    assert refused.value.retry_after == pytest.approx(40)
    clock.now += 30  # when the first request leaves: two are still in the window
    with pytest.raises(QuotaExceeded):
        quotas.charge_request("studio-a", lowered)
    clock.now += 10
    quotas.charge_request("studio-a", lowered)
    # What the key's holder is shown counts as the quota does: a request a minute old
    # has left the window.
    assert quotas.requests("studio-a") == 2
    clock.now += 10
    assert quotas.requests("studio-a") == 1
    clock.now += 60
    assert quotas.requests("studio-a") == 0


def test_a_video_charge_is_settled_to_what_the_video_used() -> None:
    """A video is charged up front (its container's length, else --video-max-seconds) and
    settled when it ends: the 600 s charged for a WebM that states no length stayed
    charged for its 1 s."""
    clock, registry = Clock(), CollectorRegistry()
    store = KeyStore(parse_keys("\n".join(json.dumps(r) for r in RECORDS), "test"))
    access = Access(None, AccessMetrics(registry), store, clock)
    quotas = access.quotas
    reserved = access.charge_video_seconds("video-v", 60)
    clock.now += 0.5
    other = access.charge_video_seconds("video-v", 30)  # merged into the same entry
    assert len(quotas._usage["video-v"].video) == 1
    reserved.settle(1.5)
    reserved.settle(0.0)  # once only
    assert quotas.video_seconds("video-v") == pytest.approx(31.5)
    # Used more than charged (a container that understated its length): charged now, past
    # the limit if need be, as the seconds are spent.
    clock.now += 10
    other.settle(99.0)
    assert quotas.video_seconds("video-v") == pytest.approx(100.5)
    with pytest.raises(QuotaExceeded):
        access.charge_video_seconds("video-v", 1)
    clock.now += 3599
    assert quotas.video_seconds("video-v") == pytest.approx(69.0)  # the 69 charged later
    # A video that outlasts its charge's hour has nothing left to give back.
    long = access.charge_video_seconds("video-v", 20)
    clock.now += 3600
    long.settle(0.0)
    assert quotas.video_seconds("video-v") == 0.0
    key = {"key": "video-v"}
    charged = registry.get_sample_value("holotrack_key_video_seconds_total", key)
    refunded = registry.get_sample_value("holotrack_key_video_seconds_refunded_total", key)
    assert charged == pytest.approx(60 + 30 + 69 + 20)
    assert refunded == pytest.approx(58.5)
    access.charge_video_seconds(None, 10**9).settle(0.0)  # an open server: nothing at all


def test_a_video_that_used_what_it_was_charged_is_neither_charged_nor_refunded() -> None:
    """Charged 0.1 + 0.2 s and settled at 0.3: a float's 4.4e-16 s went to the key's
    refunded counter."""
    registry = CollectorRegistry()
    store = KeyStore(parse_keys("\n".join(json.dumps(r) for r in RECORDS), "test"))
    access = Access(None, AccessMetrics(registry), store, Clock())
    access.charge_video_seconds("video-v", 0.1 + 0.2).settle(0.3)
    access.charge_video_seconds("video-v", 0.3).settle(0.1 + 0.2)
    key = {"key": "video-v"}
    assert registry.get_sample_value("holotrack_key_video_seconds_refunded_total", key) == 0.0
    charged = registry.get_sample_value("holotrack_key_video_seconds_total", key)
    assert charged == pytest.approx(0.6)


def test_a_video_that_fills_the_hour_exactly_is_told_when_the_oldest_charge_leaves() -> None:
    """Room opens as soon as what leaves the hour frees just enough: the first charge,
    not the second."""
    clock = Clock()
    quotas = Quotas(clock)
    limits = Limits(video_seconds_per_hour=100)
    quotas.charge_video_seconds("video-v", limits, 40)
    clock.now += 10
    quotas.charge_video_seconds("video-v", limits, 60)
    clock.now += 10
    with pytest.raises(QuotaExceeded) as refused:
        quotas.charge_video_seconds("video-v", limits, 40)
    assert refused.value.retry_after == pytest.approx(3600 - 20)
    clock.now += refused.value.retry_after
    quotas.charge_video_seconds("video-v", limits, 40)
    assert quotas.video_seconds("video-v") == pytest.approx(100)


def test_video_charges_are_all_or_nothing_and_bounded() -> None:
    clock = Clock()
    access = offline_access(clock)
    for _ in range(5000):
        clock.now += 0.25
        access.charge_video_seconds("video-v", 0.01)
    assert access.quotas.video_seconds("video-v") == pytest.approx(50.0)
    # Charges a quarter second apart share entries: the window stays small.
    assert len(access.quotas._usage["video-v"].video) <= 1300
    with pytest.raises(QuotaExceeded) as refused:
        access.charge_video_seconds("video-v", 50.5)
    assert refused.value.quota == "video_seconds_per_hour"
    assert access.quotas.video_seconds("video-v") == pytest.approx(50.0)
    access.charge_video_seconds(None, 10**9)  # an open server charges nothing


# -- keys never shown, compared in constant time ----------------------------------------------
def test_every_stored_digest_is_compared_with_hmac_compare_digest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    access = offline_access()
    assert access.identify(KEY_A) == "studio-a"
    # No early exit at the first match: every key is compared, digests only.
    assert len(calls) == len(RECORDS)
    assert all(len(a) == len(b) == 32 for a, b in calls)
    calls.clear()
    with pytest.raises(AccessDenied):
        access.identify("q" * 40)
    assert len(calls) == len(RECORDS)
    assert KEY_A not in repr(access.__dict__) + repr(access._store.__dict__)


async def test_http_answers_use_the_constant_time_compare(
    keyed: Callable[[], Awaitable[Client]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await keyed()
    calls: list[bytes] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append(a)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert (await client.post("/predict", headers={"Authorization": WRONG})).status == 401
    assert len(calls) == len(RECORDS)
    assert (await closed_after(client, hello(key="w" * 20)))[0] == 4401
    assert len(calls) == 2 * len(RECORDS)


def test_an_empty_key_is_no_key() -> None:
    """A page with its key field left empty sends "key": "": told this server needs a key
    and how to send one, not that a key was wrong; a watcher, who needs none, is let by."""
    with pytest.raises(SessionClosed) as closed:
        Gate(offline_access()).identify(hello(key=""))
    assert closed.value.code == Close.UNAUTHORIZED
    assert closed.value.reason.startswith("this server needs an access key: send it in")
    for none in ("", None):
        Gate(offline_access()).check_offered({"type": "watch", "key": none})
    with pytest.raises(SessionClosed) as wrong:
        Gate(offline_access()).check_offered({"type": "watch", "key": "w" * 20})
    assert (wrong.value.code, wrong.value.reason) == (
        Close.UNAUTHORIZED,
        "the access key was not accepted",
    )


# -- fuzz ------------------------------------------------------------------------------------------
@FUZZ
@given(header=st.one_of(st.text(), st.text().map(lambda t: "Bearer " + t)))
def test_any_authorization_header_is_refused_as_missing_or_wrong(header: str) -> None:
    access = offline_access()
    with pytest.raises(AccessDenied) as refused:
        access.identify(bearer(header))
    assert refused.value.reason in {"missing_key", "wrong_key"}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(key=JSON)
def test_any_hello_key_closes_with_4401(key: object) -> None:
    gate = Gate(offline_access())
    with pytest.raises(SessionClosed) as closed:
        gate.identify(hello(key=key))
    assert closed.value.code == Close.UNAUTHORIZED
    assert closed.value.reason.isascii()
    assert len(closed.value.reason) < 120


async def test_hostile_keys_against_the_server_get_401_and_4401(
    keyed: Callable[[], Awaitable[Client]],
) -> None:
    client = await keyed()
    rng = random.Random(17)
    latin = "".join(chr(c) for c in [*range(0x20, 0x7F), *range(0xA0, 0x100)])
    headers = [
        "Bearer",
        "Bearer ",
        "bearer\t" + KEY_B,
        "Bearer  ",
        "Bearer " + "\u00ff" * 64,
        "Bearer " + KEY_B[:-1],
        "Bearer " + KEY_B.upper(),
        "Bearer " + "a" * 8000,
    ]
    headers += ["".join(rng.choice(latin) for _ in range(rng.randint(0, 200))) for _ in range(40)]
    headers += [
        "Bearer " + "".join(rng.choice(latin) for _ in range(rng.randint(1, 80))) for _ in range(40)
    ]
    for header in headers:
        response = await client.post("/predict", headers={"Authorization": header})
        assert response.status == 401, header
    keys: list[object] = [
        "",
        " ",
        KEY_B + " ",
        "\ud800",
        "\x00" * 10,
        "é" * 600,
        [KEY_B],
        {"key": KEY_B},
        True,
        1e308,
        None,
    ]
    for key in keys:
        assert (await closed_after(client, hello(key=key)))[0] == 4401, key
    # The server is fine afterwards.
    live = LiveClient(await client.ws_connect("/ws"))
    assert (await live.hello("pose", 5, key=KEY_B))["type"] == "ready"
    await live.ws.close()


# -- the setting ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("lines", "words"),
    [
        (['{"name": "a", "key": "' + "k" * 20 + '"}', "not json"], "line 2: not a JSON object"),
        (["[1, 2]"], "line 1: each line must be a JSON object"),
        (['{"key": "' + "k" * 20 + '"}'], "line 1: name must be"),
        (['{"name": "has space", "key": "' + "k" * 20 + '"}'], "line 1: name must be"),
        (['{"name": "a", "key": "short"}'], "line 1: a: key must be 16 to 512"),
        (['{"name": "a", "key": "' + "k k" * 8 + '"}'], "line 1: a: key must be a string"),
        (['{"name": "a", "key": "' + "k" * 20 + '", "max_sessions": true}'], "max_sessions must"),
        (['{"name": "a", "key": "' + "k" * 20 + '", "max_sessions": 1.5}'], "whole number"),
        (['{"name": "a", "key": "' + "k" * 20 + '", "predict_per_minute": -1}'], "0 or more"),
        (['{"name": "a", "key": "' + "k" * 20 + '", "video_seconds_per_hour": "9"}'], "video"),
        (
            [
                '{"name": "a", "key": "'
                + "k" * 20
                + '", "video_seconds_per_hour": 1'
                + "0" * 400
                + "}"
            ],
            "line 1: a: video_seconds_per_hour must be finite",
        ),
        (['{"name": "a", "key": "' + "k" * 20 + '"}'] * 2, "line 2: the name 'a' is used twice"),
        (
            [
                '{"name": "a", "key": "' + "k" * 20 + '"}',
                '{"name": "b", "key": "' + "k" * 20 + '"}',
            ],
            "line 2: this key is also given to another name",
        ),
        (["# nothing but a comment"], "holds no keys"),
        # JSON keeps the last of two same members: a limit given twice, the second null,
        # was unlimited, and a second "name" took the key silently.
        (
            ['{"name": "a", "key": "' + "k" * 20 + '", "max_sessions": 1, "max_sessions": null}'],
            "line 1: the field 'max_sessions' is given twice",
        ),
        (
            ['{"name": "a", "key": "' + "k" * 20 + '", "name": "b"}'],
            "line 1: the field 'name' is given twice",
        ),
        (
            ['{"name": "a", "key": "' + "k" * 20 + '", "note": {"x": 1, "x": 2}, "k": 1, "k": 2}'],
            "line 1: a field is given twice",
        ),
    ],
)
def test_a_bad_keys_file_stops_the_start_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lines: list[str], words: str
) -> None:
    path = tmp_path / "keys.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SystemExit) as stopped:
        load_config(["--access-keys", str(path)], environ={})
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert f"error: --access-keys: {path} " in error
    assert words in error
    assert "k" * 20 not in error


def test_keys_and_names_are_taken_to_their_lengths_and_not_past_them() -> None:
    """Keys of 16 to 512 characters and names of 1 to 64, as the file's refusal says."""

    def line(name: str, key: str) -> str:
        return json.dumps({"name": name, "key": key})

    shortest, longest = "k" * 16, "K" * 512
    entries = parse_keys("\n".join([line("a", shortest), line("n" * 64, longest)]), "test")
    assert [entry.name for entry in entries] == ["a", "n" * 64]
    for name, key, said in [
        ("a", "k" * 15, "a: key must be 16 to 512 characters"),
        ("a", "k" * 513, "a: key must be 16 to 512 characters"),
        ("n" * 65, shortest, "name must be 1 to 64 letters"),
    ]:
        with pytest.raises(ValueError, match=f"test line 1: {said}"):
            parse_keys(line(name, key), "test")


def test_keys_files_joined_each_with_a_byte_order_mark_are_read(tmp_path: Path) -> None:
    first = '{"name": "a", "key": "' + "k" * 20 + '"}\n'
    second = '{"name": "b", "key": "' + "q" * 20 + '"}\n'
    path = tmp_path / "keys.jsonl"
    path.write_bytes((first + "\ufeff" + second).encode())
    assert [e.name for e in read_keys(path)] == ["a", "b"]
    # The second file begins with a comment, which is one still.
    path.write_bytes(("\ufeff" + first + "\ufeff# studio b\n" + second).encode())
    assert [e.name for e in read_keys(path)] == ["a", "b"]


def test_a_keys_file_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "keys.jsonl"
    path.write_text('{"name": "a", "key": "' + "k" * 20 + '"}\n', encoding="utf-8-sig")
    assert load_config(["--access-keys", str(path)], environ={}).access_keys == str(path)


def test_a_keys_file_line_is_a_line_as_an_editor_counts_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """U+2028, U+0085 and a form feed are characters within a line, not line breaks."""
    path = tmp_path / "keys.jsonl"
    note = {"name": "a", "key": "k" * 20, "note": "Anna\u2028room 2\u0085east"}
    path.write_text(
        "# keys for the studio\u2029 a to c\r\n"
        + json.dumps(note, ensure_ascii=False)
        + "\r\n\x0c\r\n"
        + '{"name": "b", "key": "short"}\n',
        encoding="utf-8",
    )
    with pytest.raises(SystemExit):
        load_config(["--access-keys", str(path)], environ={})
    assert f"{path} line 4: b: key must be 16 to 512" in capsys.readouterr().err
    path.write_text(
        "# keys for the studio\u2029 a to c\r\n" + json.dumps(note, ensure_ascii=False) + "\r\n",
        encoding="utf-8",
    )
    assert load_config(["--access-keys", str(path)], environ={}).access_keys == str(path)


def test_the_setting_has_an_environment_twin_and_a_missing_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = keys_file(tmp_path)
    assert load_config([], environ={"HOLOTRACK_ACCESS_KEYS": str(path)}).access_keys == str(path)
    with pytest.raises(SystemExit):
        load_config(["--access-keys", str(tmp_path / "none.jsonl")], environ={})
    assert "cannot read" in capsys.readouterr().err


async def test_without_keys_the_server_is_open_and_says_so(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(Config(workers=1))
    assert "access keys: off, anyone who reaches this server may use it" in caplog.text
    assert await (await client.get("/api/access")).json() == {"keys_required": False}
    live = LiveClient(await client.ws_connect("/ws?key=anything"))
    assert (await live.hello("pose", 5, key="whatever"))["type"] == "ready"
    await live.ws.close()
    metrics = await (await client.get("/metrics")).text()
    assert "holotrack_key_sessions{" not in metrics


async def test_api_access_tells_the_page_whether_a_key_is_needed_and_if_it_works(
    keyed: Callable[[], Awaitable[Client]],
) -> None:
    client = await keyed()
    assert await (await client.get("/api/access")).json() == {"keys_required": True}
    refused = await (await client.get("/api/access", headers={"Authorization": WRONG})).json()
    assert refused == {"keys_required": True, "key": None, "refused": "wrong_key"}
    mine = (await (await client.get("/api/access", headers=auth(KEY_A))).json())["key"]
    assert mine["name"] == "studio-a"
    assert mine["max_sessions"] == 1
    assert mine["predict_per_minute"] == 2
    assert mine["video_seconds_per_hour"] is None
    assert mine["sessions"] == 0
    assert mine["requests_last_minute"] == 0
