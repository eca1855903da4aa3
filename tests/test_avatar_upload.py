"""A watch link's own avatar (PUT /api/avatar/{token}): only its camera may give it, within
--max-avatar-mb and --avatar-memory-mb; its watchers are told; it lives exactly as long as
the link, in memory."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import json
import secrets
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import Page, Route

from tests.browser import BrowserPage, open_page
from tests.conftest import Client, MakeClient
from tests.live import LiveClient, lose_connection, until
from tests.test_access import KEY_A, KEY_B, auth, keys_file
from tests.test_avatar_page import load_model, needs_node_modules
from tests.vrm_files import AVATAR
from webapp.config import Config
from webapp.keys import LIVE
from webapp.live.avatars import MB
from webapp.protocol import Close

DEFAULT_TITLE = "Low-Poly Godette"


def renamed_vrm(title: str) -> bytes:
    """The shipped avatar with another title in its VRM meta: what the view shows is told
    apart by its name, the rest of the model unchanged."""
    glb = AVATAR.read_bytes()
    (size,) = struct.unpack_from("<I", glb, 12)
    doc = json.loads(glb[20 : 20 + size])
    doc["extensions"]["VRM"]["meta"]["title"] = title
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    binary = glb[20 + size :]
    header = struct.pack("<III", 0x46546C67, 2, 12 + 8 + len(text) + len(binary))
    return header + struct.pack("<II", len(text), 0x4E4F534A) + text + binary


def glb_of(size: int) -> bytes:
    """`size` bytes that open as a binary glTF does: all the server looks at."""
    return b"glTF" + b"\0" * (size - 4)


async def camera(client: Client, **hello: Any) -> tuple[LiveClient, dict[str, Any]]:
    live = await LiveClient.connect(client)
    return live, await live.hello(rig=True, **hello)


async def watch(client: Client, token: str) -> tuple[aiohttp.ClientWebSocketResponse, Any]:
    ws = await client.ws_connect("/ws")
    await ws.send_json({"type": "watch", "version": 1, "token": token})
    return ws, await ws.receive_json()


async def next_avatar_message(ws: aiohttp.ClientWebSocketResponse) -> Any:
    while True:
        message = await ws.receive_json()
        if message["type"] in ("avatar", "watching"):
            return message


async def put(
    client: Client, ready: dict[str, Any], data: Any, proof: str | None = None, **headers: str
) -> aiohttp.ClientResponse:
    proof = ready["resume"] if proof is None else proof
    # A file-like body: aiohttp warns about large bytes, and sends its Content-Length all the same.
    body = io.BytesIO(data) if isinstance(data, bytes) else data
    return await client.put(
        f"/api/avatar/{ready['watch']}", data=body, headers={"Holotrack-Resume": proof, **headers}
    )


def held(client: Client) -> int:
    return client.app[LIVE].tokens.avatars.held()


async def gauge(client: Client) -> float:
    text = await (await client.get("/metrics")).text()
    (line,) = [x for x in text.splitlines() if x.startswith("holotrack_link_avatar_bytes ")]
    return float(line.split()[1])


async def test_only_the_camera_gives_its_link_an_avatar_and_its_watchers_hear_of_it(
    make_client: MakeClient,
) -> None:
    client = await make_client(Config(workers=1, no_cache=True))
    live, ready = await camera(client)
    assert "avatar" not in ready
    watcher, watching = await watch(client, ready["watch"])
    assert watching == {"type": "watching", "session": ready["session"]}

    first = renamed_vrm("First upload")
    # A watcher knows the token, not the resume string: nothing else proves the camera.
    for wrong in ("", ready["watch"], secrets.token_urlsafe(16), ready["resume"] + "x"):
        refused = await put(client, ready, first, proof=wrong)
        assert refused.status == 403, wrong
        body = await refused.json()
        assert body["error"] == "not_the_camera"
        assert "Holotrack-Resume" in body["detail"]
    unknown = await client.put(
        "/api/avatar/" + secrets.token_urlsafe(16), data=first, headers={"Holotrack-Resume": "x"}
    )
    assert unknown.status == 404
    assert (await unknown.json())["error"] == "unknown_link"
    assert held(client) == 0

    answer = await put(client, ready, first)
    assert answer.status == 200, await answer.text()
    url = (await answer.json())["url"]
    assert url.startswith(f"/avatar/link/{ready['watch']}.vrm?v=")
    assert await next_avatar_message(watcher) == {"type": "avatar", "url": url}
    served = await client.get(url)
    assert served.status == 200
    assert served.content_type == "model/gltf-binary"
    assert served.headers["Cache-Control"] == "no-store"
    assert await served.read() == first
    assert held(client) == len(first) == await gauge(client)
    # A watcher who joins now is told in its watching.
    late, late_watching = await watch(client, ready["watch"])
    assert late_watching == {"type": "watching", "session": ready["session"], "avatar": url}

    # A new upload replaces the old one, at a new address.
    second = renamed_vrm("Second upload")
    answer = await put(client, ready, second)
    assert answer.status == 200
    new_url = (await answer.json())["url"]
    assert new_url != url
    assert await next_avatar_message(watcher) == {"type": "avatar", "url": new_url}
    assert await (await client.get(url)).read() == second
    assert held(client) == len(second)

    # DELETE: back to the default; the link's address answers 404 in JSON.
    assert (await client.delete(f"/api/avatar/{ready['watch']}")).status == 403
    gone = await client.delete(
        f"/api/avatar/{ready['watch']}", headers={"Holotrack-Resume": ready["resume"]}
    )
    assert gone.status == 204
    assert await next_avatar_message(watcher) == {"type": "avatar", "url": None}
    missing = await client.get(new_url)
    assert missing.status == 404
    assert (await missing.json())["error"] == "no_avatar"
    assert held(client) == 0 == await gauge(client)
    for ws in (watcher, late, live.ws):
        await ws.close()


async def test_an_uploaded_avatar_never_runs_as_a_script(make_client: MakeClient) -> None:
    """A camera may upload any bytes that begin with glTF: 'glTF=1;window.GADGET=...' ran
    from a <script src> on another site's page (a security review: no nosniff). It is served
    nosniff, as an attachment, and no answer sends a Referer with a watch token in it."""
    client = await make_client(Config(workers=1, no_cache=True))
    live, ready = await camera(client)
    gadget = b"glTF=1;window.GADGET=document.domain;//" + bytes(64)
    answer = await put(client, ready, gadget)
    assert answer.status == 200, await answer.text()
    path = (await answer.json())["url"]
    url = str(client.make_url(path))
    served = await client.get(path)
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Content-Disposition"] == "attachment"
    for path in ("/", "/avatar", "/healthz", "/api/exercises"):
        page = await client.get(path)
        assert page.headers["X-Content-Type-Options"] == "nosniff", path
        assert page.headers["Referrer-Policy"] == "no-referrer", path
    async with open_page() as browser:
        await browser.page.goto(str(client.make_url("/healthz")))
        ran = await browser.page.evaluate(
            """(url) => new Promise((done) => {
                 const script = document.createElement("script");
                 script.src = url;
                 script.onload = () => done(window.GADGET ?? "loaded, not run");
                 script.onerror = () => done(window.GADGET ?? null);
                 document.head.append(script);
               })""",
            url,
        )
    assert ran is None
    await live.ws.close()


async def test_the_avatar_lives_as_long_as_the_link(make_client: MakeClient) -> None:
    """Through a lost connection (resume) and a takeover by the link's key, then gone with
    the link: the grace over, a plain end, and the server's shutdown."""
    client = await make_client(Config(workers=1, no_cache=True, watch_grace=2.0))
    link_key = secrets.token_urlsafe(32)
    first, ready = await camera(client, link_key=link_key)
    watcher, _ = await watch(client, ready["watch"])
    data = renamed_vrm("Kept")
    url = (await (await put(client, ready, data)).json())["url"]
    assert await next_avatar_message(watcher) == {"type": "avatar", "url": url}

    lose_connection(first)
    second, resumed = await camera(client, resume=ready["resume"])
    assert (resumed["watch"], resumed["avatar"]) == (ready["watch"], url)
    assert await next_avatar_message(watcher) == {
        "type": "watching",
        "session": resumed["session"],
        "avatar": url,
    }
    # The old resume string proves nothing any more; the new one does.
    assert (await put(client, ready, data)).status == 403
    third, taken = await camera(client, link_key=link_key)
    assert (taken["watch"], taken["avatar"]) == (ready["watch"], url)
    assert (await second.closed())[0] == Close.NORMAL
    assert await next_avatar_message(watcher) == {
        "type": "watching",
        "session": taken["session"],
        "avatar": url,
    }
    assert await (await client.get(url)).read() == data

    # The camera pauses and stays away past the grace: the link ends, and its avatar.
    await third.ws.close(code=Close.PAUSED, message=b"paused")
    assert held(client) == len(data)  # resting, within the grace
    closed = await watcher.receive()
    assert closed.type is aiohttp.WSMsgType.CLOSE
    assert "its camera paused" in str(closed.extra)
    assert (await client.get(url)).status == 404
    assert held(client) == 0 == await gauge(client)

    # A link that ends at once (the camera closed with 1000) drops its avatar at once.
    fourth, again = await camera(client, link_key=link_key)
    assert again["watch"] == ready["watch"]
    assert "avatar" not in again
    watcher, _ = await watch(client, ready["watch"])
    assert (await put(client, again, data)).status == 200
    assert (await next_avatar_message(watcher))["type"] == "avatar"
    await fourth.ws.close()
    assert (await watcher.receive()).type is aiohttp.WSMsgType.CLOSE
    assert held(client) == 0

    # So does the server's shutdown.
    _, last = await camera(client, link_key=link_key)
    assert (await put(client, last, data)).status == 200
    tokens = client.app[LIVE].tokens
    await client.close()
    assert tokens.avatars.held() == 0


def came_from(address: str) -> dict[str, str]:
    """Headers that make an upload come from `address` on a server with --trust-proxy."""
    return {"X-Forwarded-For": address}


async def test_too_big_not_a_vrm_and_a_full_budget_are_refused(make_client: MakeClient) -> None:
    client = await make_client(
        Config(workers=1, no_cache=True, max_avatar_mb=1, avatar_memory_mb=2, trust_proxy=True)
    )
    (_, a), (_, b), (_, c) = [await camera(client) for _ in range(3)]

    too_big = await put(client, a, glb_of(MB + 1))
    assert too_big.status == 413
    assert "--max-avatar-mb" in (await too_big.json())["detail"]

    async def chunked() -> AsyncIterator[bytes]:
        # No Content-Length: the server finds out by reading, and stops a byte past it.
        for _ in range(20):
            yield glb_of(64 * 1024)

    assert (await put(client, a, chunked())).status == 413
    zip_file = await put(client, a, b"PK\x03\x04" + b"\0" * 100)
    assert zip_file.status == 415
    assert "binary glTF" in (await zip_file.json())["detail"]
    assert held(client) == 0

    # Three addresses: the budget, not one address's share of it, is what runs out.
    assert (await put(client, a, glb_of(MB), **came_from("10.0.0.1"))).status == 200
    assert (await put(client, b, glb_of(MB), **came_from("10.0.0.2"))).status == 200
    # A replacement needs no room beside the avatar it replaces.
    assert (await put(client, a, glb_of(MB), **came_from("10.0.0.1"))).status == 200
    full = await put(client, c, glb_of(1000), **came_from("10.0.0.3"))
    assert full.status == 503
    body = await full.json()
    assert body["error"] == "avatar_memory_full"
    assert "--avatar-memory-mb 2" in body["detail"]
    assert held(client) == 2 * MB


async def test_one_address_holds_at_most_a_quarter_of_the_avatars_memory(
    make_client: MakeClient,
) -> None:
    """Its sessions' uploads, kept or still arriving (a slow one reserves --max-avatar-mb
    until it ends), count against one share; other addresses upload meanwhile."""
    client = await make_client(
        Config(workers=1, no_cache=True, max_avatar_mb=1, avatar_memory_mb=8, trust_proxy=True)
    )
    avatars = client.app[LIVE].tokens.avatars
    assert avatars.share == 2 * MB
    (_, a), (_, b), (_, c), (_, d) = [await camera(client) for _ in range(4)]
    one, other = came_from("10.0.0.1"), came_from("10.0.0.2")

    assert (await put(client, a, glb_of(MB), **one)).status == 200
    # A body still arriving, with no length: the whole --max-avatar-mb is reserved for it.
    reserved = asyncio.Event()
    release = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield glb_of(1000)
        reserved.set()
        await release.wait()

    slow_upload = asyncio.create_task(put(client, b, slow(), **one))
    await reserved.wait()
    await until(lambda: avatars.used_by("10.0.0.1") == 2 * MB, "the slow upload's reservation")

    refused = await put(client, c, glb_of(1000), **one)
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "60"
    body = await refused.json()
    assert body["error"] == "avatar_share_full"
    assert "a quarter of --avatar-memory-mb 8" in body["detail"]
    # Replacing its own avatar needs no more than it has.
    assert (await put(client, a, glb_of(MB), **one)).status == 200
    # Another address is not held back by the first one's.
    assert (await put(client, c, glb_of(MB), **other)).status == 200
    assert (await put(client, d, glb_of(MB), **other)).status == 200
    assert avatars.used_by("10.0.0.2") == 2 * MB

    release.set()
    assert (await slow_upload).status == 200
    assert avatars.used_by("10.0.0.1") == MB + 1000
    gone = await client.delete(
        f"/api/avatar/{a['watch']}", headers={"Holotrack-Resume": a["resume"]}
    )
    assert gone.status == 204
    assert avatars.used_by("10.0.0.1") == 1000
    assert held(client) == 1000 + 2 * MB


async def test_a_compressed_upload_counts_as_what_it_unpacks_to(make_client: MakeClient) -> None:
    """A gzip body's length says nothing of what it unpacks to (a few kB for a megabyte of
    zeros): it reserves the whole --max-avatar-mb, so an address's share and the budget
    hold however its avatars come."""
    client = await make_client(
        Config(workers=1, no_cache=True, max_avatar_mb=1, avatar_memory_mb=8, trust_proxy=True)
    )
    avatars = client.app[LIVE].tokens.avatars
    (_, a), (_, b), (_, c) = [await camera(client) for _ in range(3)]
    one = came_from("10.0.0.1")
    packed = gzip.compress(glb_of(MB - 1000))
    assert len(packed) < 2000
    gzipped = {**one, "Content-Encoding": "gzip"}
    assert (await put(client, a, glb_of(MB // 2), **one)).status == 200
    assert (await put(client, b, packed, **gzipped)).status == 200
    held_now = MB // 2 + MB - 1000
    assert avatars.used_by("10.0.0.1") == held_now  # of its share of 2 MB
    # Counted as its 2 kB, it would fit, and the address would hold 2.5 MB.
    refused = await put(client, c, packed, **gzipped)
    assert refused.status == 429
    assert (await refused.json())["error"] == "avatar_share_full"
    assert avatars.used_by("10.0.0.1") == held_now


async def test_uploads_are_off_with_no_memory_for_them(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1, no_cache=True, avatar_memory_mb=0))
    _, ready = await camera(client)
    refused = await put(client, ready, renamed_vrm("Nowhere"))
    assert refused.status == 403
    body = await refused.json()
    assert body["error"] == "avatar_uploads_off"
    assert "--avatar-memory-mb is 0" in body["detail"]
    assert held(client) == 0
    # The page offers no "Show it in OBS too" and says why the OBS view shows the default.
    page = await (await client.get("/avatar")).text()
    assert 'id="avatar-obs"' not in page
    assert "<code>--avatar-memory-mb 0</code>" in page


async def test_the_holder_of_a_kept_links_key_gives_it_an_avatar_too(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """The avatar page on a PC whose phone is the camera: it holds the link's key (it handed
    it to the phone), not the phone's resume string."""
    keys = str(keys_file(tmp_path))
    client = await make_client(Config(workers=1, no_cache=True, access_keys=keys))
    link_key = secrets.token_urlsafe(32)
    phone, ready = await camera(client, key=KEY_A, link_key=link_key)
    data = renamed_vrm("From the PC")
    pc = {"Holotrack-Link-Key": link_key, **auth(KEY_A)}
    # Another key, however close, proves nothing; nor does the right one under another
    # access key than the link's.
    for wrong in (link_key[:-1] + ("A" if link_key[-1] != "A" else "B"), ready["watch"], "x"):
        refused = await put(client, ready, data, proof="", **{**pc, "Holotrack-Link-Key": wrong})
        assert refused.status == 403, wrong
        assert "Holotrack-Link-Key" in (await refused.json())["detail"]
    assert (await put(client, ready, data, proof="", **{**pc, **auth(KEY_B)})).status == 403
    # Bytes no key has, raw on the wire as any client may send them: a refusal, not a fault.
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        f"PUT /api/avatar/{ready['watch']} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        f"{KEY_A}\r\nContent-Length: 0\r\nConnection: close\r\n".encode()
        + b"Holotrack-Link-Key: \xff\xfe"
        + b"A" * 30
        + b"\r\n\r\n"
    )
    status = (await reader.readline()).split()[1]
    writer.close()
    assert status == b"403"

    answer = await put(client, ready, data, proof="", **pc)
    assert answer.status == 200, await answer.text()
    url = (await answer.json())["url"]
    assert await (await client.get(url)).read() == data
    gone = await client.delete(f"/api/avatar/{ready['watch']}", headers=pc)
    assert gone.status == 204
    assert (await client.get(url)).status == 404
    await phone.ws.close()


async def test_under_access_keys_the_upload_needs_the_cameras_key(
    make_client: MakeClient, tmp_path: Path
) -> None:
    keys = str(keys_file(tmp_path))
    client = await make_client(Config(workers=1, no_cache=True, access_keys=keys))
    _, ready = await camera(client, key=KEY_A)
    data = renamed_vrm("Keyed")
    keyless = await put(client, ready, data)
    assert keyless.status == 401
    # A key of this server, but not the one the camera's session was opened with.
    assert (await put(client, ready, data, **auth(KEY_B))).status == 403
    answer = await put(client, ready, data, **auth(KEY_A))
    assert answer.status == 200
    # Its OBS view has the link and no key, like any watcher.
    assert await (await client.get((await answer.json())["url"])).read() == data


async def test_a_reader_who_stops_reading_holds_no_copy_of_the_avatar(
    make_client: MakeClient,
) -> None:
    """GET is public: written whole, the file waited in the socket's buffer, a copy for
    each reader that did not read, for as long as it stayed connected, outside the budget
    (20 such readers of a 32 MiB avatar took the server 616 MiB up). Now the server holds a
    piece at a time, and cuts off after --send-timeout a reader who reads nothing."""
    client = await make_client(Config(workers=1, no_cache=True, send_timeout=1.0))
    _, ready = await camera(client)
    size = 16 * MB  # well past what the two sockets' kernel buffers take in
    url = (await (await put(client, ready, glb_of(size))).json())["url"]
    assert client.server.runner is not None
    server = client.server.runner.server
    assert server is not None
    before = set(server.connections)

    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.setblocking(False)
    await asyncio.get_running_loop().sock_connect(reader, ("127.0.0.1", client.server.port))
    try:
        reader.sendall(f"GET {url} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await until(lambda: len(set(server.connections) - before) == 1, "the GET is served")
        (handler,) = set(server.connections) - before
        await until(lambda: handler.writing_paused, "the socket is full")
        assert handler.transport is not None
        assert handler.transport.get_write_buffer_size() < MB
        await until(lambda: handler not in server.connections, "the reader is cut off")
    finally:
        reader.close()


async def test_a_download_of_an_avatar_taken_back_stops(make_client: MakeClient) -> None:
    """No reader keeps a replaced or dropped avatar alive outside the budget: its download
    stops at the next piece (its watchers were told where the new one is)."""
    client = await make_client(Config(workers=1, no_cache=True, send_timeout=60.0))
    _, ready = await camera(client)
    size = 16 * MB
    url = (await (await put(client, ready, glb_of(size))).json())["url"]
    loop = asyncio.get_running_loop()
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.setblocking(False)
    await loop.sock_connect(reader, ("127.0.0.1", client.server.port))
    try:
        await loop.sock_sendall(reader, f"GET {url} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        received = len(await loop.sock_recv(reader, 4096))
        gone = await client.delete(
            f"/api/avatar/{ready['watch']}", headers={"Holotrack-Resume": ready["resume"]}
        )
        assert gone.status == 204
        with contextlib.suppress(ConnectionResetError):
            async with asyncio.timeout(30):
                while received < size and (chunk := await loop.sock_recv(reader, 1 << 20)):
                    received += len(chunk)
        assert received < size  # the headers and part of the body, then the end
    finally:
        reader.close()


async def test_an_upload_to_a_link_that_ended_is_not_given_to_the_next(
    make_client: MakeClient,
) -> None:
    """A kept link ends mid-upload (Stop) and the same link_key opens it again: the token
    is the same, the link is not; the avatar sent to the one that ended is not kept."""
    client = await make_client(Config(workers=1, no_cache=True))
    tokens = client.app[LIVE].tokens
    link_key = secrets.token_urlsafe(32)
    first, ready = await camera(client, link_key=link_key)
    go_on = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield glb_of(64 * 1024)
        await go_on.wait()
        yield b"\0" * 1024

    upload = asyncio.create_task(put(client, ready, body()))
    await until(lambda: ready["watch"] in tokens.avatars._arriving, "the upload is under way")
    await first.ws.close()  # 1000: the link ends
    await until(lambda: len(tokens) == 0, "the link ended")
    second, again = await camera(client, link_key=link_key)
    assert again["watch"] == ready["watch"]
    go_on.set()
    answer = await upload
    assert answer.status == 404
    assert (await answer.json())["error"] == "unknown_link"
    assert held(client) == 0
    assert (await client.get(f"/avatar/link/{ready['watch']}.vrm")).status == 404
    await second.ws.close()


# --- In real Chromium: the OBS view and the avatar page's opt-in ------------------------------

FAKE_CAMERA = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


async def open_view(page: Page, client: Client, token: str) -> None:
    await page.goto(str(client.make_url(f"/avatar?watch={token}")))
    await page.wait_for_selector("body[data-avatar-ready=true]", state="attached")


async def shows(page: Page, name: str, source: str) -> None:
    """Waits until the view shows the avatar named `name`, from the link or the default."""
    await page.wait_for_function(
        "([name, source]) => window.holotrackAvatar.name() === name"
        " && document.body.dataset.avatarSource === source",
        arg=[name, source],
    )


async def test_the_obs_view_shows_the_links_avatar_and_follows_it(
    make_client: MakeClient,
) -> None:
    needs_node_modules()
    client = await make_client(Config(workers=1, no_cache=True))
    _, ready = await camera(client, link_key=secrets.token_urlsafe(32))
    assert (await put(client, ready, renamed_vrm("Uploaded Godette"))).status == 200
    async with open_page() as browser:
        view = browser.page
        await open_view(view, client, ready["watch"])
        await shows(view, "Uploaded Godette", "link")
        # Replaced while on show: the view switches without a reload.
        assert (await put(client, ready, renamed_vrm("Second Godette"))).status == 200
        await shows(view, "Second Godette", "link")
        # Taken back: the default again.
        gone = await client.delete(
            f"/api/avatar/{ready['watch']}", headers={"Holotrack-Resume": ready["resume"]}
        )
        assert gone.status == 204
        await shows(view, DEFAULT_TITLE, "default")
        assert browser.errors == []


@contextlib.asynccontextmanager
async def sent_to_obs(
    client: Client, name: str, title: str
) -> AsyncIterator[tuple[BrowserPage, Page, str]]:
    """The avatar page, started, with its own .vrm `name` (titled `title`) sent for OBS,
    and an OBS view showing it: the browser, the view and the link's watch token."""
    needs_node_modules()
    async with open_page(FAKE_CAMERA) as browser:
        page = browser.page
        await page.goto(str(client.make_url("/avatar")))
        await page.wait_for_selector("body[data-avatar-ready=true]", state="attached")
        await page.click("#avatar-start")
        await page.wait_for_selector("body[data-session]", state="attached")
        token = await page.get_attribute("#watch-link", "data-token")
        assert token
        await load_model(page, name, renamed_vrm(title))
        await page.check("#avatar-obs")
        await page.wait_for_selector("body[data-obs-avatar=sent]", state="attached")
        view = await page.context.new_page()
        await open_view(view, client, token)
        await shows(view, title, "link")
        yield browser, view, token


async def test_new_link_while_stopped_ends_the_old_link_and_its_avatar_at_once(
    make_client: MakeClient,
) -> None:
    """Stop, then New link: the page said "the old one no longer works" while the old link
    kept its OBS view watching, and served the streamer's .vrm to whoever had it, for the
    server's whole grace."""
    client = await make_client(Config(workers=1, no_cache=True, watch_grace=600))
    async with sent_to_obs(client, "mine.vrm", "Page Godette") as (browser, view, old):
        page = browser.page
        await page.click("#avatar-stop")
        await page.wait_for_selector("#avatar-start:enabled")
        await page.click("#watch-new")
        await page.wait_for_function(
            "(old) => !['', undefined, old].includes("
            "document.getElementById('watch-link').dataset.token)",
            arg=old,
        )
        assert "the old one no longer works" in await page.inner_text("#watch-share-status")
        # Within seconds, not the grace's ten minutes.
        await view.wait_for_function(
            "() => document.getElementById('watch-status').textContent"
            ".includes('The session this view watches has ended')",
            timeout=20_000,
        )
        gone = await client.get(f"/avatar/link/{old}.vrm")
        assert gone.status == 404
        assert held(client) == 0
        assert browser.errors == []


async def test_the_obs_view_tries_an_avatar_that_failed_again(make_client: MakeClient) -> None:
    """A network blip as OBS opens the view: the default avatar did not load, and once
    watching the view stayed empty and silent for good (the same avatar announced again
    was taken as on show). Watching, it tries again."""
    needs_node_modules()
    client = await make_client(Config(workers=1, no_cache=True))
    _, ready = await camera(client)
    async with open_page() as browser:
        view = browser.page
        failed = asyncio.Event()

        async def fail_once(route: Route) -> None:
            if failed.is_set():
                await route.continue_()
                return
            failed.set()
            await route.abort()

        await view.route("**/*.vrm", fail_once)
        await view.goto(str(client.make_url(f"/avatar?watch={ready['watch']}")))
        await shows(view, DEFAULT_TITLE, "default")
        assert failed.is_set()
        assert await view.get_attribute("body", "data-watch-state") == "ok"


async def test_the_page_sends_its_own_vrm_only_once_ticked(make_client: MakeClient) -> None:
    needs_node_modules()
    client = await make_client(Config(workers=1, no_cache=True))
    async with open_page(FAKE_CAMERA) as browser:
        page = browser.page
        await page.goto(str(client.make_url("/avatar")))
        await page.wait_for_selector("body[data-avatar-ready=true]", state="attached")
        # Nothing to send yet: the option appears with the user's own .vrm.
        assert await page.is_hidden("#avatar-obs-box")
        await page.click("#avatar-start")
        await page.wait_for_selector("body[data-session]", state="attached")
        token = await page.get_attribute("#watch-link", "data-token")
        assert token

        data = renamed_vrm("Page Godette")
        await load_model(page, "mine.vrm", data)
        assert await page.is_visible("#avatar-obs-box")
        assert not await page.is_checked("#avatar-obs")
        note = await page.inner_text("#avatar-obs-note")
        assert "never on disk" in note
        assert "Anyone with the OBS link can download it" in note
        await page.wait_for_selector("body[data-obs-avatar=off]", state="attached")
        assert held(client) == 0  # chosen, not ticked: it stayed in the browser

        view = await page.context.new_page()
        await open_view(view, client, token)
        await shows(view, DEFAULT_TITLE, "default")
        await page.check("#avatar-obs")
        await page.wait_for_selector("body[data-obs-avatar=sent]", state="attached")
        assert held(client) == len(data)
        await shows(view, "Page Godette", "link")

        await page.uncheck("#avatar-obs")
        await page.wait_for_function("() => document.body.dataset.obsAvatar === 'off'")
        assert held(client) == 0
        await shows(view, DEFAULT_TITLE, "default")

        # "Forget this avatar" forgets it in OBS too: the server kept serving it, ticked.
        await page.check("#avatar-obs")
        await page.wait_for_selector("body[data-obs-avatar=sent]", state="attached")
        await shows(view, "Page Godette", "link")
        await page.click("#avatar-forget")
        await page.wait_for_function("() => document.body.dataset.obsAvatar === 'off'")
        assert not await page.is_checked("#avatar-obs")
        assert held(client) == 0
        await shows(view, DEFAULT_TITLE, "default")
        assert browser.errors == []


def padded_vrm(title: str, size: int) -> bytes:
    """renamed_vrm(title) grown to `size` bytes by a chunk of a type glTF readers skip."""
    glb = renamed_vrm(title)
    pad = b"\0" * (size - len(glb) - 8)
    grown = glb + struct.pack("<II", len(pad), 0x44415000) + pad
    return grown[:8] + struct.pack("<I", len(grown)) + grown[12:]


async def test_a_vrm_too_big_for_obs_says_what_obs_still_shows(make_client: MakeClient) -> None:
    """A second .vrm over --max-avatar-mb: OBS kept the one sent before while the page said
    only that this one was too big, so a streamer who switched avatars took the stream to
    show the new one, or the default."""
    client = await make_client(Config(workers=1, no_cache=True, max_avatar_mb=1))
    async with sent_to_obs(client, "first.vrm", "First Godette") as (browser, view, _):
        page = browser.page

        await load_model(page, "big.vrm", padded_vrm("Big Godette", MB + MB // 2))
        await page.wait_for_selector("body[data-obs-avatar=error]", state="attached")
        said = await page.inner_text("#avatar-obs-status")
        assert "big.vrm is 1.5 MB, over the 1 MB this server keeps for OBS" in said, said
        assert "OBS still shows first.vrm" in said, said
        await shows(view, "First Godette", "link")
        assert browser.errors == []
