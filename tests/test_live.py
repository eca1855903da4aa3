"""The live protocol end to end with the real model and frames from the shared videos."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import time
from typing import Any

import pytest

from tests.conftest import Client, MakeClient
from tests.live import LiveClient, frame_message, video_frames
from tests.media import ASL_VIDEO, GESTURE_VIDEO, PERSON_JPEG
from webapp.config import Config
from webapp.config_checks import MAX_FRAME_BYTES
from webapp.keys import SCHEDULER, SESSIONS
from webapp.live.errors import MAX_REASON_BYTES
from webapp.live.text_limits import MAX_TEXT_CHARS
from webapp.protocol import Close


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    # Several sessions share the one worker here on purpose: no admission by rate.
    return await make_client(Config(workers=1, stats_interval=0.2, min_session_fps="0"))


async def test_hello_ready_and_results_echo_seq_and_capture_time(client: Client) -> None:
    live = await LiveClient.connect(client)
    ready = await live.hello("holistic", fps=12)
    assert ready["version"] == 1
    assert ready["track"] == "holistic"
    assert 0 < ready["fps"] <= 12
    assert ready["max_frame_bytes"] == Config().max_frame_bytes
    frames = video_frames(ASL_VIDEO)
    for seq, capture_ms in ((7, 1000.5), (8, 1066.25), (40000, 1133.0)):
        await live.send(seq, capture_ms, frames[seq % len(frames)])
        result = await live.next_of("result")
        assert result["seq"] == seq
        assert result["capture_ms"] == capture_ms
        assert result["image"] == {"width": 480, "height": 360}
        landmarks = result["landmarks"]
        assert len(landmarks["pose"]) == 33
        assert len(landmarks["face"]) == 468
        assert len(landmarks["left_hand"]) == 21
        assert set(result["timing_ms"]) == {"wait", "decode", "inference", "analysis"}


async def test_pose_only_gives_null_face_and_hands(client: Client) -> None:
    live = await LiveClient.connect(client)
    await live.hello("pose")
    results = await live.lockstep(video_frames(ASL_VIDEO)[:5])
    for result in results:
        assert len(result["landmarks"]["pose"]) == 33
        assert result["landmarks"]["face"] is None
        assert result["landmarks"]["left_hand"] is None
        assert result["landmarks"]["right_hand"] is None


def _adds_up(stats: dict[str, Any]) -> bool:
    total = stats["processed"] + stats["dropped"] + stats["errors"] + stats["pending"]
    return bool(stats["received"] == total)


async def test_a_fast_sender_gets_only_fresh_results_and_every_frame_is_counted(
    client: Client,
) -> None:
    live = await LiveClient.connect(client)
    await live.hello("holistic")
    frames = video_frames(ASL_VIDEO)
    for seq, image in enumerate(frames):
        await live.send(seq, seq * 10.0, image)
    last = len(frames) - 1
    seqs: list[int] = []
    while not seqs or seqs[-1] != last:
        seqs.append((await live.next_of("result"))["seq"])
    # Results come in order, skip what went stale, and end on the newest frame.
    assert seqs == sorted(seqs)
    assert len(seqs) < len(frames)
    # JPEG magic with a corrupt body: an error naming the seq, and the session survives.
    await live.send(len(frames), len(frames) * 10.0, b"\xff\xd8\xff" + b"\x00" * 200)
    error = await live.next_of("error")
    assert error["code"] == "bad_frame"
    assert error["seq"] == len(frames)
    while True:
        stats = await live.next_of("stats")
        assert _adds_up(stats), stats
        if stats["pending"] == 0 and stats["errors"] == 1:
            break
    assert stats["received"] == len(frames) + 1
    assert stats["processed"] == len(seqs)
    assert stats["dropped"] == len(frames) - len(seqs)
    assert all(_adds_up(s) for s in live.stats)


async def test_session_past_capacity_gets_1013_with_a_reason(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1, max_sessions=1))
    first = await LiveClient.connect(client)
    await first.hello()
    second = await LiveClient.connect(client)
    await second.ws.send_json({"type": "hello", "version": 1, "track": "holistic", "fps": 15})
    code, reason = await second.closed()
    assert code == 1013
    assert "full" in reason
    results = await first.lockstep(video_frames(ASL_VIDEO)[:2])
    assert len(results) == 2


async def test_idle_session_closes_with_4000(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1, idle_timeout=0.3))
    live = await LiveClient.connect(client)
    await live.hello()
    code, reason = await live.closed()
    assert code == 4000
    assert "idle" in reason


async def test_a_connection_that_never_says_hello_is_told_so(make_client: MakeClient) -> None:
    """It has sent no frame because it has not said hello: "no frame" sent its author
    looking for frames that were never due."""
    client = await make_client(Config(workers=1, idle_timeout=0.3))
    live = await LiveClient.connect(client)
    assert await live.closed() == (
        Close.IDLE,
        "no hello for 0.3 s after connecting; closing idle connection",
    )


async def answered_after_a_hold(make_client: MakeClient, idle: float, stats: int) -> LiveClient:
    """A session whose first frame the server held for `stats` stats messages (0.2 s each,
    the server's own clock: its only worker stopped), then answered."""
    client = await make_client(Config(workers=1, idle_timeout=idle, stats_interval=0.2))
    worker = client.app[SCHEDULER].workers[0]
    live = await LiveClient.connect(client)
    os.kill(worker.pid, signal.SIGSTOP)  # it can neither build the graph nor run the frame
    try:
        await live.hello()
        await live.send(0, 0.0, video_frames(ASL_VIDEO)[0])
        for _ in range(stats):
            await live.next_of("stats")
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    result = await live.next_of("result")
    assert result["seq"] == 0
    return live


async def test_a_session_waiting_for_its_answer_is_not_idle(make_client: MakeClient) -> None:
    """The client sent a frame and waits for it: however long the server takes, that is
    not idleness. A burst of new sessions can keep a graph unbuilt for longer than
    --idle-timeout (26 opened at once on two workers: the last graphs opened after 29 s,
    and the sessions waiting on them were closed as idle)."""
    # Three idle timeouts' worth of the server's own clock.
    live = await answered_after_a_hold(make_client, idle=0.5, stats=8)
    # Answered, the session is the client's again to keep busy.
    code, reason = await live.closed()
    assert code == 4000
    assert "no frame for 0.5 s" in reason


async def test_an_answered_session_has_its_whole_idle_timeout_after_the_answer(
    make_client: MakeClient,
) -> None:
    """The time the server held its frame does not count (docs/protocol.md, 4000), so the
    idle timeout runs from the answer. It ran from the last check that found the frame
    held, anywhere up to --idle-timeout before: a client answered after a long wait for
    its graph was closed as idle as soon as 0.1 s later."""
    idle = 2.0
    live = await answered_after_a_hold(make_client, idle=idle, stats=13)  # past one timeout
    answered = time.monotonic()
    code, reason = await live.closed()
    assert (code, reason) == (Close.IDLE, "no frame for 2 s; closing idle session")
    # Less the answer's way to the client, which a loaded machine can stretch to a tenth.
    assert time.monotonic() - answered >= idle - 0.25


async def test_text_messages_without_frames_do_not_keep_a_session_open(
    make_client: MakeClient,
) -> None:
    client = await make_client(Config(workers=1, idle_timeout=1.0))
    live = await LiveClient.connect(client)
    await live.hello(exercise="squat")

    async def chatter() -> None:
        with contextlib.suppress(ConnectionError):
            while not live.ws.closed:
                await live.ws.send_str('{"type": "summary"}')
                await asyncio.sleep(0.2)

    talking = asyncio.create_task(chatter())
    try:
        async with asyncio.timeout(10):
            code, reason = await live.closed()
    finally:
        talking.cancel()
    assert code == 4000
    assert "no frame for 1 s" in reason


def _jpeg() -> bytes:
    return video_frames(ASL_VIDEO)[0]


HELLO = b'{"type": "hello", "version": 1, "track": "holistic", "fps": 15}'
BAD_SESSIONS: list[tuple[str, list[str | bytes], int]] = [
    ("frame-before-hello", [frame_message(0, 0.0, b"\xff\xd8\xff")], 1008),
    ("bad-json", ["{not json"], 4001),
    ("unknown-first-type", ['{"type": "start"}'], 4001),
    ("wrong-version", ['{"type": "hello", "version": 2, "track": "holistic", "fps": 15}'], 4001),
    ("bad-track", ['{"type": "hello", "version": 1, "track": "hands", "fps": 15}'], 4001),
    ("bad-fps", ['{"type": "hello", "version": 1, "track": "pose", "fps": "fast"}'], 4001),
    ("second-hello", [HELLO.decode(), HELLO.decode()], 4001),
    ("unknown-type", [HELLO.decode(), '{"type": "pause"}'], 4001),
    ("truncated-header", [HELLO.decode(), b"\x01\x02\x03"], 4001),
    ("not-an-image", [HELLO.decode(), frame_message(1, 0.0, b"GIF89a" + b"\x00" * 64)], 1003),
    ("too-big", [HELLO.decode(), frame_message(1, 0.0, b"\xff\xd8\xff" + b"\x00" * 4096)], 1009),
]


@pytest.mark.parametrize(
    ("name", "messages", "code"), BAD_SESSIONS, ids=[b[0] for b in BAD_SESSIONS]
)
async def test_each_bad_message_gets_its_close_code_and_others_are_unaffected(
    make_client: MakeClient, name: str, messages: list[str | bytes], code: int
) -> None:
    client = await make_client(Config(workers=1, max_frame_bytes=2048))
    good = await LiveClient.connect(client)
    await good.hello()
    frames = video_frames(GESTURE_VIDEO)
    small = [f for f in frames if len(f) <= 2048] or [frames[0]]
    bad = await LiveClient.connect(client)
    for message in messages:
        if isinstance(message, bytes):
            await bad.ws.send_bytes(message)
        else:
            await bad.ws.send_str(message)
    got, reason = await bad.closed()
    assert got == code, reason
    assert reason
    # The well-behaved session streams on, frame after frame, through the whole episode.
    await good.send(1, 0.0, small[0] if len(small[0]) <= 2048 else b"\xff\xd8\xff")
    reply = await good.next_of("result", "error")
    assert reply["seq"] == 1


async def test_a_message_past_aiohttps_limit_is_told_the_limit_ready_gave(
    make_client: MakeClient,
) -> None:
    """aiohttp's own limit is the frame's plus its header and some room; its 1009 named
    that, a number the client was never given."""
    client = await make_client(Config(workers=1, max_frame_bytes=2048))
    live = await LiveClient.connect(client)
    assert (await live.hello("pose"))["max_frame_bytes"] == 2048
    await live.ws.send_bytes(frame_message(0, 0.0, bytes(4 * MAX_TEXT_CHARS)))
    code, reason = await live.closed()
    assert code == Close.TOO_BIG
    assert "a frame's image 2048 bytes (max_frame_bytes)" in reason


async def test_the_largest_frame_limit_taken_still_opens_sessions(make_client: MakeClient) -> None:
    """config_checks.MAX_FRAME_BYTES: aiohttp's reader holds the message limit derived from
    it without overflowing, so the upgrade and the hello go through."""
    client = await make_client(Config(workers=1, max_frame_bytes=MAX_FRAME_BYTES))
    live = await LiveClient.connect(client)
    assert (await live.hello("pose"))["max_frame_bytes"] == MAX_FRAME_BYTES


async def test_aiohttps_limit_lets_through_the_largest_message_the_documents_name(
    make_client: MakeClient,
) -> None:
    """docs/SECURITY.md: a message may be at most --max-frame-bytes + 1036 bytes before
    aiohttp refuses it. One of exactly that many was refused as "over" that many."""
    client = await make_client(Config(workers=1, max_frame_bytes=4 * MAX_TEXT_CHARS))
    largest = 4 * MAX_TEXT_CHARS + 1036
    live = await LiveClient.connect(client)
    await live.hello("pose")
    await live.ws.send_bytes(bytes(largest))
    code, reason = await live.closed()
    # Read whole, then refused by the server's own check of the frame's image.
    assert (code, reason) == (Close.TOO_BIG, f"frame of {largest - 12} bytes; the limit is 65536")
    live = await LiveClient.connect(client)
    await live.hello("pose")
    await live.ws.send_bytes(bytes(largest + 1))
    code, reason = await live.closed()
    assert code == Close.TOO_BIG
    assert reason.startswith(f"a message over {largest} bytes;")


async def test_a_text_message_past_aiohttps_limit_is_told_the_text_limit_too(
    make_client: MakeClient,
) -> None:
    """A Node client's text of 1.2 MB was told only of a frame's image limit; and a small
    --max-frame-bytes cut texts under their own limit."""
    client = await make_client(Config(workers=1, max_frame_bytes=2048))
    live = await LiveClient.connect(client)
    await live.hello("pose")
    await live.ws.send_str(json.dumps({"type": "summary", "pad": "x" * (MAX_TEXT_CHARS // 2)}))
    assert (await live.next_of("workout", "error"))["code"] == "no_exercise"
    await live.ws.send_str(json.dumps({"type": "summary", "pad": "€" * MAX_TEXT_CHARS}))
    code, reason = await live.closed()
    assert code == Close.TOO_BIG
    assert reason.endswith(f"a text {MAX_TEXT_CHARS} characters")
    assert len(reason.encode()) <= MAX_REASON_BYTES


async def _stream_alone(client: Client, frames: tuple[bytes, ...]) -> list[Any]:
    live = await LiveClient.connect(client)
    await live.hello("holistic")
    results = await live.lockstep(frames)
    await live.ws.close()
    return [r["landmarks"] for r in results]


def _max_difference(a: list[Any], b: list[Any]) -> float:
    worst = 0.0
    for frame_a, frame_b in zip(a, b, strict=True):
        for part in ("pose", "face", "left_hand", "right_hand"):
            pa, pb = frame_a[part], frame_b[part]
            assert (pa is None) == (pb is None), part
            if pa is None:
                continue
            for p, q in zip(pa, pb, strict=True):
                worst = max(worst, max(abs(x - y) for x, y in zip(p[:3], q[:3], strict=True)))
    return worst


async def test_two_sessions_never_mix_their_landmarks(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1, min_session_fps="0"))
    asl = video_frames(ASL_VIDEO)[:20]
    gesture = video_frames(GESTURE_VIDEO)[:20]
    asl_alone = await _stream_alone(client, asl)
    gesture_alone = await _stream_alone(client, gesture)
    asl_together, gesture_together = await asyncio.gather(
        _stream_alone(client, asl), _stream_alone(client, gesture)
    )
    assert _max_difference(asl_alone, asl_together) < 1e-3
    assert _max_difference(gesture_alone, gesture_together) < 1e-3
    # And the two videos really do give different skeletons.
    nose_asl = [frame["pose"][0][:2] for frame in asl_alone]
    nose_gesture = [frame["pose"][0][:2] for frame in gesture_alone]
    assert (
        max(
            abs(a - b)
            for p, q in zip(nose_asl, nose_gesture, strict=True)
            for a, b in zip(p, q, strict=True)
        )
        > 0.05
    )


async def test_a_killed_worker_ends_only_its_sessions(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=2, min_session_fps="0"))
    scheduler = client.app[SCHEDULER]
    frames = video_frames(ASL_VIDEO)
    first, second = await LiveClient.connect(client), await LiveClient.connect(client)
    ready_first, ready_second = await first.hello(), await second.hello()
    slot_first = scheduler.slots[ready_first["session"]]
    slot_second = scheduler.slots[ready_second["session"]]
    assert slot_first.lane != slot_second.lane
    await first.lockstep(frames[:2])
    os.kill(scheduler.workers[slot_first.lane].pid, signal.SIGKILL)
    code, reason = await first.closed()
    assert code == 1011
    assert "worker" in reason
    assert len(await second.lockstep(frames[:3])) == 3
    third = await LiveClient.connect(client)
    await third.hello()
    assert len(await third.lockstep(frames[:2])) == 2


async def test_predict_during_live_sessions(client: Client) -> None:
    live = await LiveClient.connect(client)
    await live.hello("pose")
    await live.lockstep(video_frames(ASL_VIDEO)[:2])
    response = await client.post(
        "/predict", data=PERSON_JPEG.read_bytes(), headers={"Content-Type": "image/jpeg"}
    )
    assert response.status == 200
    assert len(await live.lockstep(video_frames(ASL_VIDEO)[2:4])) == 2


async def test_graphs_are_released_when_sessions_end(client: Client) -> None:
    scheduler = client.app[SCHEDULER]
    (baseline,) = await scheduler.graph_counts()
    sessions = [await LiveClient.connect(client) for _ in range(5)]
    for live in sessions:
        await live.hello("holistic")
        await live.lockstep(video_frames(ASL_VIDEO)[:1])
    (busy,) = await scheduler.graph_counts()
    assert busy["sessions"] == 5
    assert busy["graphs"] >= baseline["graphs"] + 5 - 1
    for live in sessions:
        await live.ws.close()
    await client.app[SESSIONS].wait_empty()
    (after,) = await scheduler.graph_counts()
    assert after["sessions"] == 0
    # Ended graphs are reset and kept as spares, a few per track; the rest are closed.
    assert after["graphs"] <= baseline["graphs"] + 2


async def test_a_fast_sender_cannot_starve_a_paced_one(client: Client) -> None:
    frames = video_frames(ASL_VIDEO)
    flood, paced = await LiveClient.connect(client), await LiveClient.connect(client)
    await flood.hello("holistic")
    await paced.hello("pose")
    stop = asyncio.Event()

    async def firehose() -> int:
        sent = 0
        while not stop.is_set():
            await flood.send(sent, sent * 5.0, frames[sent % len(frames)])
            sent += 1
            await asyncio.sleep(0.005)  # a sender outpacing the model several times over
        return sent

    flooding = asyncio.create_task(firehose())
    await flood.next_of("result")
    results = await paced.lockstep(frames[:12])
    stop.set()
    await flooding
    # Round-robin turns: a paced frame waits at most for the one flood frame being run.
    flood_result = await flood.next_of("result")
    longest_run = flood_result["timing_ms"]["decode"] + flood_result["timing_ms"]["inference"]
    waits = sorted(r["timing_ms"]["wait"] for r in results)
    assert len(results) == 12
    assert waits[len(waits) // 2] <= 3 * longest_run + 50


async def test_a_session_sending_faster_than_it_asked_takes_no_more(client: Client) -> None:
    """Admission counted it at the 2 fps it asked for: sending faster while another session
    shares the worker gets it 2 fps (and a frame of jitter), not a round-robin share."""
    frames = video_frames(ASL_VIDEO)
    greedy, paced = await LiveClient.connect(client), await LiveClient.connect(client)
    await greedy.hello("holistic", fps=2)
    await paced.hello("holistic", fps=15)
    served: list[int] = []

    async def flood() -> None:
        for sent in itertools.count():
            await greedy.send(sent, sent * 5.0, frames[sent % len(frames)])
            await asyncio.sleep(0.005)

    async def read() -> None:
        while True:
            served.append((await greedy.next_of("result"))["seq"])

    started = time.perf_counter()
    tasks = [asyncio.create_task(flood()), asyncio.create_task(read())]
    results = await paced.lockstep(frames[:20])
    elapsed = time.perf_counter() - started
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert len(results) == 20
    # Two back to back, then one each half second (one more may be on its way out).
    assert 0 < len(served) <= 2 + 2 * elapsed + 1, (len(served), elapsed)


async def test_two_frames_in_flight_give_the_landmarks_of_one_at_a_time(
    make_client: MakeClient,
) -> None:
    """With --overlap-frames a lone session's next frame joins the running one in its graph;
    results still come in order, with what one frame at a time gives on the same frames."""
    client = await make_client(Config(workers=1, overlap_frames=True))
    frames = video_frames(ASL_VIDEO)[:20]
    alone = await LiveClient.connect(client)
    await alone.hello("holistic", fps=30, smoothing="off")
    expected = [r["landmarks"] for r in await alone.lockstep(frames)]
    await alone.ws.close()
    paired = await LiveClient.connect(client)
    await paired.hello("holistic", fps=30, smoothing="off")
    # Its first turn comes once its graph is built: a frame sent before would wait in the
    # mailbox and the next would replace it.
    await paired.next_of("turn")
    results: list[dict[str, Any]] = []
    sent = 0
    while not results or results[-1]["seq"] < len(frames) - 1:
        answered = results[-1]["seq"] + 1 if results else 0
        if sent < len(frames) and sent - answered < 2:  # two in flight
            await paired.send(sent, sent * (1000 / 15), frames[sent])  # as lockstep's
            sent += 1
        else:
            results.append(await paired.next_of("result"))
    seqs = [r["seq"] for r in results]
    # Its outbox keeps only the newest unsent result, so one may rarely replace another.
    assert seqs == sorted(set(seqs))
    assert len(seqs) >= len(frames) - 2
    assert [r["landmarks"] for r in results] == [expected[seq] for seq in seqs]
