"""How a live session ends when something is wrong: each bad value with 4001 and a reason
naming it, and the server's own failures with 1011, never as a normal close."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from tests.conftest import MakeClient
from tests.corpus import jpeg_declaring
from tests.live import LiveClient, read_to_close, video_frames
from tests.media import ASL_VIDEO
from webapp.analysis.fitness import load_exercises
from webapp.config import Config
from webapp.errors import SHOWN_CHARS, shown
from webapp.keys import LIVE, METRICS, SESSIONS
from webapp.live import handler, message_limits, text_limits
from webapp.live import session as live_session
from webapp.live.errors import MAX_REASON_BYTES, SessionClosed
from webapp.live.logbook import Refusals
from webapp.live.message_limits import MESSAGE_BURST
from webapp.live.messages import check_version, parse_control, parse_hello
from webapp.live.options import parse_options
from webapp.live.text_limits import MAX_TEXT_CHARS, TEXT_BURST
from webapp.protocol import Close
from webapp.vmc.sender import Target
from webapp.ws_close import sent_code

HELLO = {"type": "hello", "version": 1, "track": "pose", "fps": 15}


def closed_by(message: dict[str, Any]) -> SessionClosed:
    with pytest.raises(SessionClosed) as raised:
        parse_options(message, frozenset(), load_exercises())
    return raised.value


@pytest.mark.parametrize("name", ["min_cutoff", "beta", "d_cutoff", "min_speed"])
@pytest.mark.parametrize("value", [10**400, -(10**400), 10**309], ids=["1e400", "-1e400", "1e309"])
def test_a_smoothing_value_too_big_for_a_float_is_a_protocol_error(name: str, value: int) -> None:
    closed = closed_by({"smoothing": {name: value}})
    assert closed.code == Close.PROTOCOL
    assert name in closed.reason


async def test_a_huge_smoothing_value_closes_with_4001_naming_it(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1))
    live = await LiveClient.connect(client)
    await live.ws.send_str(json.dumps({**HELLO, "smoothing": {"beta": 10**400}}))
    code, reason = await live.closed()
    assert code == Close.PROTOCOL
    assert "beta" in reason


async def test_a_live_frame_over_the_frame_pixels_is_refused_undecoded(
    make_client: MakeClient,
) -> None:
    """A frame's decoding is timed as its track's in the round-robin, not as its own: one
    session sending 4900x4900 JPEGs (388 ms each to decode) cut another's 13.6 fps on its
    worker to 1. Live frames have a pixel limit of their own, under the stills'."""
    client = await make_client(Config(workers=1, max_frame_pixels=100_000))
    small, large = video_frames(ASL_VIDEO, count=1, width=320)[0], video_frames(ASL_VIDEO, 1)[0]
    live = await LiveClient.connect(client)
    await live.hello("pose", 15)
    await live.send(0, 0.0, large)  # 480 x 360: 172,800 pixels
    error = await live.next_of("error")
    assert (error["seq"], error["code"]) == (0, "too_many_pixels")
    assert "the limit is 100000" in error["message"]
    await live.send(1, 66.0, small)  # 320 x 240: 76,800
    assert (await live.next_of("result"))["seq"] == 1
    await live.ws.close()


async def test_a_socket_the_server_closed_keeps_no_heartbeat(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sockets: dict[int, handler._Socket] = {}
    prepare = handler._Socket.prepare

    async def kept(self: handler._Socket, request: web.BaseRequest) -> AbstractStreamWriter:
        sockets[id(self)] = self  # prepared again by aiohttp once the handler returns it
        return await prepare(self, request)

    monkeypatch.setattr(handler._Socket, "prepare", kept)
    client = await make_client(Config(workers=1))
    live = await LiveClient.connect(client)
    await live.ws.send_str(json.dumps({**HELLO, "fps": "fast"}))
    code, _ = await live.closed()
    await client.app[SESSIONS].wait_empty()
    await asyncio.sleep(0)  # a heartbeat reset the client's close answer asked for runs
    assert code == Close.PROTOCOL
    [ws] = sockets.values()
    # Re-armed, the timer held the closed socket, its request and its parser for the
    # whole heartbeat and pong wait (22.5 s by default), and the memory they took.
    assert ws.closed
    assert ws._heartbeat_cb is None


async def test_a_failure_of_the_server_closes_with_1011_and_is_logged_once(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(live_session, "open_vmc", broken)
    client = await make_client(Config(workers=1))
    live = await LiveClient.connect(client)
    with caplog.at_level(logging.INFO):
        await live.ws.send_str(json.dumps(HELLO))
        code, reason = await live.closed()
        await client.app[SESSIONS].wait_empty()
    assert code == Close.INTERNAL
    assert reason == "the server failed on this session; see its log"
    traces = [r for r in caplog.records if r.exc_info is not None]
    assert len(traces) == 1
    assert "a bug" in str(traces[0].exc_info[1] if traces[0].exc_info else None)
    assert any("code=1011" in r.getMessage() for r in caplog.records)


async def test_a_client_that_hangs_up_right_after_hello_leaves_nothing_behind(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(Config(workers=1))
    sessions = client.app[SESSIONS]

    async def reset_first(targets: tuple[Target, ...]) -> None:
        # The client's reset lands while its session is being set up, before ready.
        for session in sessions:
            assert session.transport is not None
            session.transport.abort()

    monkeypatch.setattr(live_session, "open_vmc", reset_first)
    live = await LiveClient.connect(client)
    with caplog.at_level(logging.INFO):
        await live.ws.send_str(json.dumps(HELLO))
        await live.ws.receive()
        await sessions.wait_empty()
    assert len(client.app[LIVE].tokens) == 0
    assert [r.getMessage() for r in caplog.records if r.exc_info is not None] == []
    ended = [r.getMessage() for r in caplog.records if " end " in r.getMessage()]
    assert len(ended) == 1
    assert "code=1000 reason='the client left before ready'" in ended[0]


@pytest.mark.parametrize("capture_ms", [1e306, -1e306, 2**63 / 1000, 1.8e305])
async def test_a_capture_time_no_clock_reaches_closes_with_4001(
    make_client: MakeClient, capture_ms: float
) -> None:
    client = await make_client(Config(workers=1))
    live = await LiveClient.connect(client)
    await live.hello("pose")
    await live.send(0, capture_ms, video_frames(ASL_VIDEO)[0])
    code, reason = await live.closed()
    assert code == Close.PROTOCOL
    assert reason.startswith("capture_ms must lie strictly between")


@pytest.mark.parametrize("control", ['{"type": "summary"}', '{"type": "target", "reps": 5}'])
async def test_a_summary_or_target_without_an_exercise_is_answered_with_an_error(
    make_client: MakeClient, control: str
) -> None:
    client = await make_client(Config(workers=1))
    live = await LiveClient.connect(client)
    await live.hello("pose")
    await live.ws.send_str(control)
    async with asyncio.timeout(10):
        error = await live.next_of("error")
    assert error == {
        "type": "error",
        "code": "no_exercise",
        "message": live_session.NO_EXERCISE,
        "seq": None,
    }
    # The session goes on: a frame still gets its result.
    await live.send(0, 0.0, video_frames(ASL_VIDEO)[0])
    assert (await live.next_of("result"))["seq"] == 0


def test_an_unknown_exercise_is_quoted_once_and_the_known_names_stay_whole() -> None:
    known = ", ".join(load_exercises())
    assert closed_by({"exercise": "zzz"}).reason == f'unknown exercise "zzz"; known: {known}'
    for name in ["z" * 60, "é" * 200, 12, ["squat"]]:
        reason = closed_by({"exercise": name}).reason
        assert len(reason.encode()) <= MAX_REASON_BYTES, name
        assert reason.endswith(f"; known: {known}"), name
        assert reason.startswith((f"unknown exercise {shown(name)};", "unknown exercise;")), name


def reason_of(call: Callable[[], object]) -> str:
    with pytest.raises(SessionClosed) as raised:
        call()
    return raised.value.reason


def test_a_clients_values_are_quoted_as_json_not_python() -> None:
    """A Node client read 'protocol version None', 'True' and "'1'" in its close reasons:
    the values it sent are quoted as it wrote them."""
    versions = {None: "null", True: "true", "1": '"1"', 2: "2"}
    for version, quoted in versions.items():
        reason = reason_of(lambda v=version: check_version({"version": v}))  # type: ignore[misc]
        assert reason == f"protocol version {quoted} is not supported; use 1"
    assert reason_of(lambda: check_version({})) == "protocol version null is not supported; use 1"
    port = closed_by({"vmc": {"host": "127.0.0.1", "port": True}}).reason
    assert port.endswith("; got true")
    assert closed_by({"vmc": {"host": "", "port": 1}}).reason.endswith('; got ""')
    assert reason_of(lambda: parse_control('{"type": null}')) == "unknown message type null"
    assert reason_of(lambda: parse_control("[1, 2]")).startswith("a text message must be an object")
    long = shown("x" * 100)
    assert (len(long), long[:2], long[-3:]) == (SHOWN_CHARS, '"x', "...")
    assert shown("\ud800") == '"\\ud800"'  # ASCII: a lone surrogate is valid UTF-8 only escaped


def test_null_is_a_hello_field_left_out() -> None:
    """A Node client wrote null for fields it did not set: exercise and vmc took it, fps,
    track and rig closed the session with 4001."""
    fields = "track fps smoothing rig mirror blendshapes vmc exercise target key resume link_key"
    nulls = parse_hello({"type": "hello", "version": 1} | dict.fromkeys(fields.split()))
    bare = parse_hello({"type": "hello", "version": 1})
    assert (nulls.track, nulls.fps) == (bare.track, bare.fps)
    exercises = load_exercises()
    assert parse_options(nulls.message, frozenset(), exercises) == parse_options(
        bare.message, frozenset(), exercises
    )
    assert reason_of(lambda: parse_hello({"type": "hello", "version": None})).startswith(
        "protocol version null"
    )


def test_a_hello_asks_for_0_5_to_60_fps_both_included() -> None:
    """The ends of the range docs/protocol.md gives are rates a client may ask for."""
    for fps in (0.5, 60, 60.0):
        assert parse_hello({"type": "hello", "version": 1, "fps": fps}).fps == fps
    for fps in (0.49, 60.01):
        with pytest.raises(SessionClosed) as closed:
            parse_hello({"type": "hello", "version": 1, "fps": fps})
        assert (closed.value.code, closed.value.reason) == (
            Close.PROTOCOL,
            "fps must be between 0.5 and 60.0",
        )


async def test_a_watcher_with_another_version_is_told_which_to_use(
    make_client: MakeClient,
) -> None:
    client = await make_client(Config(workers=1))
    ws = await client.ws_connect("/ws")
    await ws.send_json({"type": "watch", "version": 2, "token": "x"})
    msg = await ws.receive()
    assert (sent_code(ws, msg), msg.extra) == (4001, "protocol version 2 is not supported; use 1")


async def test_a_flood_of_text_ends_its_session_and_the_others_go_on(
    make_client: MakeClient,
) -> None:
    """A burst as a page makes one is answered; past it, each control still costs the loop
    its parsing and answer, so a flood ends the session that sends it (20,000 summaries of
    a 100-set workout held every session 13 s). Another session's frames go on."""
    client = await make_client(Config(workers=1))
    frame = video_frames(ASL_VIDEO)[0]
    other = await LiveClient.connect(client)
    await other.hello("pose")
    live = await LiveClient.connect(client)
    await live.hello("pose", exercise="squat")
    for _ in range(int(TEXT_BURST) - 1):  # the hello was the first
        await live.ws.send_str('{"type": "summary"}')
    await live.send(0, 0.0, frame)
    assert (await live.next_of("result"))["seq"] == 0
    for _ in range(100):
        await live.ws.send_str('{"type": "summary"}')
    code, reason = await live.closed()
    assert (code, reason) == (Close.POLICY, "more than 30 text messages a second (60 at once)")
    await other.send(1, 0.0, frame)
    assert (await other.next_of("result"))["seq"] == 1


FLOOD = "more than 500 WebSocket messages a second (1000 at once), pings and frames included"


async def test_a_flood_of_frames_or_pings_ends_its_connection_and_the_others_go_on(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames with no image (each answered with an error) and pings (each with a pong) cost
    the loop as text does: one client sending either as fast as it could took another
    session on the same server from 14 fps to 1.5 or 5. With time held still, the burst is
    all a connection has; a ping within it is still answered."""
    client = await make_client(Config(workers=1))
    frame = video_frames(ASL_VIDEO)[0]
    other = await LiveClient.connect(client)
    await other.hello("pose")
    now = time.monotonic()
    monkeypatch.setattr(message_limits, "time", SimpleNamespace(monotonic=lambda: now))
    live = await LiveClient.connect(client)
    await live.hello("pose")  # the first of its messages
    for seq in range(int(MESSAGE_BURST)):
        await live.send(seq, 0.0, b"")
    assert await live.closed() == (Close.POLICY, FLOOD)

    pinger = await client.ws_connect("/ws", autoping=False)
    await pinger.ping(b"are you there")
    pong = await pinger.receive(timeout=10)
    assert (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"are you there")
    for _ in range(int(MESSAGE_BURST)):
        await pinger.ping()
    code, reason = await read_to_close(pinger, within=10)
    assert (code, reason) == (Close.POLICY, FLOOD)

    await other.send(1, 0.0, frame)
    assert (await other.next_of("result"))["seq"] == 1


async def test_a_flooding_connection_ends_with_the_close_frame_without_waiting_for_its_own(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flood is a client not worth waiting for: aiohttp would read on for its close
    frame for 10 s (parsing the flood all the while), then the session's own send timeout
    would cut it. The close frame goes, then the connection ends, the client's close or not."""
    client = await make_client(Config(workers=1, send_timeout=60))
    now = time.monotonic()
    monkeypatch.setattr(message_limits, "time", SimpleNamespace(monotonic=lambda: now))
    assert client.port is not None
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101 ")
    # Empty pings, masked as a client's frames must be; the last is one past the burst.
    writer.write(b"\x89\x80\x00\x00\x00\x00" * (int(MESSAGE_BURST) + 1))
    async with asyncio.timeout(5):
        heard = await reader.read()  # to the end of the connection: this client never closes
    writer.close()
    reason = FLOOD.encode()
    close = bytes([0x88, 2 + len(reason)]) + Close.POLICY.to_bytes(2, "big") + reason
    assert heard == b"\x8a\x00" * int(MESSAGE_BURST) + close


async def session_and_watcher(
    make_client: MakeClient,
) -> tuple[LiveClient, aiohttp.ClientWebSocketResponse]:
    """A pose session on one worker and a watcher of it, watching."""
    client = await make_client(Config(workers=1))
    live = await LiveClient.connect(client)
    ready = await live.hello("pose")
    watcher = await client.ws_connect("/ws")
    await watcher.send_json({"type": "watch", "version": 1, "token": ready["watch"]})
    assert (await watcher.receive_json())["type"] == "watching"
    return live, watcher


async def test_a_text_message_too_long_ends_a_session_or_a_watcher(
    make_client: MakeClient,
) -> None:
    live, watcher = await session_and_watcher(make_client)
    long = json.dumps({"type": "summary", "pad": "x" * MAX_TEXT_CHARS})
    await watcher.send_str(long)
    assert await read_to_close(watcher, within=10) == (
        Close.TOO_BIG,
        f"a text message of {len(long)} characters; the limit is {MAX_TEXT_CHARS}",
    )
    await live.ws.send_str(long)
    assert (await live.closed())[0] == Close.TOO_BIG


async def test_the_watch_message_counts_against_the_watchers_text_allowance(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One allowance per connection: the watch message was its first text, as a hello is a
    session's. With time held still, the burst's last place is the watch message's."""
    client = await make_client(Config(workers=1))
    live = await LiveClient.connect(client)
    ready = await live.hello("pose")
    monkeypatch.setattr(text_limits, "time", SimpleNamespace(monotonic=lambda: 1000.0))
    watcher = await client.ws_connect("/ws")
    await watcher.send_json({"type": "watch", "version": 1, "token": ready["watch"]})
    assert (await watcher.receive_json())["type"] == "watching"
    for _ in range(int(TEXT_BURST)):
        await watcher.send_str("{}")
    code, reason = await read_to_close(watcher, within=10)
    assert (code, reason) == (Close.POLICY, "more than 30 text messages a second (60 at once)")


async def test_a_watcher_flooding_text_is_ended(make_client: MakeClient) -> None:
    live, watcher = await session_and_watcher(make_client)
    for _ in range(int(TEXT_BURST) + 100):
        await watcher.send_str("{}")
    code, reason = await read_to_close(watcher, within=10)
    assert (code, reason) == (Close.POLICY, "more than 30 text messages a second (60 at once)")
    # The camera's session is not the watcher's to end.
    await live.send(0, 0.0, video_frames(ASL_VIDEO)[0])
    assert (await live.next_of("result"))["seq"] == 0


@pytest.mark.parametrize(
    ("sent", "closed"),
    [
        (b"\xff\xd8\xff", (Close.POLICY, "a watcher sends no frames")),
        ("{not json", (Close.PROTOCOL, "a text message is not valid JSON")),
    ],
)
async def test_a_watcher_sending_a_frame_or_no_json_is_ended_and_not_its_session(
    make_client: MakeClient, sent: bytes | str, closed: tuple[int, str]
) -> None:
    """A watcher is read-only (docs/protocol.md, Watchers): a binary message closes it
    with 1008, text that is not JSON with 4001; what it sends is never its camera's."""
    live, watcher = await session_and_watcher(make_client)
    await watcher.send_json({"type": "keepalive"})  # any JSON is read and dropped
    if isinstance(sent, bytes):
        await watcher.send_bytes(sent)
    else:
        await watcher.send_str(sent)
    assert await read_to_close(watcher, within=10) == closed
    await live.send(0, 0.0, video_frames(ASL_VIDEO)[0])
    assert (await live.next_of("result"))["seq"] == 0


async def test_a_frame_over_the_frame_pixels_is_told_a_size_that_fits(
    make_client: MakeClient,
) -> None:
    """A 4K camera's frame (3840 x 2160, 8.3 million pixels) over --max-frame-pixels (4
    million) was told "4000 px on the long side loses nothing": its long side was already
    under that, and scaled so it was refused again. The words give a size that fits."""
    client = await make_client(Config(workers=1))
    live = await LiveClient.connect(client)
    await live.hello("pose", 15)
    await live.send(0, 0.0, jpeg_declaring(3840, 2160))
    error = await live.next_of("error")
    assert (error["seq"], error["code"]) == (0, "too_many_pixels")
    assert "4000 px" not in error["message"]
    width, height = map(int, re.findall(r"to (\d+)x(\d+) or less", error["message"])[0])
    assert width * height <= 4_000_000 < (width + 1) * (height + 1)
    assert abs(width / height - 3840 / 2160) < 0.01
    await live.ws.close()


async def test_a_flood_of_refused_connections_is_a_few_lines_in_the_log(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Each connection refused before it began had its end line: a client opening them as
    fast as it could wrote some 264 lines a second. The first of each kind is still said."""
    caplog.set_level(logging.INFO, logger="webapp.live.session")
    client = await make_client(Config(workers=1))
    for _ in range(20):
        live = await LiveClient.connect(client)
        await live.ws.send_json({"type": "hello", "version": 9})
        assert (await live.closed())[0] == Close.PROTOCOL
    elsewhere = {"Origin": "http://elsewhere.example"}
    other = LiveClient(await client.ws_connect("/ws", headers=elsewhere))
    assert (await other.closed())[0] == Close.POLICY
    await client.app[SESSIONS].wait_empty()
    said = [r.getMessage() for r in caplog.records if r.name == "webapp.live.session"]
    assert [line.split(" reason=")[0] for line in said] == ["- end code=4001", "- end code=1008"]
    client.app[LIVE].refusals.close()  # as the server does at its shutdown
    counted = [r for r in caplog.records if getattr(r, "event", None) == "refused"]
    assert [r.getMessage().split(" seconds=")[0] for r in counted] == [
        "- refused code=4001 count=19"
    ]
    assert [getattr(r, "peer", None) for r in counted] == ["127.0.0.1"]
    closed = client.app[METRICS].sessions_closed
    assert closed.labels("4001")._value.get() == 20


async def test_a_refusal_after_its_kinds_quiet_time_is_said_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="webapp.live.session")
    refusals = Refusals(every=0.01)
    over = asyncio.Event()

    class Said(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if getattr(record, "event", None) == "refused":
                over.set()

    said = Said()
    logging.getLogger("webapp.live.session").addHandler(said)
    try:
        assert refusals.said("-", 4001, "192.0.2.1")
        assert not refusals.said("-", 4001, "192.0.2.1")
        assert not refusals.said("-", 4001, "192.0.2.1")
        # Another client, code or name is another kind: said at once.
        assert refusals.said("-", 4001, "192.0.2.2")
        assert refusals.said("-", 1008, "192.0.2.1")
        assert refusals.said("watcher", 4001, "192.0.2.1")
        await asyncio.wait_for(over.wait(), 10)
        assert refusals.said("-", 4001, "192.0.2.1")
        assert [r.getMessage().split(" seconds=")[0] for r in caplog.records] == [
            "- refused code=4001 count=2"
        ]
        assert caplog.records[0].getMessage().endswith(" peer=192.0.2.1")
    finally:
        logging.getLogger("webapp.live.session").removeHandler(said)
        refusals.close()
