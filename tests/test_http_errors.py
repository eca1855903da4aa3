"""Errors that reach the edge from outside the domain's own: a multipart body aiohttp cannot
parse, the router's 404 and 405, a failure nobody foresaw. Each is answered in JSON like
every other refusal. (A client that leaves mid-upload: test_lifecycle.py, on the server as
an operator runs it.)
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from collections.abc import Awaitable, Callable, Iterator

import pytest
from aiohttp import web

from tests.conftest import Client, MakeClient
from tests.media import PERSON_JPEG
from tests.test_ops import sample
from webapp.app import create_app
from webapp.config import Config
from webapp.emotion_view import EMOTION_PATH
from webapp.errors import shown
from webapp.live.handler import (
    BAD_KEY,
    BAD_VERSION,
    CONNECTION_DROPPED,
    NOT_A_WEBSOCKET,
    PROXY_DROPPED,
)

MALFORMED_MULTIPART = [
    ("no-boundary", "multipart/form-data", b"x"),
    ("wrong-boundary", "multipart/form-data; boundary=XYZ", b"garbage"),
    (
        "part-header-not-a-header",
        "multipart/form-data; boundary=XYZ",
        b"--XYZ\r\nnot a header\r\n\r\nabc\r\n--XYZ--\r\n",
    ),
]


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    return await make_client(Config(workers=1, no_cache=True))


class Records(logging.Handler):
    """Log records as they come, with an event for the first that matches."""

    def __init__(self, wanted: Callable[[logging.LogRecord], bool]) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        self.seen = asyncio.Event()
        self._wanted = wanted

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if self._wanted(record):
            self.seen.set()

    def errors(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= logging.ERROR]


@pytest.fixture
def records() -> Iterator[Callable[[Callable[[logging.LogRecord], bool]], Records]]:
    root = logging.getLogger()
    added: list[Records] = []
    level = root.level
    root.setLevel(logging.INFO)

    def attach(wanted: Callable[[logging.LogRecord], bool]) -> Records:
        handler = Records(wanted)
        root.addHandler(handler)
        added.append(handler)
        return handler

    yield attach
    for handler in added:
        root.removeHandler(handler)
    root.setLevel(level)


async def predict_works(client: Client) -> None:
    ok = await client.post(
        "/predict", data=PERSON_JPEG.read_bytes(), headers={"Content-Type": "image/jpeg"}
    )
    assert ok.status == 200
    assert (await ok.json())["landmarks"]["pose"] is not None


@pytest.mark.parametrize(
    ("content_type", "body"),
    [(t, b) for _, t, b in MALFORMED_MULTIPART],
    ids=[name for name, _, _ in MALFORMED_MULTIPART],
)
async def test_a_malformed_multipart_body_is_a_400(
    client: Client, content_type: str, body: bytes
) -> None:
    response = await client.post("/predict", data=body, headers={"Content-Type": content_type})
    assert response.status == 400
    answer = await response.json()
    assert answer["error"] == "bad_request"
    assert answer["detail"].startswith("the multipart body is malformed: ")
    await predict_works(client)


async def test_a_multipart_type_without_a_boundary_says_how_to_send_it(client: Client) -> None:
    """A fetch() given a FormData body and a Content-Type of its own sends no boundary:
    aiohttp's "boundary missed" left the developer to guess at the header."""
    for path in ("/predict", "/api/video"):
        response = await client.post(
            path, data=PERSON_JPEG.read_bytes(), headers={"Content-Type": "multipart/form-data"}
        )
        answer = await response.json()
        assert (response.status, answer["error"]) == (400, "bad_request"), answer
        assert "names no boundary" in answer["detail"], answer
        assert "FormData" in answer["detail"], answer


async def test_no_such_path_and_a_method_not_allowed_answer_in_json(client: Client) -> None:
    missing = await client.get("/api/nothing")
    assert missing.status == 404
    assert await missing.json() == {
        "error": "not_found",
        "detail": "nothing is served at /api/nothing",
    }
    wrong = await client.put("/predict")
    assert wrong.status == 405
    assert wrong.headers["Allow"] == "POST"
    assert await wrong.json() == {
        "error": "method_not_allowed",
        "detail": "PUT is not allowed on /predict; use POST",
    }
    # Refusals with a sentence of their own keep it.
    outside = await client.get("/vendor/three/package.json")
    assert outside.status == 404
    assert (await outside.json())["detail"] == "not a file the avatar page uses"
    metrics = await (await client.get("/metrics")).text()
    assert sample(metrics, "holotrack_predict_requests_total", 'status="405"') == 1


async def test_a_failure_nobody_foresaw_is_a_json_500_and_logged(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    records: Callable[[Callable[[logging.LogRecord], bool]], Records],
) -> None:
    async def fails(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    app = create_app(Config(workers=1, min_session_fps="0"))
    app.router.add_get("/fails", fails)
    client = await aiohttp_client(app)
    log = records(lambda r: r.levelno >= logging.ERROR)
    response = await client.get("/fails")
    assert response.status == 500
    assert await response.json() == {
        "error": "internal",
        "detail": "the server failed on this request; it has been logged",
    }
    assert log.seen.is_set()
    assert log.errors() == ["GET /fails failed"]
    (failed,) = [r for r in log.records if r.levelno >= logging.ERROR]
    assert failed.exc_info is not None
    await predict_works(client)


async def test_a_failure_nobody_foresaw_is_logged_without_the_secrets_of_its_path(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    records: Callable[[Callable[[logging.LogRecord], bool]], Records],
) -> None:
    """The line named the decoded path: a link's token (/api/emotion/TOKEN) in clear, and
    a path with an escaped newline wrote a second line of the client's choosing."""

    async def fails(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    token, key = "SECRET-WATCH-TOKEN-123456", "SECRET-ACCESS-KEY-1234567890"
    app = create_app(Config(workers=1, min_session_fps="0"))
    app.router.add_post(EMOTION_PATH, fails)
    app.router.add_get("/fails/{rest}", fails)
    client = await aiohttp_client(app)
    log = records(lambda r: r.levelno >= logging.ERROR)
    assert (await client.post(f"/api/emotion/{token}?key={key}")).status == 500
    forged = "/fails/x%0A2026-12-07 12:00:00,000 INFO webapp: forged"
    assert (await client.get(forged)).status == 500
    assert log.errors() == [
        "POST /api/emotion/-?key=- failed",
        "GET /fails/x%0A2026-12-07%2012:00:00,000%20INFO%20webapp:%20forged failed",
    ]


UNPARSABLE = [
    ("bad-method", b"GARBAGE / HTTP/1.1\r\nHost: x\r\n\r\n", b"Invalid method"),
    ("bad-length", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", b"Content-Length"),
    ("tls-on-plain", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(40), b"HTTPS traffic"),
]


@pytest.mark.parametrize(
    ("raw", "reason"), [(r, why) for _, r, why in UNPARSABLE], ids=[n for n, _, _ in UNPARSABLE]
)
async def test_a_request_http_cannot_parse_is_a_400_with_its_reason(
    client: Client, raw: bytes, reason: bytes
) -> None:
    # aiohttp's parser answers these before any handler or middleware of ours runs, so the
    # reason is its text, not JSON (docs/SECURITY.md); what matters is a status, a reason,
    # the connection closed, and nobody else affected.
    assert client.server.host is not None
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(raw)
    answer = await asyncio.wait_for(reader.read(), 10)  # to EOF: the server closes
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0].split(b" ")[1] == b"400"
    assert reason in body
    await predict_works(client)


async def raw_answer(client: Client, head: bytes) -> tuple[int, bytes, bytes]:
    """The status, head and body `head` (a request with Connection: close) is answered with."""
    assert client.server.host is not None
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(head)
    answer = await asyncio.wait_for(reader.read(), 10)  # to EOF: Connection: close
    writer.close()
    head_of, _, body = answer.partition(b"\r\n\r\n")
    return int(head_of.split(b" ")[1]), head_of, body


@pytest.mark.parametrize("expect", [b"\xff", b"caf\xc3\xa9", b"\xc3\x28", b"200-ok"])
async def test_an_expect_the_server_does_not_meet_is_a_json_417_on_every_route(
    client: Client, expect: bytes
) -> None:
    """aiohttp answers Expect before any middleware: a value it did not know was a text
    417, and one that was not UTF-8 its plain 500 (it could not encode it into its refusal)."""
    routes = [
        (route.method, route.resource.canonical.replace("{", "x").replace("}", ""))
        for route in client.app.router.routes()
        if route.resource is not None
    ]
    assert len(routes) > 20
    for method, path in routes:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: holotrack\r\nConnection: close\r\n".encode()
            + b"Expect: "
            + expect
            + b"\r\n\r\n"
        )
        status, said, body = await raw_answer(client, head)
        assert status == 417, (method, path, said + body)
        if method == "HEAD":
            continue  # the same answer, without its body
        answer = json.loads(body)
        assert answer["error"] == "expectation_failed", (method, path)
        assert "100-continue" in answer["detail"]
    await predict_works(client)


async def test_expect_100_continue_still_has_its_100(client: Client) -> None:
    body = PERSON_JPEG.read_bytes()
    head = (
        "POST /predict HTTP/1.1\r\nHost: holotrack\r\nConnection: close\r\n"
        f"Content-Type: image/jpeg\r\nContent-Length: {len(body)}\r\n"
        "Expect: 100-Continue\r\n\r\n"
    ).encode()
    assert client.server.host is not None
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(head)
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10) == (
        b"HTTP/1.1 100 Continue\r\n\r\n"
    )
    writer.write(body)
    answer = await asyncio.wait_for(reader.read(), 60)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/predict", "image/jpeg"),
        ("/api/video", "video/mp4"),
        ("/api/export?format=csv", "application/x-ndjson"),
    ],
)
@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_body_its_content_encoding_does_not_decode_is_a_400(
    client: Client,
    records: Callable[[Callable[[logging.LogRecord], bool]], Records],
    path: str,
    content_type: str,
    encoding: str,
) -> None:
    log = records(lambda r: r.levelno >= logging.ERROR)
    response = await client.post(
        path,
        data=b"\x00not compressed" * 10,
        headers={"Content-Type": content_type, "Content-Encoding": encoding},
    )
    assert response.status == 400
    assert await response.json() == {
        "error": "bad_request",
        "detail": "the request body could not be read: "
        f"Can not decode content-encoding: {encoding}",
    }
    # The rest of the body cannot be told from a next request.
    assert response.headers["Connection"] == "close"
    await predict_works(client)
    assert log.errors() == []
    if path == "/api/video":
        metrics = await (await client.get("/metrics")).text()
        assert sample(metrics, "holotrack_video_requests_total", 'status="400"') == 1


@pytest.mark.parametrize(
    ("path", "status"),
    [("/nothing-here", 404), ("/healthz", 405), ("/api/end", 413)],
)
async def test_an_answer_before_a_compressed_body_is_read_closes_its_connection(
    client: Client, path: str, status: int
) -> None:
    # 16 KiB on the wire, 16 MiB inflated. Kept open, the connection had aiohttp read the
    # rest to drop it, inflating it on the event loop: 2 MB of this held every session
    # and request 2-4 s, on any path.
    bomb = gzip.compress(bytes(16 * 2**20))
    response = await client.post(path, data=bomb, headers={"Content-Encoding": "gzip"})
    assert response.status == status
    assert response.headers["Connection"] == "close"
    await predict_works(client)


@pytest.mark.parametrize(
    "name",
    [
        "nothing.js",
        "avatar",  # a directory
        "%2e%2e/webapp/config.py",  # outside static/
        "a" * 5000,  # longer than a file name may be: was a 500 with a traceback
    ],
    ids=["missing", "directory", "outside", "too-long"],
)
async def test_a_static_file_that_is_not_there_is_a_json_404(
    client: Client,
    records: Callable[[Callable[[logging.LogRecord], bool]], Records],
    name: str,
) -> None:
    log = records(lambda r: r.levelno >= logging.ERROR)
    missing = await client.get(f"/static/{name}")
    assert missing.status == 404
    assert (await missing.json())["error"] == "not_found"
    assert log.errors() == []
    served = await client.get("/static/live.js")
    assert served.status == 200
    assert served.headers["ETag"]


@pytest.mark.parametrize("wanted", ["bytes=99999999-", "bytes=abc", "bytes=9-2", "lines=1-2"])
@pytest.mark.parametrize(
    "url", ["/static/live.js", "/vendor/three/build/three.core.js", "/avatar/default.vrm"]
)
async def test_a_range_a_file_cannot_give_is_a_json_416(
    client: Client, wanted: str, url: str
) -> None:
    whole = await (await client.get(url)).read()
    refused = await client.get(url, headers={"Range": wanted})
    assert refused.status == 416
    assert refused.headers["Content-Range"] == f"bytes */{len(whole)}"
    said = await refused.json()
    assert said["error"] == "requested_range_not_satisfiable"
    assert wanted in said["detail"]
    # The ranges it can give are given, as before.
    for good, part in [("bytes=0-9", whole[:10]), ("bytes=-5", whole[-5:])]:
        served = await client.get(url, headers={"Range": good})
        assert served.status == 206
        assert await served.read() == part


@pytest.mark.parametrize("if_range", ["etag", '"another"', "Fri, 01 Jan 2100 00:00:00 GMT"])
async def test_a_range_a_file_cannot_give_is_a_json_416_under_if_range_too(
    client: Client, if_range: str
) -> None:
    """A resumed download sends If-Range with the ETag it had: FileResponse judged the range
    all the same, and its 416 was an empty body."""
    whole = await client.get("/static/live.js")
    size = len(await whole.read())
    if_range = whole.headers["ETag"] if if_range == "etag" else if_range
    headers = {"Range": "bytes=99999999-", "If-Range": if_range}
    refused = await client.get("/static/live.js", headers=headers)
    assert refused.status == 416
    assert refused.headers["Content-Range"] == f"bytes */{size}"
    assert (await refused.json())["error"] == "requested_range_not_satisfiable"
    # A date the file changed after drops the range: the whole file, as before.
    headers["If-Range"] = "Thu, 01 Jan 1970 00:00:00 GMT"
    served = await client.get("/static/live.js", headers=headers)
    assert served.status == 200
    assert len(await served.read()) == size


async def test_ws_opened_as_a_page_says_what_ws_is(client: Client) -> None:
    """A browser opening /ws got aiohttp's 'No WebSocket UPGRADE hdr: None\\n Can "Upgrade"
    only to "WebSocket".'"""
    for headers in ({}, {"Upgrade": "h2c", "Connection": "Upgrade"}):
        async with client.get("/ws", headers=headers) as response:
            assert response.status == 400
            body = await response.json()
        assert body == {"error": "bad_request", "detail": NOT_A_WEBSOCKET}
    # The handshake itself is untouched.
    async with client.ws_connect("/ws") as ws:
        await ws.close()


@pytest.mark.parametrize(
    ("upgrade", "said"), [(None, "null"), ("WebSocket, foo", '"WebSocket, foo"')]
)
async def test_a_handshake_whose_upgrade_a_proxy_dropped_says_so(
    client: Client, upgrade: str | None, said: str
) -> None:
    """A proxy that forwards no Upgrade (nginx without proxy_set_header Upgrade) turned
    every client's handshake into one told to use a WebSocket client, which it was."""
    headers = {"Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    headers["Sec-WebSocket-Version"] = "13"
    if upgrade is not None:
        headers["Upgrade"] = upgrade
    async with client.get("/ws", headers=headers) as response:
        assert response.status == 400
        body = await response.json()
    assert body == {"error": "bad_request", "detail": PROXY_DROPPED.format(upgrade=said)}
    assert said in body["detail"]


HANDSHAKE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


@pytest.mark.parametrize(
    ("changed", "detail"),
    [
        # nginx with proxy_set_header Upgrade but not Connection sends "close".
        ({"Connection": "close"}, CONNECTION_DROPPED.format(connection='"close"')),
        ({"Connection": None}, CONNECTION_DROPPED.format(connection="null")),
        ({"Sec-WebSocket-Version": "12"}, BAD_VERSION.format(version='"12"')),
        ({"Sec-WebSocket-Key": None}, BAD_KEY.format(key="null")),
        ({"Sec-WebSocket-Key": "abc"}, BAD_KEY.format(key='"abc"')),
        # Sent as Latin-1 bytes: aiohttp reads them as UTF-8 and keeps what is not.
        (
            {"Sec-WebSocket-Key": "\u00e9" * 22 + "=="},
            BAD_KEY.format(key=shown("\udce9" * 22 + "==")),
        ),
    ],
    ids=["connection-close", "no-connection", "version", "no-key", "short-key", "latin-1-key"],
)
async def test_a_broken_handshake_is_told_what_is_wrong_in_json(
    client: Client, caplog: pytest.LogCaptureFixture, changed: dict[str, str | None], detail: str
) -> None:
    """aiohttp's words were "No CONNECTION upgrade hdr: close" and "Handshake error: None",
    and a key beyond ASCII a text 500 with a traceback in the log."""
    headers = {**HANDSHAKE, **changed}
    sent = "".join(f"{name}: {value}\r\n" for name, value in headers.items() if value is not None)
    assert client.port is not None
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(f"GET /ws HTTP/1.1\r\nHost: x\r\n{sent}\r\n".encode("latin-1"))
    status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines if line)
    body = json.loads(await reader.readexactly(int(fields["Content-Length"])))
    status = int(status_line.split(" ")[1])
    writer.close()
    assert (status, body) == (400, {"error": "bad_request", "detail": detail})
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
