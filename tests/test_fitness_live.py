"""Fitness over protocol v1 with the real model: results carry reps, the workout answers
the summary and exercise messages, and the session's end says what was done."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import Client, MakeClient
from tests.live import LiveClient, lose_connection, read_to_close, video_frames, when_resting
from tests.media import MEDIA
from webapp.config import Config
from webapp.keys import LIVE, METRICS, SESSIONS

PUSHUPS = MEDIA / "pushups_tacofleur_320x240_30fps.mp4"


async def test_results_stats_and_the_workout(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(Config(workers=1, stats_interval=0.2))
    live = await LiveClient.connect(client)
    await live.hello("pose", 30, exercise="push_up")
    frames = video_frames(PUSHUPS, count=30, width=320)
    results = await live.lockstep(frames, 1000 / 30)
    for result in results:
        fitness = result["fitness"]
        assert fitness["exercise"] == "push_up"
        assert fitness["reps"] == 0  # the first second holds no rep
        assert fitness["phase"] in {"ready", "up", "down", "out_of_view"}
        assert "landmarks" in result
    assert any(r["fitness"]["angles"] for r in results)
    assert live.stats
    assert all(s["reps"] == 0 for s in live.stats)

    await live.ws.send_json({"type": "summary"})
    workout = await live.next_of("workout")
    assert [s["exercise"] for s in workout["sets"]] == ["push_up"]

    # A new set joins the workout with its first frame; the push-up set, with no rep, is
    # not kept once it begins.
    await live.ws.send_json({"type": "exercise", "name": "squat"})
    await live.next_of("workout")
    await live.send(100, 2000.0, frames[0])
    assert (await live.next_of("result"))["fitness"]["exercise"] == "squat"
    await live.ws.send_json({"type": "summary"})
    workout = await live.next_of("workout")
    assert [s["exercise"] for s in workout["sets"]] == ["squat"]

    with caplog.at_level(logging.INFO, logger="webapp.live.session"):
        await live.ws.send_json({"type": "exercise", "name": "moonwalk"})
        code, reason = await live.closed()
        await client.app[SESSIONS].wait_empty()  # its end line is written as it goes
    assert code == 4001
    assert "known:" in reason
    assert "squat" in reason
    end = [r.getMessage() for r in caplog.records if " end " in r.getMessage()]
    assert end
    assert "sets=1 reps=0" in end[-1]


async def test_a_session_without_an_exercise_can_start_one(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1))
    live = await LiveClient.connect(client)
    await live.hello("pose", 15)
    frame = video_frames(PUSHUPS, count=1, width=320)[0]
    await live.send(0, 0.0, frame)
    assert "fitness" not in await live.next_of("result")
    await live.ws.send_json({"type": "exercise", "name": "lunge"})
    await live.next_of("workout")
    await live.send(1, 100.0, frame)
    assert (await live.next_of("result"))["fitness"]["exercise"] == "lunge"
    await live.ws.send_json({"type": "summary"})
    workout = await live.next_of("workout")
    assert [s["exercise"] for s in workout["sets"]] == ["lunge"]


@pytest.mark.parametrize("noticed", [True, False], ids=["lost", "not-yet-found-dead"])
async def test_a_reconnect_carries_the_workout_on(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture, noticed: bool
) -> None:
    """The page loses its connection at 11.5 s of the push-ups, between the first and second
    rep, and reconnects with its resume string: the second rep is counted in the same set,
    as the second, not as a new set's first. The frames go at 15 fps. When the server has
    not yet seen the old connection go, the resume ends it, and the workout is no longer
    its: its end line has none."""
    caplog.set_level(logging.INFO, logger="webapp.live.session")
    client = await make_client(Config(workers=1))
    frames = video_frames(PUSHUPS, count=585, width=320)[::2]
    cut = round(11.5 * 15)
    live = await LiveClient.connect(client)
    ready = await live.hello("pose", 15, exercise="push_up")
    before = await live.lockstep(frames[:cut], 1000 / 15)
    assert before[-1]["fitness"]["reps"] == 1
    if noticed:
        lose_connection(live)
        await client.app[SESSIONS].wait_empty()
    again = await LiveClient.connect(client)
    resumed = await again.hello("pose", 15, exercise="push_up", resume=ready["resume"])
    after = await again.lockstep(frames[cut:], 1000 / 15, first=cut)
    assert [r["fitness"]["reps"] for r in after][:: len(after) - 1] == [1, 2]
    await again.ws.send_json({"type": "summary"})
    workout = await again.next_of("workout")
    assert [(s["exercise"], s["reps"]) for s in workout["sets"]] == [("push_up", 2)]
    kept = f"{resumed['session']} keeps its last session's watch link and 0 watchers, and its"
    assert any(r.getMessage().startswith(kept) for r in caplog.records)
    if not noticed:
        # The code its client reads depends on when it echoes the close; the log has 1000.
        _, reason = await live.closed()
        assert reason == f"another connection took its link over as {resumed['session']}"
        await again.ws.close()
        await client.app[SESSIONS].wait_empty()
        lines = [r.getMessage() for r in caplog.records]
        [old_end] = [line for line in lines if line.startswith(f"{ready['session']} end ")]
        assert "code=1000" in old_end
        assert "sets=" not in old_end


async def test_watchers_hear_the_workout_as_it_moves_on(make_client: MakeClient) -> None:
    """A coach's card lists the sets: watchers get the workout when it begins, at each rep
    and new set, without the camera asking; one who joins later gets it after watching."""
    client = await make_client(Config(workers=1))
    frames = video_frames(PUSHUPS, count=3, width=320)
    live = await LiveClient.connect(client)
    ready = await live.hello("pose", 15, exercise="push_up")
    first = await client.ws_connect("/ws")
    await first.send_json({"type": "watch", "version": 1, "token": ready["watch"]})
    assert (await first.receive_json())["type"] == "watching"
    await live.lockstep(frames[:2])
    heard = [await next_workout(first)]
    await live.ws.send_json({"type": "exercise", "name": "squat"})
    await live.next_of("workout")
    await live.lockstep(frames[2:], first=2)
    heard.append(await next_workout(first))
    sets = [[s["exercise"] for s in workout["sets"]] for workout in heard]
    # The push-up set had no rep: the squat set takes its place.
    assert sets == [["push_up"], ["squat"]]

    later = await client.ws_connect("/ws")
    await later.send_json({"type": "watch", "version": 1, "token": ready["watch"]})
    assert (await later.receive_json())["type"] == "watching"
    assert await later.receive_json() == heard[-1]
    for ws in (first, later, live.ws):
        await ws.close()


async def test_a_sets_rep_target_reaches_its_results_its_watchers_and_the_workout(
    make_client: MakeClient,
) -> None:
    """The person's target for a set (the fitness page's box) is the server's to tell: a
    coach watching sees it, a change of it is told at once, a new set has its own."""
    client = await make_client(Config(workers=1))
    frames = video_frames(PUSHUPS, count=4, width=320)
    live = await LiveClient.connect(client)
    ready = await live.hello("pose", 15, exercise="push_up", target=10)
    coach = await client.ws_connect("/ws")
    await coach.send_json({"type": "watch", "version": 1, "token": ready["watch"]})
    assert (await coach.receive_json())["type"] == "watching"
    [result] = await live.lockstep(frames[:1])
    assert result["fitness"]["target"] == 10
    assert [s["target"] for s in (await next_workout(coach))["sets"]] == [10]

    # 12.0, as some JSON encoders write a whole number, is 12.
    await live.ws.send_json({"type": "target", "reps": 12.0})
    assert [s["target"] for s in (await live.next_of("workout"))["sets"]] == [12]
    assert [s["target"] for s in (await next_workout(coach))["sets"]] == [12]
    [result] = await live.lockstep(frames[1:2], first=1)
    assert result["fitness"]["target"] == 12

    await live.ws.send_json({"type": "exercise", "name": "squat", "target": 20})
    await live.next_of("workout")
    await live.ws.send_json({"type": "exercise", "name": "push_up"})
    await live.next_of("workout")
    [result] = await live.lockstep(frames[2:3], first=2)
    assert result["fitness"]["target"] is None
    await live.ws.send_json({"type": "target", "reps": None})
    await live.ws.send_json({"type": "summary"})
    await live.next_of("workout")
    workout = await live.next_of("workout")
    # The squat set had no frame, and the first push-up set no rep: neither is listed.
    assert [(s["exercise"], s["target"]) for s in workout["sets"]] == [("push_up", None)]

    for bad in (
        {"type": "target", "reps": 0},
        {"type": "target"},
        {"type": "target", "reps": True},
    ):
        spoilt = await LiveClient.connect(client)
        await spoilt.hello("pose", 15, exercise="push_up")
        await spoilt.ws.send_json(bad)
        code, reason = await spoilt.closed()
        assert code == 4001, bad
        assert "reps" in reason, bad
    for hello in ({"target": 1000, "exercise": "push_up"}, {"target": 5}):
        refused = await LiveClient.connect(client)
        await refused.ws.send_json({"type": "hello", "version": 1, "track": "pose", **hello})
        code, reason = await refused.closed()
        assert code == 4001, hello
        assert "target" in reason, hello
    for ws in (coach, live.ws):
        await ws.close()


async def next_workout(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = await ws.receive_json(timeout=30)
        if message["type"] == "workout":
            return message


async def end_by_resume(client: Client, message: dict[str, Any]) -> aiohttp.ClientWebSocketResponse:
    ws = await client.ws_connect("/ws")
    await ws.send_json({"type": "end", "version": 1, **message})
    return ws


async def next_close(ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, str]:
    """Reads up to the server's close, within 10 s (far inside the tests' watch grace)."""
    return await read_to_close(ws, within=10)


async def coached_push_ups(
    make_client: MakeClient,
) -> tuple[Client, LiveClient, dict[str, Any], aiohttp.ClientWebSocketResponse]:
    """Two frames of push-ups with a coach watching, on a server that keeps a paused
    session's link for 10 minutes: the server, the camera, its ready and the coach."""
    client = await make_client(Config(workers=1, watch_grace=600))
    live = await LiveClient.connect(client)
    ready = await live.hello("pose", 15, exercise="push_up")
    coach = await client.ws_connect("/ws")
    await coach.send_json({"type": "watch", "version": 1, "token": ready["watch"]})
    assert (await coach.receive_json())["type"] == "watching"
    await live.lockstep(video_frames(PUSHUPS, count=2, width=320))
    return client, live, ready, coach


async def pause(live: LiveClient, tokens: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The camera pauses (4002), and the server has put its link to rest."""
    rested = when_resting(tokens, monkeypatch)
    await live.ws.close(code=4002, message=b"paused")
    async with asyncio.timeout(30):
        await rested.wait()
    assert len(tokens) == 1


@pytest.mark.parametrize("paused", [True, False], ids=["paused", "pause-not-yet-read"])
async def test_an_end_after_a_pause_ends_the_workout_and_its_watchers_at_once(
    make_client: MakeClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    paused: bool,
) -> None:
    """Stop on a paused camera: it has no connection to close with 1000, so it sends end
    with its resume string on a new one. The coach's card is closed as after a Stop, now
    and not when the 10-minute grace runs out, and the camera gets the workout for its
    log. When the server has not yet read the pause, the end ends the live session too."""
    caplog.set_level(logging.INFO, logger="webapp.live.session")
    client, live, ready, coach = await coached_push_ups(make_client)
    tokens = client.app[LIVE].tokens
    assert [s["exercise"] for s in (await next_workout(coach))["sets"]] == ["push_up"]
    if paused:
        await pause(live, tokens, monkeypatch)

    ender = await end_by_resume(client, {"resume": ready["resume"]})
    workout = await ender.receive_json(timeout=30)
    assert workout["type"] == "workout"
    assert [(s["exercise"], s["reps"]) for s in workout["sets"]] == [("push_up", 0)]
    assert workout["sets"][0]["duration_ms"] > 0
    assert await next_close(ender) == (1000, f"{ready['session']} ended")
    assert await next_close(coach) == (
        1000,
        "the watched session ended: the client closed the session",
    )
    if not paused:
        assert await live.closed() == (1000, "its camera ended it from another connection")
    assert len(tokens) == 0
    ended = f"{ready['session']} ended for good by its camera after a pause"
    assert ended in [r.getMessage() for r in caplog.records]
    # The resume string ended it: it names nothing any more.
    again = await end_by_resume(client, {"resume": ready["resume"]})
    code, reason = await next_close(again)
    assert code == 4003
    assert reason.startswith("this resume string names no paused session"), reason
    fresh = await LiveClient.connect(client)
    assert (await fresh.hello("pose", 15, resume=ready["resume"]))["watch"] != ready["watch"]


async def test_an_end_without_a_workout_or_with_a_bad_resume(make_client: MakeClient) -> None:
    """A session without an exercise ends with no workout said; an end whose resume string
    is missing or not one, or whose version is wrong, is a protocol error (4001)."""
    client = await make_client(Config(workers=1, watch_grace=600))
    live = await LiveClient.connect(client)
    ready = await live.hello("pose", 15)
    await live.ws.close(code=4002, message=b"paused")
    await client.app[SESSIONS].wait_empty()
    ender = await end_by_resume(client, {"resume": ready["resume"]})
    assert await next_close(ender) == (1000, f"{ready['session']} ended")
    assert len(client.app[LIVE].tokens) == 0
    words = "an end needs the resume string of the paused session's last ready"
    bad: list[dict[str, Any]] = [{}, {"resume": 5}, {"resume": ""}, {"resume": None}]
    for message in bad:
        refused = await end_by_resume(client, message)
        assert await next_close(refused) == (4001, words), message
    wrong = await client.ws_connect("/ws")
    await wrong.send_json({"type": "end", "version": 2, "resume": ready["resume"]})
    assert await next_close(wrong) == (4001, "protocol version 2 is not supported; use 1")
    metric = client.app[METRICS].registry.get_sample_value
    # Ends are no sessions: only the camera's pause is counted.
    closes = {
        code: metric("holotrack_sessions_closed_total", {"code": code})
        for code in ["1000", "4001", "4002"]
    }
    assert closes == {"1000": 0, "4001": 0, "4002": 1}


async def test_an_end_over_http_does_what_the_sockets_end_does(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page being unloaded cannot count on a new WebSocket getting its end out, so it
    posts the resume string to /api/end (a fetch with keepalive outlives the page): the
    coach's card is closed at once, and the answer carries the workout."""
    client, live, ready, coach = await coached_push_ups(make_client)
    tokens = client.app[LIVE].tokens
    await pause(live, tokens, monkeypatch)

    ended = await client.post("/api/end", json={"resume": ready["resume"]})
    assert ended.status == 200
    body = await ended.json()
    assert body["ended"] == ready["session"]
    assert [(s["exercise"], s["reps"]) for s in body["workout"]["sets"]] == [("push_up", 0)]
    assert await next_close(coach) == (
        1000,
        "the watched session ended: the client closed the session",
    )
    assert len(tokens) == 0
    again = await client.post("/api/end", json={"resume": ready["resume"]})
    assert again.status == 404
    refusal = await again.json()
    assert refusal["error"] == "unknown_resume"
    assert refusal["detail"].startswith("this resume string names no paused session")


async def test_an_end_over_http_without_a_workout_or_with_a_bad_body(
    make_client: MakeClient,
) -> None:
    client = await make_client(Config(workers=1, watch_grace=600))
    live = await LiveClient.connect(client)
    ready = await live.hello("pose", 15)
    await live.ws.close(code=4002, message=b"paused")
    await client.app[SESSIONS].wait_empty()
    # What the page's fetch sends: a string body, no JSON content type needed.
    ended = await client.post("/api/end", data=f'{{"resume": "{ready["resume"]}"}}')
    assert await ended.json() == {"ended": ready["session"], "workout": None}
    bodies: list[bytes] = [
        b"",
        b"resume",
        b"\xff\xfe",
        b"[]",
        b"{}",
        b'{"resume": 5}',
        b'{"resume": ""}',
        b"[" * 1024,
    ]
    for body in bodies:
        refused = await client.post("/api/end", data=body)
        assert refused.status == 400, body
        assert (await refused.json())["error"] == "bad_request", body
    big = await client.post("/api/end", data=b" " * 1025)
    assert big.status == 413
    assert (await big.json())["error"] == "too_large"

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b" " * 1024

    # Chunked, so no length to judge it by: cut at the first byte past the limit.
    streamed = await client.post("/api/end", data=endless())
    assert streamed.status == 413
    wrong = await client.get("/api/end")
    assert wrong.status == 405
