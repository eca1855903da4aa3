"""Avatar-ready sessions end to end with the real model: smoothing, the rig, watchers, VMC
out and the relay, each on frames of the shared videos."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import secrets
from collections.abc import Callable
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest

import webapp.vmc.sender
from tests.conftest import Client, MakeClient
from tests.live import (
    LiveClient,
    lose_connection,
    raw_ws_connect,
    read_to_close,
    until,
    video_frames,
    when_resting,
    ws_frame,
)
from tests.media import ASL_VIDEO
from tests.tcp_proxy import tcp_proxy
from tests.vmc_receiver import VMC_TYPE_TAGS, Received, vmc_receiver
from webapp.analysis.rig import BONES, EXPRESSIONS, quat
from webapp.analysis.rig.emotion import EMOTIONS
from webapp.analysis.rig.eyes import LOOKS, eye_rotation
from webapp.analysis.rig.idle import IDLE_BONES, UNSEEN_SECONDS
from webapp.config import Config
from webapp.engine.imaging import decode
from webapp.engine.inference import TrackEngine
from webapp.keys import LIVE, METRICS, SESSIONS
from webapp.live.session import RESUMABLE
from webapp.protocol import Track
from webapp.vmc.encode import to_unity_rotation
from webapp.vmc.relay import run as run_relay
from webapp.vmc.relay_config import RelayConfig
from webapp.vmc.sender import Target

FRAMES = 12
STEP_MS = 1000 / 15
# The bones the issue promises whenever the pose is found.
ALWAYS = {"hips", "spine", "chest", "neck", "head"} | {
    f"{side}{part}" for side in ("left", "right") for part in ("UpperArm", "LowerArm", "Hand")
}


async def open_session(client: Client, **options: Any) -> tuple[LiveClient, dict[str, Any]]:
    live = await LiveClient.connect(client)
    return live, await live.hello("holistic", 15, **options)


async def watch(client: Client, token: object) -> aiohttp.ClientWebSocketResponse:
    ws = await client.ws_connect("/ws")
    await ws.send_json({"type": "watch", "version": 1, "token": token})
    return ws


async def closed(ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, str]:
    return await read_to_close(ws)


def unit(q: list[float]) -> bool:
    return abs(math.sqrt(sum(c * c for c in q)) - 1.0) < 1e-3


async def test_rig_results_carry_valid_bones_and_expressions(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1))
    live, ready = await open_session(client, rig=True)
    assert isinstance(ready["watch"], str)
    assert len(ready["watch"]) >= 20
    results = await live.lockstep(video_frames(ASL_VIDEO)[:FRAMES], STEP_MS)
    for result in results:
        rig = result["rig"]
        assert ALWAYS <= set(rig["bones"]) <= set(BONES)
        assert all(unit(q) for q in rig["bones"].values())
        assert set(EXPRESSIONS) <= set(rig["expressions"])
        assert all(0.0 <= v <= 1.0 for v in rig["expressions"].values())
        assert len(rig["hips_position"]) == 3
        assert len(result["landmarks"]["face"]) == 468
        assert result["timing_ms"]["analysis"] >= 0.0
    # The signer's hands are found in these frames, so the fingers are there too.
    assert any("leftIndexProximal" in r["rig"]["bones"] for r in results)


async def test_smoothing_off_is_the_models_own_output(make_client: MakeClient) -> None:
    frames = video_frames(ASL_VIDEO)[:FRAMES]
    client = await make_client(Config(workers=1))
    off, _ = await open_session(client, smoothing="off")
    on, _ = await open_session(client)
    off_results = await off.lockstep(frames, STEP_MS)
    on_results = await on.lockstep(frames, STEP_MS)
    engine = TrackEngine(Track.HOLISTIC)
    try:
        expected = [
            engine.process(decode(jpeg, 10**8), seq * STEP_MS).pose
            for seq, jpeg in enumerate(frames)
        ]
    finally:
        engine.close()
    for result, model in zip(off_results, expected, strict=True):
        assert model is not None
        assert np.allclose(result["landmarks"]["pose"], model, atol=1e-4)
    # Smoothing moves points a little, never a lot: it filters, it does not invent.
    moved = [
        np.abs(np.array(a["landmarks"]["pose"])[:, :2] - np.array(b["landmarks"]["pose"])[:, :2])
        for a, b in zip(on_results, off_results, strict=True)
    ]
    assert moved[0].max() == pytest.approx(0.0, abs=1e-4)  # the first frame passes through
    # At most a few per cent of the image, for the signer's fastest hand at 15 fps.
    assert 0.0 < max(m.max() for m in moved) < 0.06
    assert "rig" not in off_results[0]


async def test_mirror_swaps_left_and_right(make_client: MakeClient) -> None:
    frames = video_frames(ASL_VIDEO)[:6]
    client = await make_client(Config(workers=1))
    plain, _ = await open_session(client, rig=True, smoothing="off")
    mirror, _ = await open_session(client, rig=True, smoothing="off", mirror=True)
    a = (await plain.lockstep(frames, STEP_MS))[-1]["rig"]
    b = (await mirror.lockstep(frames, STEP_MS))[-1]["rig"]
    for name, q in a["bones"].items():
        other = name.replace("left", "@").replace("right", "left").replace("@", "right")
        x, y, z, w = b["bones"][other]
        # A reflection across the YZ plane keeps x and negates y and z.
        assert np.allclose(q, [x, -y, -z, w], atol=2e-3) or np.allclose(
            q, [-x, y, z, -w], atol=2e-3
        ), name
    assert a["expressions"]["blinkLeft"] == pytest.approx(b["expressions"]["blinkRight"], abs=1e-3)


def looks(rig: dict[str, Any]) -> float:
    """The strongest of the rig's look expressions."""
    return max(float(rig["expressions"][name]) for name in LOOKS)


def head_turn_degrees(rig: dict[str, Any]) -> float:
    """How far the head is turned from straight ahead, in the chest."""
    neck, head = (tuple(rig["bones"][name]) for name in ("neck", "head"))
    return math.degrees(quat.angle(quat.multiply(neck, head)))


async def test_calibrate_sets_straight_ahead(make_client: MakeClient) -> None:
    """The last result's head and gaze become straight ahead; the answer gives them, for
    the client to send again (the page keeps them); null clears them. The same frame, sent
    again, is measured from them."""
    frame = video_frames(ASL_VIDEO)[0]
    client = await make_client(Config(workers=1))
    live, _ = await open_session(client, rig=True, smoothing="off")
    await live.ws.send_json({"type": "calibrate"})
    error = await live.next_of("error")
    assert (error["code"], error["seq"]) == ("no_pose", None)
    [plain] = await live.lockstep((frame,), STEP_MS)
    assert head_turn_degrees(plain["rig"]) > 10.0  # 16.5: the signer looks a little aside
    await live.ws.send_json({"type": "calibrate"})
    answer = await live.next_of("calibrated")
    head, gaze = answer["head"], answer["gaze"]
    assert unit(head)
    assert len(gaze) == 2
    [straight] = await live.lockstep((frame,), STEP_MS, first=1)
    # The model itself reads one frame 1.4 degrees apart on its first and second time.
    assert head_turn_degrees(straight["rig"]) < 3.0
    # His eyes look up and aside of the camera (a full look, 0.975); from the rest, nowhere.
    assert looks(plain["rig"]) > 0.5
    assert looks(straight["rig"]) < 0.2
    await live.ws.send_json({"type": "calibrate", "head": None})
    assert await live.next_of("calibrated") == {"type": "calibrated", "head": None, "gaze": None}
    [again] = await live.lockstep((frame,), STEP_MS, first=2)
    assert head_turn_degrees(again["rig"]) == pytest.approx(head_turn_degrees(plain["rig"]), abs=3)
    assert looks(again["rig"]) > 0.5
    # Given back (as the page does after a reconnect), rounded: the same straight ahead.
    rounded = {"head": [c * 1.005 for c in head], "gaze": gaze}
    await live.ws.send_json({"type": "calibrate", **rounded})
    again_answer = await live.next_of("calibrated")
    assert again_answer["head"] == pytest.approx(head, abs=1e-6)
    assert again_answer["gaze"] == gaze
    [given] = await live.lockstep((frame,), STEP_MS, first=3)
    assert head_turn_degrees(given["rig"]) < 3.0
    assert looks(given["rig"]) < 0.2
    assert live.errors == [error]

    without_rig, _ = await open_session(client)
    await without_rig.ws.send_json({"type": "calibrate"})
    assert (await without_rig.next_of("error"))["code"] == "no_rig"


@pytest.mark.parametrize(
    "head",
    [
        "[0, 0, 0]",
        "[0, 0, 0, 0]",
        "[0, 0, 0, 2]",
        '"up"',
        "[true, 0, 0, 0]",
        "[NaN, 0, 0, 1]",
        "[Infinity, 0, 0, 1]",
        "[" + "9" * 400 + ", 0, 0, 1]",
        "{}",
    ],
)
async def test_a_bad_calibration_closes_with_a_reason(make_client: MakeClient, head: str) -> None:
    client = await make_client(Config(workers=1))
    live, _ = await open_session(client, rig=True)
    await live.ws.send_str('{"type": "calibrate", "head": ' + head + "}")
    assert await live.closed() == (
        4001,
        "head must be a unit quaternion [x, y, z, w], or null to clear it",
    )


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (
            '"head": [0, 0, 0, 1], "gaze": [0.1]',
            "gaze must be [left, up], two numbers from -1 to 1",
        ),
        (
            '"head": [0, 0, 0, 1], "gaze": [2, 0]',
            "gaze must be [left, up], two numbers from -1 to 1",
        ),
        (
            '"head": [0, 0, 0, 1], "gaze": [NaN, 0]',
            "gaze must be [left, up], two numbers from -1 to 1",
        ),
        ('"head": null, "gaze": [0, 0]', "a calibrate's gaze comes with its head"),
        ('"gaze": [0, 0]', "a calibrate's gaze comes with its head"),
    ],
)
async def test_a_bad_gaze_closes_with_a_reason(
    make_client: MakeClient, message: str, reason: str
) -> None:
    client = await make_client(Config(workers=1))
    live, _ = await open_session(client, rig=True)
    await live.ws.send_str('{"type": "calibrate", ' + message + "}")
    assert await live.closed() == (4001, reason)


def emotions(result: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in result["rig"]["expressions"].items() if k in EMOTIONS}


def blends(frame: list[tuple[str, tuple[Any, ...]]]) -> dict[str, float]:
    return {args[0]: args[1] for address, args in frame if address == "/VMC/Ext/Blend/Val"}


async def test_a_held_emotion_reaches_the_rig_its_watchers_vmc_and_the_next_session(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until one is held the rig and VMC carry no emotion (a receiver's own hotkeys keep
    working); held, it fades in over a quarter of a second, to the camera, its watchers and
    its VMC receiver alike; the camera's next session holds it from its first frame, and
    says so."""
    frames = video_frames(ASL_VIDEO)[:8]
    async with vmc_receiver() as (port, received):
        client = await make_client(Config(workers=1, vmc_allow=f"127.0.0.1:{port}"))
        vmc = {"host": "127.0.0.1", "port": port}
        rested = when_resting(client.app[LIVE].tokens, monkeypatch)
        live, ready = await open_session(client, rig=True, vmc=vmc)
        watcher = await watch(client, ready["watch"])
        assert (await watcher.receive_json())["type"] == "watching"
        before = await live.lockstep(frames[:2], STEP_MS)
        assert all(emotions(r) == {} for r in before)
        await received.wait_frames(2)
        assert not {"Joy", "happy", "Sorrow"} & set(blends(received.last_frame()))

        await live.ws.send_json({"type": "emotion", "name": "happy"})
        assert await live.next_of("emotion") == {"type": "emotion", "name": "happy", "weight": 1.0}
        held = await live.lockstep(frames[2:], STEP_MS, first=2)
        happy = [emotions(r)["happy"] for r in held]
        # From the frame after the answer: 0, then a step per frame's 67 ms, then whole.
        assert happy == pytest.approx([0.0, 0.267, 0.533, 0.8, 1.0, 1.0], abs=2e-3)
        assert all(emotions(r) == {**dict.fromkeys(EMOTIONS, 0.0), "happy": 1.0} for r in held[4:])
        assert emotions(await results_until(watcher, 7)) == emotions(held[-1])
        await received.wait_frames(8)
        last = blends(received.last_frame())
        assert (last["Joy"], last["happy"], last["Sorrow"], last["Surprised"]) == (1, 1, 0, 0)

        # Paused and resumed (the page's Stop and Start, a reload): still happy, at once.
        await live.ws.close(code=4002, message=b"paused")
        async with asyncio.timeout(30):
            await rested.wait()
        again, _ = await open_session(client, rig=True, resume=ready["resume"], vmc=vmc)
        # The camera is told what it holds (a reloaded page's buttons know nothing of it).
        await again.send(20, 20 * STEP_MS, frames[0])
        told = await again.next_of("emotion", "result")
        assert told == {"type": "emotion", "name": "happy", "weight": 1.0}
        assert emotions(await again.next_of("result"))["happy"] == 1.0
        await again.ws.send_json({"type": "emotion", "name": None})
        assert await again.next_of("emotion") == {"type": "emotion", "name": None, "weight": 0.0}
        let_go = await again.lockstep(frames[1:6], STEP_MS, first=21)
        assert [emotions(r)["happy"] for r in let_go] == pytest.approx(
            [0.733, 0.467, 0.2, 0.0, 0.0], abs=2e-3
        )
        await received.wait_until(lambda: blends(received.last_frame()).get("Joy") == 0.0)
    assert live.errors == again.errors == []


async def test_an_emotion_needs_a_rig(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1))
    live, _ = await open_session(client)
    await live.ws.send_json({"type": "emotion", "name": "sad"})
    error = await live.next_of("error")
    assert error == {
        "type": "error",
        "code": "no_rig",
        "message": 'this session makes no rig to hold an emotion: ask for one with "rig": true'
        " in hello",
        "seq": None,
    }
    [result] = await live.lockstep(video_frames(ASL_VIDEO)[:1], STEP_MS)
    assert "rig" not in result


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (
            '{"type": "emotion", "name": "joy"}',
            "an emotion's name must be one of happy, angry, sad, relaxed, surprised, or null"
            " for none",
        ),
        (
            '{"type": "emotion", "name": "happy", "weight": 2}',
            "an emotion's weight must be a number above 0, at most 1",
        ),
    ],
)
async def test_a_bad_emotion_closes_with_a_reason(
    make_client: MakeClient, message: str, reason: str
) -> None:
    client = await make_client(Config(workers=1))
    live, _ = await open_session(client, rig=True)
    await live.ws.send_str(message)
    assert await live.closed() == (4001, reason)


async def test_bad_options_close_with_a_reason(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1, vmc_allow="127.0.0.1:39540"))
    allowed = {"host": "127.0.0.1", "port": 39540}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"smoothing": {"min_cutoff": -1, "beta": 1}}, 4001, "min_cutoff"),
        ({"smoothing": "jelly"}, 4001, "off"),
        ({"rig": "yes"}, 4001, "rig"),
        ({"vmc": {"host": "127.0.0.1", "port": 39539}}, 1008, "--vmc-allow"),
        (
            {"vmc": [allowed, {"host": "127.0.0.1", "port": 39539}]},
            1008,
            "VMC to 127.0.0.1:39539 is not allowed",
        ),
        ({"vmc": {"host": "::1", "port": 39540}}, 1008, "VMC to [::1]:39540 is not allowed"),
        ({"vmc": {"host": "a b\n", "port": 39540}}, 1008, 'VMC to "a b\\n":39540 is not'),
        ({"vmc": "127.0.0.1:39539"}, 4001, "vmc"),
        ({"vmc": []}, 4001, "a list of 1 to 8"),
        ({"vmc": [allowed] * 9}, 4001, "a list of 1 to 8"),
        ({"vmc": [allowed, "127.0.0.1:39540"]}, 4001, "vmc"),
        # Malformed targets are bad values (4001), not refused addresses (1008).
        ({"vmc": {}}, 4001, "vmc host"),
        ({"vmc": {"port": 39540}}, 4001, "vmc host"),
        ({"vmc": {"host": "", "port": 39540}}, 4001, "vmc host"),
        ({"vmc": {"host": 2130706433, "port": 39540}}, 4001, "vmc host"),
        ({"vmc": {"host": "127.0.0.1"}}, 4001, "vmc port"),
        ({"vmc": {"host": "127.0.0.1", "port": "39540"}}, 4001, "vmc port"),
        ({"vmc": {"host": "127.0.0.1", "port": 39540.0}}, 4001, "vmc port"),
        ({"vmc": {"host": "127.0.0.1", "port": True}}, 4001, "vmc port"),
        ({"vmc": {"host": "127.0.0.1", "port": 65536}}, 4001, "vmc port"),
        ({"vmc": {"host": "127.0.0.1", "port": -1}}, 4001, "vmc port"),
        ({"vmc": [allowed, {"host": "127.0.0.1", "port": 0}]}, 4001, "vmc port"),
        ({"exercise": "plank-dance"}, 4001, "squat"),
    ]
    for options, code, words in cases:
        live = await LiveClient.connect(client)
        await live.ws.send_json({"type": "hello", "version": 1} | options)
        got, reason = await live.closed()
        assert got == code, (options, reason)
        assert words in reason, (options, reason)


async def test_a_watcher_that_says_it_is_there_outlasts_one_that_only_listens(
    make_client: MakeClient,
) -> None:
    """The server's heartbeat counts from the last message it heard. In a 24-minute soak a
    20 s network drop cut the OBS view and the relay (which only listen: pinged 15 s after
    their last pong, cut 7.5 s later) while their camera, sending frames, rode it out. The
    pages and the relay now send a keepalive every 2 s; here neither watcher answers pings
    (as over a dead network), and only the silent one is cut."""
    client = await make_client(Config(workers=1, heartbeat=1.0))
    live, ready = await open_session(client, rig=True)
    silent, talking = [
        await client.ws_connect("/ws", autoping=False, params={"watcher": "1"}) for _ in range(2)
    ]
    for ws in (silent, talking):
        await ws.send_json({"type": "watch", "version": 1, "token": ready["watch"]})
        assert (await ws.receive_json())["type"] == "watching"
    pinged: list[aiohttp.WSMessage] = []

    async def keep_saying_so() -> None:
        while True:
            await talking.send_str(json.dumps({"type": "keepalive"}))
            with contextlib.suppress(TimeoutError):
                message = await talking.receive(timeout=0.2)
                if message.type == aiohttp.WSMsgType.PING:
                    pinged.append(message)

    saying = asyncio.create_task(keep_saying_so())
    try:
        async with asyncio.timeout(30):
            while (await silent.receive()).type not in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.ERROR,
            ):
                pass
    finally:
        saying.cancel()
    assert not talking.closed
    assert pinged == []
    await talking.send_str(json.dumps({"type": "keepalive"}))
    assert live.ws.closed is False


async def test_a_server_taking_no_watchers_says_so_in_ready_and_never_asks_one_back(
    make_client: MakeClient,
) -> None:
    """--max-watchers 0 told each watcher 1013, try again later: it came back for ever, and
    the pages offered a link that could only be refused."""
    client = await make_client(Config(workers=1, max_watchers=0))
    live, ready = await open_session(client, rig=True)
    assert ready["max_watchers"] == 0
    code, reason = await closed(await watch(client, ready["watch"]))
    assert (code, reason) == (1008, "this server allows no watchers (its --max-watchers is 0)")
    await live.ws.close()


async def test_watchers_get_the_same_results_and_hear_the_end(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="webapp.live.session")
    client = await make_client(Config(workers=1, max_watchers=2))
    live, ready = await open_session(client, rig=True)
    watchers = [await watch(client, ready["watch"]) for _ in range(2)]
    for ws in watchers:
        assert (await ws.receive_json())["type"] == "watching"
    third = await watch(client, ready["watch"])
    code, reason = await closed(third)
    assert code == 1013
    assert "2 watchers" in reason
    results = await live.lockstep(video_frames(ASL_VIDEO)[:FRAMES], STEP_MS)
    seen: list[list[int]] = []
    for ws in watchers:
        seqs: list[int] = []
        while len(seqs) < FRAMES and (not seqs or seqs[-1] < FRAMES - 1):
            message = await ws.receive_json(timeout=30)
            assert message["type"] == "result"
            assert "rig" in message
            seqs.append(message["seq"])
        seen.append(seqs)
    for seqs in seen:
        assert seqs == sorted(seqs)
        assert set(seqs) <= {r["seq"] for r in results}
        assert seqs[-1] == FRAMES - 1
    await live.ws.close()
    for ws in watchers:
        code, reason = await closed(ws)
        assert code == 1000
        assert "watched session ended" in reason
    late = await watch(client, ready["watch"])
    code, reason = await closed(late)
    assert code == 4003
    assert "no live session" in reason

    # Each watcher's end line names the session it watched (the one refused 1013 too); the
    # late one found none.
    def watchers_ended() -> list[str]:
        ends = [r for r in caplog.records if getattr(r, "event", None) == "end"]
        return [str(getattr(r, "session", "")) for r in ends if r.levelno == logging.INFO]

    await until(lambda: len(watchers_ended()) == 5, "the camera's and four watchers' end lines")
    named = sorted(watchers_ended())
    assert named == sorted([ready["session"], *[f"watch-{ready['session']}"] * 3, "watcher"])


async def results_until(ws: aiohttp.ClientWebSocketResponse, seq: int) -> dict[str, Any]:
    """Reads a watcher's messages up to the result with `seq`."""
    while True:
        message: dict[str, Any] = await ws.receive_json(timeout=30)
        if message["type"] == "result" and message["seq"] == seq:
            return message


@pytest.mark.parametrize("noticed", [True, False], ids=["lost", "not-yet-found-dead"])
async def test_a_camera_that_reconnects_keeps_its_watch_link_and_watchers(
    make_client: MakeClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    noticed: bool,
) -> None:
    """The page reconnects by itself with the resume string of its last ready. Whether the
    server has seen the old connection go (a reset) or not (a network gone quiet, which only
    the heartbeat finds, seconds later), the new session keeps the token and its watchers."""
    caplog.set_level(logging.INFO, logger="webapp.live.session")
    client = await make_client(Config(workers=1))
    frames = video_frames(ASL_VIDEO)[:2]
    tokens = client.app[LIVE].tokens
    released: list[str] = []  # how the old session gave its token back, once it noticed
    noticed_loss = asyncio.Event()

    def spy(name: str) -> Callable[..., None]:
        method = getattr(tokens, name)

        def called(*args: Any) -> None:
            method(*args)
            released.append(name)
            noticed_loss.set()

        return called

    for name in ("rest", "revoke"):
        monkeypatch.setattr(tokens, name, spy(name))
    live, ready = await open_session(client, rig=True)
    assert ready["resume"] != ready["watch"]
    watcher = await watch(client, ready["watch"])
    assert (await watcher.receive_json())["type"] == "watching"
    await live.lockstep(frames, STEP_MS)
    await results_until(watcher, 1)
    if noticed:
        lose_connection(live)
        await noticed_loss.wait()
        assert released == ["rest"]
    metric = client.app[METRICS].registry.get_sample_value
    assert metric("holotrack_watchers_live") == 1
    again, resumed = await open_session(client, rig=True, resume=ready["resume"])
    assert resumed["watch"] == ready["watch"]
    assert resumed["resume"] not in (ready["resume"], ready["watch"])
    assert metric("holotrack_watchers_live") == 1
    assert await watcher.receive_json(timeout=30) == {
        "type": "watching",
        "session": resumed["session"],
    }
    await again.lockstep(frames, STEP_MS)
    assert "rig" in await results_until(watcher, 1)
    if not noticed:
        # The old connection still stood: its session is ended, and says why (the code its
        # client reads depends on when it echoes the close: the log has the one sent).
        _, reason = await live.closed()
        assert reason == f"another connection took its link over as {resumed['session']}"
        ended = [r.getMessage() for r in caplog.records if " end code=1000 " in r.getMessage()]
        assert any(f"reason='{reason}'" in line for line in ended), ended
    # A resume string works once, and a watcher's token is none.
    for other in (ready["resume"], ready["watch"]):
        stranger, fresh = await open_session(client, resume=other)
        assert fresh["watch"] != ready["watch"]
        await stranger.ws.close()
    await again.ws.close()
    code, reason = await closed(watcher)
    assert code == 1000
    assert "watched session ended" in reason
    await client.app[SESSIONS].wait_empty()
    assert metric("holotrack_sessions_resumed_total", {"after": "1006" if noticed else "open"}) == 1
    assert metric("holotrack_watchers_live") == 0
    # The watcher's end line names the session it watched last, the camera's next one.
    ends = [r for r in caplog.records if getattr(r, "event", None) == "end"]
    watchers = [getattr(r, "session", "") for r in ends if r.getMessage().startswith("watch-")]
    assert watchers == [f"watch-{resumed['session']}"]


async def test_a_paused_camera_keeps_its_watch_link_and_watchers(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stop, a change of settings or a reload on the avatar page closes with 4002: the
    watchers stay and the next session that resumes gets the same link, as after a lost
    connection; a plain close (1000) ends them at once (the test above). Its VMC receiver
    is not sent the rest pose at once: the next session's first rig takes it over."""
    async with vmc_receiver() as (port, received):
        client = await make_client(Config(workers=1, vmc_allow=f"127.0.0.1:{port}"))
        vmc = {"host": "127.0.0.1", "port": port}
        tokens, rest_later = client.app[LIVE].tokens, client.app[LIVE].vmc_rest
        rested = when_resting(tokens, monkeypatch)
        frames = video_frames(ASL_VIDEO)[:2]
        live, ready = await open_session(client, rig=True, vmc=vmc)
        assert ready["watch_grace"] == 60
        assert ready["resumed"] is False
        watcher = await watch(client, ready["watch"])
        assert (await watcher.receive_json())["type"] == "watching"
        await live.lockstep(frames, STEP_MS)
        await results_until(watcher, 1)
        await live.ws.close(code=4002, message=b"paused")
        async with asyncio.timeout(30):
            await rested.wait()
        metric = client.app[METRICS].registry.get_sample_value
        assert metric("holotrack_sessions_closed_total", {"code": "4002"}) == 1
        assert len(tokens) == 1
        assert metric("holotrack_watchers_live") == 1
        assert len(rest_later) == 1
        again, resumed = await open_session(client, rig=True, resume=ready["resume"], vmc=vmc)
        assert resumed["watch"] == ready["watch"]
        assert resumed["resumed"] is True
        assert await watcher.receive_json(timeout=30) == {
            "type": "watching",
            "session": resumed["session"],
        }
        await again.lockstep(frames, STEP_MS)
        assert "rig" in await results_until(watcher, 1)
        assert metric("holotrack_sessions_resumed_total", {"after": "4002"}) == 1
        assert len(rest_later) == 0
        await received.wait_frames(4)


async def test_a_camera_taken_over_by_its_next_connection_leaves_it_its_receiver(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page reconnected before the server found its old connection dead (a network
    gone quiet): the old session ends as the new one takes its link over, and its VMC
    receiver is not sent the rest pose in between (VSeeFace's avatar would drop its arms and
    raise them again): the new session's first rig takes it over, as after a pause."""
    async with vmc_receiver() as (port, received):
        client = await make_client(Config(workers=1, vmc_allow=f"127.0.0.1:{port}"))
        rest_later = client.app[LIVE].vmc_rest
        # However long the new session's first rig takes here, nothing rests meanwhile:
        # neither the ended session's receivers put down, nor its sender's own clock.
        monkeypatch.setattr(rest_later, "_delay", 600.0)
        monkeypatch.setattr(webapp.vmc.sender, "UNSEEN_SECONDS", 600.0)
        vmc = {"host": "127.0.0.1", "port": port}
        frames = video_frames(ASL_VIDEO)[:3]
        live, ready = await open_session(client, rig=True, vmc=vmc)
        await live.lockstep(frames, STEP_MS)
        await received.wait_frames(3)
        again, resumed = await open_session(client, rig=True, resume=ready["resume"], vmc=vmc)
        assert await live.closed() == (
            1000,
            f"another connection took its link over as {resumed['session']}",
        )
        await again.lockstep(frames, STEP_MS)
        await received.wait_frames(6)
        assert len(rest_later) == 0  # the new session's rig took the receiver over
    idle = to_unity_rotation(IDLE_BONES["leftUpperArm"])
    assert all(arms(f) != pytest.approx(idle, abs=1e-3) for f in received.complete_frames())


async def test_blendshapes_the_next_session_no_longer_asks_for_are_rested_in_the_receiver(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unticking "ARKit blendshapes" on the avatar page pauses its session and resumes the
    link in one without them. A receiver keeps the last value it was sent: the new
    session's frames ease them to 0 and its rest pose zeroes them, where VSeeFace kept the
    last blendshapes (a half-shut eye) for good, past Stop too."""
    async with vmc_receiver() as (port, received):
        client = await make_client(Config(workers=1, vmc_allow=f"127.0.0.1:{port}"))
        monkeypatch.setattr(client.app[LIVE].vmc_rest, "_delay", 600.0)
        monkeypatch.setattr(webapp.vmc.sender, "UNSEEN_SECONDS", 600.0)
        vmc = {"host": "127.0.0.1", "port": port}
        frames = video_frames(ASL_VIDEO)[:3]
        live, ready = await open_session(client, rig=True, blendshapes=True, vmc=vmc)
        await live.lockstep(frames, STEP_MS)
        await received.wait_frames(3)
        await live.ws.close(code=4002, message=b"paused")
        again, _ = await open_session(client, rig=True, resume=ready["resume"], vmc=vmc)
        await again.lockstep(frames, STEP_MS)
        await received.wait_frames(6)
        await again.ws.close()
        await received.wait_frames(7)  # the rest pose, at once
    held: dict[str, float] = {}
    for address, args in received.messages:
        if address == "/VMC/Ext/Blend/Val":
            held[args[0]] = args[1]
    assert {"eyeBlinkLeft", "EyeBlinkLeft", "jawOpen"} <= held.keys()
    assert {name: value for name, value in held.items() if value != 0.0} == {}


async def test_a_camera_going_on_by_itself_does_not_take_its_link_from_the_one_there_now(
    make_client: MakeClient,
) -> None:
    """A phone locked (paused), another device took its link and drives the avatar; the
    phone unlocked in a pocket went on by itself (its resume string and link key) and took
    the avatar back mid-stream. Only a Start (no resume string) takes a link from a live
    camera; the one going on is told why."""
    client = await make_client(Config(workers=1))
    link_key = "pocket-phone-" + "k" * 30
    phone, first = await open_session(client, link_key=link_key)
    await phone.ws.close(code=4002, message=b"paused")
    other, taken = await open_session(client, link_key=link_key)
    assert (taken["watch"], taken["resumed"]) == (first["watch"], True)
    back = await LiveClient.connect(client)
    await back.ws.send_json(
        {"type": "hello", "version": 1, "link_key": link_key, "resume": first["resume"]}
    )
    code, reason = await back.closed()
    assert code == 1000
    assert reason.startswith("another camera took this link over while this one was away")
    frame = video_frames(ASL_VIDEO, count=1)[0]
    await other.send(0, 0.0, frame)
    assert (await other.next_of("result"))["seq"] == 0  # still the link's camera
    # Start on the phone: it takes the link.
    started, again = await open_session(client, link_key=link_key)
    assert again["watch"] == first["watch"]
    assert (await other.closed())[
        1
    ] == f"another connection took its link over as {again['session']}"
    # Its own resume string, current, goes on as before.
    await started.ws.close(code=4002, message=b"paused")
    resumed, last = await open_session(client, link_key=link_key, resume=again["resume"])
    assert (last["watch"], last["resumed"]) == (first["watch"], True)
    # So does the one that session went on from: its ready may have been lost with its
    # connection, not yet found dead, and its camera's next try holds only that one.
    retried, kept = await open_session(client, link_key=link_key, resume=again["resume"])
    assert (kept["watch"], kept["resumed"]) == (first["watch"], True)
    assert (await resumed.closed())[0] == 1000
    await retried.ws.close()


async def test_a_link_key_keeps_one_watch_link_across_sessions_and_servers(
    make_client: MakeClient,
) -> None:
    """The avatar page's OBS link, set up once: each session whose hello names the page's
    link key gets the same token, after its last one ended for good, while it still lives
    (the newer takes it over) and on another server (a restart)."""
    config = Config(workers=1, watch_grace=0)
    client, restarted = await make_client(config), await make_client(config)
    key = secrets.token_urlsafe(32)
    live, ready = await open_session(client, rig=True, link_key=key)
    watcher = await watch(client, ready["watch"])
    assert (await watcher.receive_json())["type"] == "watching"
    await live.ws.close()
    assert (await closed(watcher))[0] == 1000
    assert (await closed(await watch(client, ready["watch"])))[0] == 4003
    # Ended for good, and no resume string: the key alone brings the link back.
    again, same = await open_session(client, rig=True, link_key=key)
    assert same["watch"] == ready["watch"]
    assert same["resume"] != ready["resume"]
    assert same["resumed"] is False  # the same link, opened again: nothing carried over
    watcher = await watch(client, ready["watch"])
    assert (await watcher.receive_json())["type"] == "watching"
    newer, taken = await open_session(client, rig=True, link_key=key)
    assert taken["watch"] == ready["watch"]
    assert taken["resumed"] is True
    assert await again.closed() == (
        1000,
        f"another connection took its link over as {taken['session']}",
    )
    assert await watcher.receive_json(timeout=30) == {
        "type": "watching",
        "session": taken["session"],
    }
    await newer.lockstep(video_frames(ASL_VIDEO)[:2], STEP_MS)
    assert "rig" in await results_until(watcher, 1)
    metric = client.app[METRICS].registry.get_sample_value
    assert metric("holotrack_sessions_resumed_total", {"after": "open"}) == 1
    _, elsewhere = await open_session(restarted, link_key=key)
    assert elsewhere["watch"] == ready["watch"]
    _, another = await open_session(client, link_key=secrets.token_urlsafe(32))
    assert another["watch"] != ready["watch"]
    for bad in (5, "short", "x" * 65, "a key with spaces in it, long enough"):
        refused = await LiveClient.connect(client)
        await refused.ws.send_json({"type": "hello", "version": 1, "link_key": bad})
        code, reason = await refused.closed()
        assert code == 4001
        assert reason.startswith("link_key must be 22 to 64 characters"), reason


@pytest.mark.parametrize(
    ("how", "why"), [("lost", "the connection was lost"), ("paused", "its camera paused")]
)
async def test_a_cameras_watchers_end_after_the_grace(
    make_client: MakeClient, how: str, why: str
) -> None:
    client = await make_client(Config(workers=1, watch_grace=0.3))
    live, ready = await open_session(client)
    watcher = await watch(client, ready["watch"])
    assert (await watcher.receive_json())["type"] == "watching"
    if how == "lost":
        lose_connection(live)
    else:
        await live.ws.close(code=4002, message=b"paused")
    code, reason = await closed(watcher)
    assert (code, reason) == (
        1000,
        f"the watched session ended: its camera was not back within 0.3 s ({why})",
    )
    assert len(client.app[LIVE].tokens) == 0
    _, fresh = await open_session(client, resume=ready["resume"])
    assert fresh["watch"] != ready["watch"]
    assert fresh["resumed"] is False
    code, reason = await closed(await watch(client, ready["watch"]))
    assert code == 4003
    for bad in (5, "", "x" * 65):
        refused = await LiveClient.connect(client)
        await refused.ws.send_json({"type": "hello", "version": 1, "resume": bad})
        assert await refused.closed() == (
            4001,
            "resume must be the resume string of an earlier session's ready",
        )


async def test_a_watcher_over_the_limit_or_with_a_bad_token_is_refused(
    make_client: MakeClient,
) -> None:
    client = await make_client(Config(workers=1, max_watchers=1))
    _, ready = await open_session(client)
    first = await watch(client, ready["watch"])
    assert (await first.receive_json())["type"] == "watching"
    code, reason = await closed(await watch(client, ready["watch"]))
    assert code == 1013
    assert "1 watchers" in reason
    for token in ["nope", 12, None, ready["watch"] + "x", ""]:
        code, reason = await closed(await watch(client, token))
        assert code == 4003, token
    bad_version = await client.ws_connect("/ws")
    await bad_version.send_json({"type": "watch", "version": 2, "token": ready["watch"]})
    assert (await closed(bad_version))[0] == 4001


async def test_a_stalled_watcher_is_cut_and_the_session_keeps_its_pace(
    make_client: MakeClient,
) -> None:
    client = await make_client(Config(workers=1, send_timeout=1.0))
    live, ready = await open_session(client, rig=True)
    assert client.port is not None
    # A watcher with a 4 KB receive buffer that it never reads.
    reader, writer = await raw_ws_connect(client.host, client.port)
    token = ready["watch"]
    writer.write(ws_frame(0x1, f'{{"type":"watch","version":1,"token":"{token}"}}'.encode()))
    await writer.drain()
    frames = video_frames(ASL_VIDEO)
    try:
        got = 0
        loop = asyncio.get_running_loop()
        started = loop.time()
        for seq in range(120):
            await live.send(seq, seq * STEP_MS, frames[seq % len(frames)])
            await live.next_of("result")
            got += 1
        elapsed = loop.time() - started
        # The stalled watcher was cut (its connection ends) while the camera went on.
        async with asyncio.timeout(30):
            while (await reader.read(65536)) != b"":
                pass
    finally:
        writer.transport.abort()
    assert got == 120
    # Lockstep with one worker: the camera's pace is the model's, whatever the watcher does.
    assert elapsed < 120 * 2.0


async def test_vmc_reaches_a_real_receiver(make_client: MakeClient) -> None:
    async with vmc_receiver() as (port, received), vmc_receiver() as (port_2, received_2):
        allow = f"127.0.0.1:{port},127.0.0.1:{port_2}"
        client = await make_client(Config(workers=1, vmc_allow=allow))
        # Two apps at once (VSeeFace and VNyan, say); the first named twice is sent to once.
        to = [{"host": "127.0.0.1", "port": p} for p in (port, port_2, port)]
        live, _ = await open_session(client, vmc=to)
        results = await live.lockstep(video_frames(ASL_VIDEO)[:FRAMES], STEP_MS)
        await received.wait_frames(FRAMES)
        await received_2.wait_frames(FRAMES)
    assert received.messages == received_2.messages
    assert received.frames == FRAMES
    # Every argument of the type the protocol gives it: what Unity receivers check.
    assert received.type_tags == VMC_TYPE_TAGS
    assert "rig" not in results[0]  # VMC needs the rig; the results did not ask for it
    frame = received.last_frame()
    addresses = [address for address, _ in frame]
    assert addresses[:3] == ["/VMC/Ext/OK", "/VMC/Ext/T", "/VMC/Ext/Root/Pos"]
    assert addresses[-1] == "/VMC/Ext/Blend/Apply"
    bones = {args[0]: args[1:] for address, args in frame if address == "/VMC/Ext/Bone/Pos"}
    assert {"Hips", "Spine", "Head", "LeftUpperArm", "RightLowerArm", "LeftHand"} <= set(bones)
    assert all(unit(list(values[3:])) for values in bones.values())
    blends = {args[0]: args[1] for address, args in frame if address == "/VMC/Ext/Blend/Val"}
    assert {"A", "Blink_L", "Blink_R", "LookUp", "aa", "blinkLeft"} <= set(blends)
    # The gaze also turns the eye bones, for models that look with them.
    eyes = eye_rotation({k: v for k, v in blends.items() if k in LOOKS})
    assert eyes is not None
    for eye in ("LeftEye", "RightEye"):
        assert bones[eye][3:] == pytest.approx(to_unity_rotation(eyes), abs=1e-5)
    times = [args[0] for address, args in received.messages if address == "/VMC/Ext/T"]
    assert times == sorted(times)


def rests(received: Received, idle: tuple[float, ...]) -> bool:
    """Whether the receiver's newest frame has the left arm at rest."""
    return bool(arms(received.last_frame()) == pytest.approx(idle, abs=1e-4))


def arms(frame: list[tuple[str, tuple[Any, ...]]]) -> tuple[Any, ...]:
    """The left upper arm's rotation in one VMC frame."""
    (rotation,) = [
        a[4:] for address, a in frame if address == "/VMC/Ext/Bone/Pos" and a[0] == "LeftUpperArm"
    ]
    return rotation


async def test_vmc_rests_when_nobody_is_seen_and_when_the_session_ends(
    make_client: MakeClient,
) -> None:
    """VSeeFace keeps the last pose it was sent: the signer walks off (frames of an empty
    room, by their capture times 2 s and more after the last pose) and the receiver is sent
    the rest pose; the session ends and it is sent it again."""
    ok, empty = cv2.imencode(".jpg", np.full((360, 480, 3), 128, np.uint8))
    assert ok
    async with vmc_receiver() as (port, received):
        client = await make_client(Config(workers=1, vmc_allow=f"127.0.0.1:{port}"))
        live, _ = await open_session(client, vmc={"host": "127.0.0.1", "port": port})
        signer = video_frames(ASL_VIDEO)[:3]
        await live.lockstep(signer, STEP_MS)
        await received.wait_frames(3)
        # The last pose was captured at 133 ms; the empty room at 1.5 s to 4.5 s, a frame
        # every half second: the five from 2.5 s on are 2 s or more after it.
        room = await live.lockstep((empty.tobytes(),) * 7, 500.0, first=3)
        assert all(not r["landmarks"]["pose"] for r in room)
        await received.wait_frames(3 + 5)
        # (A slow machine's frames may leave the wall clock's rest in between as well.)
        before = received.frames
        await live.ws.close()
        await received.wait_frames(before + 1)
    idle = to_unity_rotation(IDLE_BONES["leftUpperArm"])
    frames = received.complete_frames()
    assert all(arms(f) != pytest.approx(idle, abs=1e-3) for f in frames[:3])
    assert all(arms(f) == pytest.approx(idle, abs=1e-4) for f in frames[3:])
    assert len(frames) >= 9


async def test_vmc_rests_when_frames_stop_coming(make_client: MakeClient) -> None:
    """A phone as the camera loses its network: no frame comes, so none says nobody is
    seen, and the server waits (heartbeat, idle timeout) before it ends the session. The
    receiver was left in the last gesture for 26-32 s; now it rests 2 s after the last
    pose by the wall clock, while the session is still open."""
    async with vmc_receiver() as (port, received):
        config = Config(workers=1, vmc_allow=f"127.0.0.1:{port}", idle_timeout=300.0)
        client = await make_client(config)
        live, _ = await open_session(client, vmc={"host": "127.0.0.1", "port": port})
        await live.lockstep(video_frames(ASL_VIDEO)[:3], STEP_MS)
        await received.wait_frames(3)
        last_pose = asyncio.get_running_loop().time()
        await received.wait_frames(4)
        waited = asyncio.get_running_loop().time() - last_pose
        assert not live.ws.closed
        frames = received.complete_frames()
    assert rests(received, to_unity_rotation(IDLE_BONES["leftUpperArm"]))
    assert arms(frames[2]) != pytest.approx(arms(frames[3]), abs=1e-3)
    # By the wall clock, not the session's end (300 s away), nor its heartbeat (15 s).
    assert UNSEEN_SECONDS - 0.5 <= waited < config.heartbeat


async def test_the_relay_forwards_a_watched_session_as_vmc(make_client: MakeClient) -> None:
    # A replica behind a balancer, full with the camera's session: the relay, a watcher,
    # is let in still (it says it watches), where a camera would be sent elsewhere.
    client = await make_client(Config(workers=1, max_sessions=1, refuse_when_full=True))
    live, ready = await open_session(client, rig=True)
    url = str(client.make_url("/ws")).replace("http", "ws", 1)
    # Two apps on the user's machine (VSeeFace and VNyan, say), fed by one watcher.
    async with vmc_receiver() as (port, received), vmc_receiver() as (port_2, received_2):
        targets = (Target("127.0.0.1", port), Target("127.0.0.1", port_2))
        config = RelayConfig(url, ready["watch"], targets, retry_max_s=0.5)
        relay = asyncio.create_task(run_relay(config))
        # The relay is watching once the server counts a watcher on the session.
        frames = video_frames(ASL_VIDEO)
        seq = 0
        while min(received.frames, received_2.frames) < 5:
            await live.send(seq, seq * STEP_MS, frames[seq % len(frames)])
            await live.next_of("result")
            seq += 1
            assert seq < 300, "the relay forwarded nothing"
        await live.ws.close()
        # The watched session ended: the relay stops by itself (exit code 0), leaving the
        # receivers' avatars at rest rather than mid-gesture.
        assert await asyncio.wait_for(relay, 30) == 0
        idle = to_unity_rotation(IDLE_BONES["leftUpperArm"])
        for got in (received, received_2):
            await got.wait_until(functools.partial(rests, got, idle))
    for got in (received, received_2):
        bones = {args[0] for address, args in got.messages if address == "/VMC/Ext/Bone/Pos"}
        assert {"Hips", "LeftUpperArm", "RightUpperArm"} <= bones
        # The rig came through JSON: its numbers still go out as OSC floats.
        assert got.type_tags == VMC_TYPE_TAGS
    # Both were sent the same frames, in the same order.
    assert received.messages[:200] == received_2.messages[:200]


async def stream_until_relayed(live: LiveClient, received: Received, camera: int) -> None:
    """Streams the camera session until the relay has forwarded three more frames."""
    frames = video_frames(ASL_VIDEO)
    seq, before = 0, received.frames
    while received.frames < before + 3:
        await live.send(seq, seq * STEP_MS, frames[seq % len(frames)])
        await live.next_of("result")
        seq += 1
        assert seq < 300, f"the relay forwarded nothing from camera session {camera}"


async def test_the_relay_carries_on_when_the_camera_reconnects(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1))
    live, ready = await open_session(client, rig=True)
    url = str(client.make_url("/ws")).replace("http", "ws", 1)
    async with vmc_receiver() as (port, received):
        config = RelayConfig(url, ready["watch"], (Target("127.0.0.1", port),), retry_max_s=0.5)
        relay = asyncio.create_task(run_relay(config))
        for camera in range(2):
            await stream_until_relayed(live, received, camera)
            if camera == 0:
                lose_connection(live)
                live, resumed = await open_session(client, rig=True, resume=ready["resume"])
                assert resumed["watch"] == ready["watch"]
        assert not relay.done()
        await live.ws.close()
        assert await asyncio.wait_for(relay, 30) == 0


async def test_the_relay_waits_for_a_kept_link_through_the_sessions_end(
    make_client: MakeClient,
) -> None:
    """With --wait the relay outlasts its camera's sessions: tonight's stream, on the same
    kept link as last night's, is forwarded by the relay still running since then."""
    client = await make_client(Config(workers=1, watch_grace=0))
    key = secrets.token_urlsafe(32)
    url = str(client.make_url("/ws")).replace("http", "ws", 1)
    async with vmc_receiver() as (port, received):
        live, ready = await open_session(client, rig=True, link_key=key)
        target = (Target("127.0.0.1", port),)
        relay = asyncio.create_task(run_relay(RelayConfig(url, ready["watch"], target, 0.5, True)))
        watchers = client.app[LIVE].tokens.watching
        for camera in range(2):
            await stream_until_relayed(live, received, camera)
            await live.ws.close()
            await client.app[SESSIONS].wait_empty()
            assert watchers() == 0  # the watched session ended: its watchers were closed
            assert not relay.done()
            live, again = await open_session(client, rig=True, link_key=key)
            assert again["watch"] == ready["watch"]
        relay.cancel()
        with pytest.raises(asyncio.CancelledError):
            await relay


async def test_the_relay_reconnects_when_the_connection_drops(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1))
    live, ready = await open_session(client, rig=True)
    server = client.make_url("/ws")
    assert server.host is not None
    assert server.port is not None
    frames = video_frames(ASL_VIDEO)
    seq = 0

    async def stream_until(done: Callable[[], bool]) -> None:
        nonlocal seq
        while not done():
            await live.send(seq, seq * STEP_MS, frames[seq % len(frames)])
            await live.next_of("result")
            seq += 1
            assert seq < 600, "the relay forwarded nothing"

    async with (
        tcp_proxy(server.host, server.port) as (port, proxy),
        vmc_receiver() as (
            vmc_port,
            received,
        ),
    ):
        url = f"ws://127.0.0.1:{port}/ws"
        config = RelayConfig(url, ready["watch"], (Target("127.0.0.1", vmc_port),), 0.5)
        relay = asyncio.create_task(run_relay(config))
        await stream_until(lambda: received.frames >= 3)
        # The network between the relay and the server fails; the session goes on.
        proxy.drop()
        before = received.frames
        await stream_until(lambda: proxy.accepted >= 2 and received.frames >= before + 3)
        assert not relay.done()
        await live.ws.close()
        assert await asyncio.wait_for(relay, 30) == 0
    assert proxy.accepted == 2  # one watcher connection, then one after the drop


@pytest.mark.parametrize("link", ["let_go", "resting"])
async def test_a_camera_whose_ready_was_lost_goes_on_again_with_the_same_resume(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch, link: str
) -> None:
    """A camera going on by itself (its link key and an old resume string) found its link
    let go of (its grace ran out, a restart) or resting from another camera that took it,
    and took it; its ready was lost with its connection, which the server had not yet found
    dead, and its next try, with the same resume string, was refused "another camera took
    this link over while this one was away": its page stopped, though no other camera was."""
    client = await make_client(Config(workers=1, watch_grace=0 if link == "let_go" else 60))
    rested = when_resting(client.app[LIVE].tokens, monkeypatch)
    link_key = "lost-ready-" + "k" * 30
    phone, first = await open_session(client, link_key=link_key)
    await phone.ws.close(code=4002, message=b"paused")
    await rested.wait()  # with no grace, let go of at once
    if link == "resting":
        rested.clear()
        other, _ = await open_session(client, link_key=link_key)
        await other.ws.close(code=4002, message=b"paused")
        await rested.wait()
    back, went_on = await open_session(client, link_key=link_key, resume=first["resume"])
    assert went_on["watch"] == first["watch"]
    # Its ready never reached the camera, which tries again with what it still holds.
    retried, kept = await open_session(client, link_key=link_key, resume=first["resume"])
    assert (kept["watch"], kept["resumed"]) == (first["watch"], True)
    assert await back.closed() == (
        1000,
        f"another connection took its link over as {kept['session']}",
    )
    await retried.ws.close()


async def test_resumed_sessions_say_how_the_session_they_went_on_from_ended(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A person pausing and resuming is no network that drops: counted as one, the
    dashboard's "Cameras reconnected" read every pause as connection trouble."""
    client = await make_client(Config(workers=1))
    rested = when_resting(client.app[LIVE].tokens, monkeypatch)
    metric = client.app[METRICS].registry.get_sample_value

    def resumed(after: str) -> float | None:
        return metric("holotrack_sessions_resumed_total", {"after": after})

    assert [resumed(a) for a in (*map(str, map(int, RESUMABLE)), "open")] == [0.0] * 6
    live, ready = await open_session(client)
    await live.ws.close(code=4002, message=b"paused")
    async with asyncio.timeout(30):
        await rested.wait()
    _still_open, after_pause = await open_session(client, resume=ready["resume"])
    assert after_pause["resumed"] is True
    # The same camera's second connection takes the link from the one still open.
    _, taken = await open_session(client, resume=after_pause["resume"])
    assert taken["resumed"] is True
    assert (resumed("4002"), resumed("open"), resumed("1006")) == (1, 1, 0)
