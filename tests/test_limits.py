"""Every limit a hostile or broken client meets, each with its documented refusal."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from tests.conftest import Client, MakeClient
from tests.live import LiveClient, video_frames, when_resting
from tests.media import ASL_VIDEO, PERSON_JPEG, reencode
from webapp.config import Config
from webapp.errors import UploadTimeoutError, plain_seconds
from webapp.keys import LIVE
from webapp.live import watch_tokens
from webapp.live.guard import counted_as, peer_address
from webapp.protocol import Close
from webapp.uploads import arriving_within
from webapp.ws_close import sent_code

HELLO = {"type": "hello", "version": 1, "track": "pose", "fps": 10}


async def test_cross_site_origin_is_refused_and_same_origin_allowed(
    make_client: MakeClient,
) -> None:
    client = await make_client(Config(workers=1))
    evil = LiveClient(await client.ws_connect("/ws", origin="https://evil.example"))
    code, reason = await evil.closed()
    assert code == 1008
    assert "origin" in reason
    host = f"http://{client.host}:{client.port}"
    same = LiveClient(await client.ws_connect("/ws", origin=host))
    assert (await same.hello("pose"))["type"] == "ready"


@pytest.mark.parametrize("origin", ["http://[", "http://[x]", "http://a]b"])
async def test_an_origin_that_is_no_url_is_refused_in_words(
    make_client: MakeClient, origin: str
) -> None:
    """What Python's URL parser raises on (an unclosed or bad IPv6 bracket) is refused as
    any foreign origin is, and the server goes on."""
    client = await make_client(Config(workers=1))
    odd = LiveClient(await client.ws_connect("/ws", origin=origin))
    code, reason = await odd.closed()
    assert (code, reason) == (1008, f"origin {origin!r} is not an origin")
    host = f"http://{client.host}:{client.port}"
    same = LiveClient(await client.ws_connect("/ws", origin=host))
    assert (await same.hello("pose"))["type"] == "ready"


async def test_listed_origins_are_the_only_ones_allowed(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1, allowed_origins="https://app.example"))
    listed = LiveClient(await client.ws_connect("/ws", origin="https://app.example"))
    assert (await listed.hello("pose"))["type"] == "ready"
    host = f"http://{client.host}:{client.port}"
    other = LiveClient(await client.ws_connect("/ws", origin=host))
    assert (await other.closed())[0] == 1008


async def test_listed_origins_are_matched_as_a_browser_writes_them(make_client: MakeClient) -> None:
    """An operator's https://Track.Example:443 is the origin a browser sends as
    https://track.example: compared as written, every browser was refused."""
    config = Config(workers=1, allowed_origins="https://Track.Example:443/, http://b.example:80")
    client = await make_client(config)
    for origin in ("https://track.example", "http://b.example"):
        listed = LiveClient(await client.ws_connect("/ws", origin=origin))
        assert (await listed.hello("pose"))["type"] == "ready"
        await listed.ws.close()
    other = LiveClient(await client.ws_connect("/ws", origin="https://track.example:8443"))
    assert (await other.closed())[0] == 1008


@pytest.mark.parametrize(
    ("listed", "sent", "other"),
    [
        ("https://Bücher.example", "https://xn--bcher-kva.example", "https://bucher.example"),
        # What Chromium's and Firefox's new URL("https://faß.de").origin are (UTS 46, not
        # transitional); Python's own "idna" codec (IDNA 2003) wrote it as fass.de.
        ("https://faß.de", "https://xn--fa-hia.de", "https://fass.de"),
    ],
    ids=["umlaut", "sharp-s"],
)
async def test_a_listed_international_origin_matches_the_ascii_form_browsers_send(
    make_client: MakeClient, listed: str, sent: str, other: str
) -> None:
    """Listed as the address bar shows it, https://bücher.example refused every browser on
    it: they send the host as https://xn--bcher-kva.example."""
    config = Config(workers=1, allowed_origins=listed)
    client = await make_client(config)
    allowed = LiveClient(await client.ws_connect("/ws", origin=sent))
    assert (await allowed.hello("pose"))["type"] == "ready"
    await allowed.ws.close()
    refused = LiveClient(await client.ws_connect("/ws", origin=other))
    assert (await refused.closed())[0] == 1008


async def test_sessions_per_client_address_are_capped(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1, max_sessions_per_client=2, min_session_fps="0"))
    first, second = await LiveClient.connect(client), await LiveClient.connect(client)
    await first.hello("pose")
    await second.hello("pose")
    third = await LiveClient.connect(client)
    code, reason = await third.closed()
    assert code == 1008
    assert "2 connections on /ws" in reason
    await first.ws.close()
    for _ in range(50):  # the server may not have ended `first` yet: try again on 1008
        fourth = await LiveClient.connect(client)
        await fourth.ws.send_json(HELLO)
        reply = await fourth.ws.receive()
        if reply.type.name == "TEXT":
            assert json.loads(reply.data)["type"] == "ready"
            break
        assert sent_code(fourth.ws, reply) == 1008
    else:
        raise AssertionError("a freed place was never given to a new session")


async def test_an_ipv6_client_is_counted_by_its_64(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A host holds a /64 of its own: two addresses in it are one client, as many sessions
    as one address; another /64 is another client. IPv4 and IPv4-mapped IPv6 are one. The
    log names the address itself."""
    caplog.set_level(logging.INFO, logger="webapp.live.session")
    client = await make_client(
        Config(workers=1, max_sessions_per_client=1, min_session_fps="0", trust_proxy=True)
    )

    async def from_address(address: str) -> LiveClient:
        headers = {"X-Forwarded-For": address}
        return LiveClient(await client.ws_connect("/ws", headers=headers))

    first = await from_address("2001:db8:5:6::1")
    assert (await first.hello("pose"))["type"] == "ready"
    same_host = await from_address("2001:db8:5:6:ffff:1234:abcd:99")
    await same_host.ws.send_json(HELLO)
    assert await same_host.closed() == (
        1008,
        "this client already has 1 connection on /ws (sessions and watchers), "
        "the most --max-sessions-per-client allows",
    )
    other_host = await from_address("2001:db8:5:7::1")
    assert (await other_host.hello("pose"))["type"] == "ready"
    v4 = await from_address("192.0.2.44")
    assert (await v4.hello("pose"))["type"] == "ready"
    mapped = await from_address("::ffff:192.0.2.44")
    await mapped.ws.send_json(HELLO)
    assert (await mapped.closed())[0] == 1008
    for live in (first, other_host, v4):
        await live.ws.close()
    assert any(" peer=2001:db8:5:6::1" in r.getMessage() for r in caplog.records)


class SessionEnds(logging.Handler):
    """The live sessions' end lines as they come, with an event for each."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        self.arrived = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "event", None) == "end":
            self.records.append(record)
            self.arrived.set()


async def test_a_session_refused_at_its_hello_names_its_client_in_the_log(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A session refused before it began has no start line: its end line was all the log
    said of it, and it did not say who was refused (a client over its limit here; a key
    guessed or over its quota alike)."""
    caplog.set_level(logging.INFO, logger="webapp.live.session")
    ends = SessionEnds()
    logger = logging.getLogger("webapp.live.session")
    logger.addHandler(ends)
    try:
        client = await make_client(
            Config(workers=1, max_sessions_per_client=1, min_session_fps="0", trust_proxy=True)
        )
        headers = {"X-Forwarded-For": "203.0.113.9"}
        first = LiveClient(await client.ws_connect("/ws", headers=headers))
        assert (await first.hello("pose"))["type"] == "ready"
        second = LiveClient(await client.ws_connect("/ws", headers=headers))
        await second.ws.send_json(HELLO)
        assert (await second.closed())[0] == 1008
        await asyncio.wait_for(ends.arrived.wait(), 10)
        (refused,) = ends.records
        assert refused.getMessage().startswith("- end code=1008 "), refused.getMessage()
        assert refused.getMessage().endswith(" peer=203.0.113.9"), refused.getMessage()
        assert getattr(refused, "peer", None) == "203.0.113.9"
        await first.ws.close()
    finally:
        logger.removeHandler(ends)


@pytest.mark.parametrize(
    ("address", "counted"),
    [
        ("203.0.113.5", "203.0.113.5"),
        ("2001:DB8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        # As some proxies write IPv6, with brackets and a port.
        ("[2001:db8:5:6::1]", "2001:db8:5:6::/64"),
        ("[2001:db8:5:6::1]:443", "2001:db8:5:6::/64"),
        # As some proxies write IPv4, with the client's port: one client, whatever port.
        ("203.0.113.5:51234", "203.0.113.5"),
        # IPv4 clients behind a NAT64 translator: each its own IPv4 address, not one /64.
        ("64:ff9b::c000:22c", "192.0.2.44"),
        ("unix-socket", "unix-socket"),
    ],
)
def test_what_a_client_address_is_counted_as(address: str, counted: str) -> None:
    assert counted_as(address) == counted


def test_behind_a_proxy_the_last_forwarded_address_counts_whatever_line_it_is_on() -> None:
    """A proxy that adds an X-Forwarded-For line of its own left the client's forged line
    first, and the first line was read: 30 wrong pairing claims, none refused."""
    config = Config(trust_proxy=True)
    lines = CIMultiDict([("X-Forwarded-For", "10.1.0.1"), ("X-Forwarded-For", "192.0.2.7")])
    request = make_mocked_request("GET", "/ws", headers=lines)
    assert peer_address(request, config) == "192.0.2.7"
    merged = CIMultiDict([("X-Forwarded-For", "10.1.0.1, 192.0.2.8")])
    assert peer_address(make_mocked_request("GET", "/", headers=merged), config) == "192.0.2.8"
    assert peer_address(request, Config()) != "192.0.2.7"


async def test_session_length_is_capped_and_the_next_session_keeps_the_link(
    make_client: MakeClient,
) -> None:
    """A session lasts at most --max-session-seconds, then is closed with 4004: its client
    reconnects at once, and with the resume string of its last ready keeps its watch link
    (a stream longer than the limit must not lose its OBS view)."""
    client = await make_client(Config(workers=1, max_session_seconds=0.5, idle_timeout=30))
    live = await LiveClient.connect(client)
    ready = await live.hello("pose")
    code, reason = await live.closed()
    assert (code, reason) == (Close.RENEW, "sessions last at most 0.5 s; reconnect to go on")
    again = await LiveClient.connect(client)
    renewed = await again.hello("pose", resume=ready["resume"])
    assert renewed["watch"] == ready["watch"]


async def test_an_upload_that_stalls_gets_408(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1, upload_timeout=0.5))
    status, _, body = await unfinished_upload(client)
    assert status == 408
    assert body["error"] == "upload_timeout"
    assert body["detail"] == (
        "the upload did not arrive within 0.9 s "
        "(--upload-timeout 0.5 s, and 1 s for each 250 kB declared)"
    )


async def test_a_large_upload_on_a_slow_uplink_has_time_for_its_size(
    make_client: MakeClient,
) -> None:
    """--upload-timeout alone bounded the whole body: 30 s asked a 40 MB phone video for
    11 Mbit/s. A declared length adds a second for each 250 kB (2 Mbit/s)."""
    photo = reencode(PERSON_JPEG, "PNG")
    # A second half at 0.35 s, past the 0.2 s alone, well within 0.2 + 2 s.
    assert len(photo) > 500_000
    client = await make_client(Config(workers=1, upload_timeout=0.2))
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        head = (
            "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            f"Content-Length: {len(photo)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + photo[: len(photo) // 2])
        await writer.drain()
        await asyncio.sleep(0.35)  # the slow uplink itself
        writer.write(photo[len(photo) // 2 :])
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 60)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    assert status_line.split()[1] == b"200", status_line


async def test_a_full_line_refuses_an_upload_before_its_body_arrives(
    make_client: MakeClient,
) -> None:
    # Any still would wait longer than this budget, so every upload is refused; the long
    # upload timeout means only a refusal made before reading the body can answer in time.
    client = await make_client(Config(workers=1, max_queue_seconds=0.001, upload_timeout=120))
    status, headers, body = await unfinished_upload(client)
    assert status == 503
    assert headers["retry-after"] == "1"
    assert body["error"] == "busy"


async def unfinished_upload(client: Client) -> tuple[int, dict[str, str], Any]:
    """The answer to an upload that declares 100 000 bytes and sends three."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
            b"Content-Length: 100000\r\n\r\n\xff\xd8\xff"
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        status_line, *lines = head.decode("latin-1").strip().split("\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, value in (line.split(":", 1) for line in lines)
        }
        body = json.loads(await reader.readexactly(int(headers["content-length"])))
        return int(status_line.split()[1]), headers, body
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_behind_a_balancer_a_full_server_refuses_the_upgrade(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="webapp.live.session")
    client = await make_client(Config(workers=1, max_sessions=1, refuse_when_full=True))
    first = await LiveClient.connect(client)
    await first.hello("pose")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws")
    assert refused.value.status == 503
    assert refused.value.headers is not None
    assert refused.value.headers["Retry-After"] == "1"
    # Its one log line, as every refused session has (it had none).
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("- end")]
    assert "code=503 reason='no room for another live session on this server'" in line


async def test_behind_a_balancer_a_full_server_still_takes_its_sessions_watchers(
    make_client: MakeClient,
) -> None:
    """A watcher takes no room: sent away with 503 it would reach a replica without its
    link. It says it watches (watcher=1), and watches; a camera saying so is still
    refused after its hello, as on a server without the setting."""
    client = await make_client(Config(workers=1, max_sessions=1, refuse_when_full=True))
    camera = await LiveClient.connect(client)
    ready = await camera.hello("pose")
    token = ready["watch"]
    params = {"link": token, "watcher": "1"}
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws", params={"link": token})
    assert refused.value.status == 503
    watcher = LiveClient(await client.ws_connect("/ws", params=params))
    await watcher.ws.send_json({"type": "watch", "version": 1, "token": token})
    assert (await watcher.next_of("watching"))["session"] == ready["session"]
    [result] = await camera.lockstep(video_frames(ASL_VIDEO)[:1])
    assert (await watcher.next_of("result"))["seq"] == result["seq"]
    pretender = LiveClient(await client.ws_connect("/ws", params=params))
    await pretender.ws.send_json(HELLO)
    code, reason = await pretender.closed()
    assert code == Close.TRY_AGAIN_LATER, reason


async def test_paused_links_are_given_up_per_client_address(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server passes each session's client address to the watch tokens, so one address
    pausing session after session gives up its own oldest link, not another client's."""
    monkeypatch.setattr(watch_tokens, "RESTING_PER_CLIENT", 2)
    client = await make_client(Config(workers=1, trust_proxy=True, min_session_fps="0"))
    rested = when_resting(client.app[LIVE].tokens, monkeypatch)

    async def paused_from(address: str) -> str:
        live = LiveClient(await client.ws_connect("/ws", headers={"X-Forwarded-For": address}))
        token: str = (await live.hello("pose"))["watch"]
        rested.clear()
        await live.ws.close(code=4002, message=b"paused")
        await rested.wait()
        return token

    victim = await paused_from("192.0.2.7")
    flood = [await paused_from("203.0.113.9") for _ in range(3)]
    tokens = client.app[LIVE].tokens
    assert tokens.find(victim) is not None
    assert [tokens.find(token) is not None for token in flood] == [False, True, True]


@pytest.mark.parametrize(
    ("seconds", "declared", "within"),
    [
        (1000.0, None, "the upload did not arrive within 1000 s"),
        (
            1000.0,
            67_108_864,
            "the upload did not arrive within 1268.4 s "
            "(--upload-timeout 1000 s, and 1 s for each 250 kB declared)",
        ),
        (
            0.5,
            100_000,
            "the upload did not arrive within 0.9 s "
            "(--upload-timeout 0.5 s, and 1 s for each 250 kB declared)",
        ),
    ],
)
async def test_an_upload_timeout_says_its_seconds_in_plain_numbers(
    seconds: float, declared: int | None, within: str
) -> None:
    """A --upload-timeout of 1000 s was told as "1e+03 s", and 30 s with 310 MB declared as
    "1.27e+03 s". The block's own TimeoutError stands for the limit's, so nothing waits."""
    with pytest.raises(UploadTimeoutError) as refused:
        async with arriving_within(seconds, declared=declared):
            raise TimeoutError
    assert str(refused.value) == within


@pytest.mark.parametrize(
    ("value", "said"),
    [(2_592_000, "2592000"), (1000.0, "1000"), (3600, "3600"), (0.5, "0.5"), (1268.44, "1268.4")],
)
def test_seconds_in_a_reason_are_plain_numbers(value: float, said: str) -> None:
    """Every close reason with a setting's seconds (idle, a session's longest, a watcher's
    grace, a reader's send timeout) said --max-session-seconds 2592000 (30 days) as
    "sessions last at most 2.592e+06 s"."""
    assert plain_seconds(value) == said
