"""The page in a real headless Chromium against the real app and model."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
from PIL import ExifTags, Image, ImageOps
from playwright.async_api import Page

from tests.browser import (
    BrowserPage,
    NetworkDown,
    Reported,
    close_to,
    drop_link,
    drop_paths,
    fake_camera_args,
    open_page,
    record_text,
    write_y4m,
)
from tests.conftest import Client, MakeClient
from tests.media import ASL_VIDEO, PERSON_JPEG
from webapp.access.socket import ASK as ACCESS_ASK
from webapp.config import Config
from webapp.errors import HolotrackError
from webapp.keys import SCHEDULER, SESSIONS
from webapp.protocol import Close

pytestmark = pytest.mark.browser

# Pose points on the body itself; 15-22 (wrists and fingers) sit under the hand drawings.
BODY_POINTS = [0, 11, 12, 13, 14, 23, 24, 25, 26, 27, 28]
PLACEHOLDER = "\N{EN DASH}"  # what the readout shows before the first figure
PARTS = ("pose", "left_hand", "right_hand", "face")

# The same photo drawn on a canvas of the same size, without any overlay.
BASELINE_JS = """
async (canvas, data) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/jpeg" }));
  const plain = document.createElement("canvas");
  plain.id = "baseline";
  plain.width = canvas.width;
  plain.height = canvas.height;
  plain.hidden = true;
  plain.getContext("2d").drawImage(bitmap, 0, 0, plain.width, plain.height);
  document.body.append(plain);
}
"""


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    return await make_client(Config(workers=1, no_cache=True))


async def open_index(browser: BrowserPage, client: Client) -> None:
    await browser.page.goto(str(client.make_url("/")))
    await browser.page.wait_for_selector(
        "body[data-still-ready][data-live-ready]", state="attached"
    )


async def upload(browser: BrowserPage, files: Any) -> str:
    """Sets the file input and waits for the answer; returns the status kind."""
    page = browser.page
    await page.set_input_files("#file", files)
    await page.wait_for_function(
        """() => {
             const status = document.getElementById("still-status");
             return status.dataset.kind === "error" || status.dataset.kind === "ok"
               || status.dataset.kind === "info";
           }"""
    )
    kind: str = await page.eval_on_selector("#still-status", "el => el.dataset.kind")
    return kind


async def test_still_photo_shows_the_skeleton_and_the_json(client: Client) -> None:
    async with open_page() as browser:
        page = browser.page
        await open_index(browser, client)
        colors = await browser.colors()
        assert len(set(colors.values())) == len(PARTS)

        kind = await upload(browser, PERSON_JPEG)
        status = await page.inner_text("#still-status")
        assert kind == "ok", status
        assert "pose (33)" in status
        assert await page.is_visible("#still-canvas")

        answer = json.loads(await page.inner_text("#json"))
        pose = answer["landmarks"]["pose"]
        assert len(pose) == 33
        assert all(len(point) == 4 for point in pose)
        assert len(answer["landmarks"]["face"]) == 468
        assert len(answer["landmarks"]["left_hand"]) == 21
        assert len(answer["landmarks"]["right_hand"]) == 21

        # The drawn canvas against the bare photo: each part adds pixels of its own colour.
        await page.eval_on_selector(
            "#still-canvas", BASELINE_JS, base64.b64encode(PERSON_JPEG.read_bytes()).decode()
        )
        drawn = await browser.count_colors("#still-canvas", colors)
        bare = await browser.count_colors("#baseline", colors)
        for part in PARTS:
            assert drawn[part] >= bare[part] + 100, (part, drawn, bare)

        # And they are where the JSON says: points are filled dots of their part's colour.
        body = [
            pose[i]
            for i in BODY_POINTS
            if pose[i][3] >= 0.5 and 0.01 < pose[i][0] < 0.99 and 0.01 < pose[i][1] < 0.99
        ]
        assert len(body) >= 4
        on_pose = [
            close_to(await browser.pixel("#still-canvas", x, y), colors["pose"])
            for x, y, _, _ in body
        ]
        assert sum(on_pose) >= len(body) // 2 + 1, on_pose
        for hand in ("left_hand", "right_hand"):
            points = answer["landmarks"][hand]
            on_hand = [
                close_to(await browser.pixel("#still-canvas", x, y), colors[hand])
                for x, y, _ in points
            ]
            assert sum(on_hand) >= len(points) // 2, (hand, on_hand)

        # Download JSON hands over the same answer.
        async with page.expect_download() as info:
            await page.click("#download-json")
        download = await info.value
        assert download.suggested_filename.endswith(".landmarks.json")
        path = await download.path()
        saved = await asyncio.to_thread(Path(path).read_text)
        assert json.loads(saved)["landmarks"] == answer["landmarks"]
        assert browser.errors == []


# Orientation -> the turn that undoes it: a photo stored that way, which EXIF says to turn.
UNDO_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
THUMBNAIL = (16, 12)
THUMBNAIL_JS = """(canvas, [width, height]) => {
  const small = document.createElement("canvas");
  small.width = width;
  small.height = height;
  const ctx = small.getContext("2d");
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(canvas, 0, 0, width, height);
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const grey = [];
  for (let i = 0; i < rgba.length; i += 4) grey.push((rgba[i] + rgba[i + 1] + rgba[i + 2]) / 3);
  return grey;
}"""


@pytest.mark.parametrize("orientation", sorted(UNDO_ORIENTATION))
async def test_a_webp_turned_by_its_exif_is_drawn_upright_as_the_server_read_it(
    client: Client, orientation: int
) -> None:
    """Chromium honours EXIF orientation in JPEG and PNG but not in WebP: such a photo was
    drawn sideways (or mirrored) under a skeleton found on the upright one."""
    upright = small_photo()
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    stored = io.BytesIO()
    upright.transpose(UNDO_ORIENTATION[orientation]).save(stored, "WEBP", exif=exif.tobytes())
    await drawn_as_upright(client, stored.getvalue(), upright)


def small_photo() -> Image.Image:
    photo = Image.open(PERSON_JPEG).convert("RGB")
    photo.thumbnail((480, 480))
    return photo


async def drawn_as_upright(client: Client, data: bytes, upright: Image.Image) -> None:
    """Uploads the WebP `data`, which the server reads as `upright`, and checks the page drew
    it so, its skeleton over it."""
    assert ImageOps.exif_transpose(Image.open(io.BytesIO(data))).size == upright.size
    async with open_page() as browser:
        page = browser.page
        await open_index(browser, client)
        files = {"name": "turned.webp", "mimeType": "image/webp", "buffer": data}
        assert await upload(browser, files) == "ok"
        answer = json.loads(await page.inner_text("#json"))
        assert [answer["image"]["width"], answer["image"]["height"]] == list(upright.size)
        drawn = await page.eval_on_selector("#still-canvas", "c => [c.width, c.height]")
        assert drawn == list(upright.size)
        seen = np.array(await page.eval_on_selector("#still-canvas", THUMBNAIL_JS, THUMBNAIL))
        expected = np.asarray(upright.convert("L").resize(THUMBNAIL, Image.Resampling.BOX))
        # The skeleton's lines and dots change a thumbnail a little; a photo mirrored or
        # turned upside down changes it a lot.
        assert np.abs(seen - expected.ravel()).mean() < 15
        assert browser.errors == []


def odd_webp(upright: Image.Image, kind: str) -> bytes:
    """The photo as a WebP whose orientation only a careful reader gets as the server does."""
    stored = io.BytesIO()
    if kind == "exif_without_its_flag":
        # Stored upright, with an EXIF chunk that VP8X does not flag: the server's decoder
        # leaves it unread, and so the photo is upright to the server.
        exif = Image.Exif()
        exif[ExifTags.Base.Orientation] = 6
        upright.save(stored, "WEBP", exif=exif.tobytes())
        data = bytearray(stored.getvalue())
        assert data[12:16] == b"VP8X"
        data[20] &= ~0x08
        return bytes(data)
    turned = upright.transpose(UNDO_ORIENTATION[6])
    if kind == "big_endian_long":
        # IFD0 with one entry: Orientation (0x0112) as a LONG (type 4), 6.
        tiff = b"MM\0*" + (8).to_bytes(4, "big") + (1).to_bytes(2, "big")
        tiff += bytes.fromhex("0112 0004 00000001 00000006") + bytes(4)
        turned.save(stored, "WEBP", exif=tiff)
    else:
        xmp = (
            b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/'
            b'1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/'
            b'tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
        )
        turned.save(stored, "WEBP", xmp=xmp)
    return stored.getvalue()


@pytest.mark.parametrize("kind", ["exif_without_its_flag", "big_endian_long", "xmp"])
async def test_a_webp_is_drawn_as_the_server_read_its_orientation(
    client: Client, kind: str
) -> None:
    """The page read any EXIF chunk as a WebP's, and only a SHORT Orientation in it: a photo
    whose VP8X left EXIF out, upright to the server, was drawn sideways; one turned by an
    Orientation the server reads (a LONG, in XMP) was still drawn sideways."""
    upright = small_photo()
    await drawn_as_upright(client, odd_webp(upright, kind), upright)


async def test_the_same_photo_chosen_again_after_an_error_is_sent_again(client: Client) -> None:
    async with open_page() as browser:
        page = browser.page
        await open_index(browser, client)
        await page.route("**/predict", lambda route: route.abort())
        assert await upload(browser, PERSON_JPEG) == "error"
        assert "Could not reach the server" in await page.inner_text("#still-status")
        await page.unroute("**/predict")
        # The obvious retry once the server is back: the very same file, picked again.
        async with page.expect_request("**/predict", timeout=10_000):
            await page.set_input_files("#file", PERSON_JPEG)
        await page.wait_for_selector("#still-status[data-kind=ok]")
        assert await page.is_visible("#still-result")
        assert browser.errors == []


async def test_an_answer_that_is_not_the_servers_is_not_called_its_success(
    client: Client,
) -> None:
    """A 200 whose body is no JSON (a Wi-Fi sign-in page, an answer cut off) was shown as
    "The server answered HTTP 200 OK without an explanation"."""
    async with open_page() as browser:
        page = browser.page
        await open_index(browser, client)
        await page.route(
            "**/predict",
            lambda route: route.fulfill(
                status=200, content_type="text/html", body="<html>Sign in to Hotel Wi-Fi</html>"
            ),
        )
        assert await upload(browser, PERSON_JPEG) == "error"
        text = await page.inner_text("#still-status")
        assert text.startswith(f"The answer for {PERSON_JPEG.name} could not be read"), text
        assert "200 OK" not in text
        assert "Choose the photo again" in text
        assert await page.is_hidden("#still-result")
        assert browser.errors == []


async def test_a_photo_dropped_on_the_zone_is_sent_and_the_page_stays(client: Client) -> None:
    async with open_page() as browser:
        page = browser.page
        await open_index(browser, client)
        photo = list(PERSON_JPEG.read_bytes())
        async with page.expect_request("**/predict", timeout=10_000):
            await page.evaluate(
                """(bytes) => {
                     const data = new DataTransfer();
                     const file = new File([new Uint8Array(bytes)], "person.jpg",
                                           { type: "image/jpeg" });
                     data.items.add(file);
                     const zone = document.getElementById("drop-zone");
                     zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: data,
                                                                   cancelable: true }));
                     window.droppedWhileDragging = zone.classList.contains("dragging");
                     zone.dispatchEvent(new DragEvent("drop", { dataTransfer: data,
                                                               cancelable: true }));
                   }""",
                photo,
            )
        await page.wait_for_selector("#still-status[data-kind=ok]")
        assert await page.evaluate("window.droppedWhileDragging") is True
        assert not await page.eval_on_selector(
            "#drop-zone", "z => z.classList.contains('dragging')"
        )
        assert await page.is_visible("#still-result")
        # A file dropped beside the zone is refused by the page, not opened in its place.
        prevented = await page.evaluate(
            """() => {
                 const data = new DataTransfer();
                 data.items.add(new File(["x"], "x.txt", { type: "text/plain" }));
                 const drop = new DragEvent("drop", {
                   dataTransfer: data, cancelable: true, bubbles: true });
                 document.body.dispatchEvent(drop);
                 return drop.defaultPrevented;
               }"""
        )
        assert prevented is True
        assert browser.errors == []


async def test_photos_dropped_together_say_that_only_the_first_is_tracked(
    client: Client,
) -> None:
    """Three photos dropped at once: the first was tracked and the others dropped without
    a word, as if all three had been tracked, or the page had lost them."""
    photo = list(PERSON_JPEG.read_bytes())
    async with open_page() as browser:
        page = browser.page
        await open_index(browser, client)
        await page.evaluate(
            """(bytes) => {
                 const data = new DataTransfer();
                 for (const name of ["first.jpg", "second.jpg", "third.jpg"]) {
                   data.items.add(new File([new Uint8Array(bytes)], name,
                                           { type: "image/jpeg" }));
                 }
                 document.getElementById("drop-zone").dispatchEvent(
                   new DragEvent("drop", { dataTransfer: data, cancelable: true }));
               }""",
            photo,
        )
        await page.wait_for_selector("#still-status[data-kind=ok], #still-status[data-kind=info]")
        text = await page.inner_text("#still-status")
        assert text.startswith("first.jpg: Found pose (33)"), text
        assert "the other 2 files dropped with it were not tracked" in text, text
        assert "one photo at a time" in text
        assert await page.get_attribute("#still-status", "data-kind") == "info"
        assert await page.is_visible("#still-result")
        # One photo alone says nothing of others.
        assert await upload(browser, PERSON_JPEG) == "ok"
        assert "dropped with it" not in await page.inner_text("#still-status")
        assert browser.errors == []


async def test_a_picture_dragged_from_a_web_page_is_said_to_be_no_file(
    client: Client,
) -> None:
    async with open_page() as browser:
        page = browser.page
        await open_index(browser, client)
        # An image dragged from another site.
        await drop_link(page, "drop-zone", "https://example.com/person.jpg")
        await page.wait_for_selector("#still-status[data-kind=error]")
        assert "not a file" in await page.inner_text("#still-status")
        assert browser.errors == []


async def test_a_folder_dropped_is_said_to_be_a_folder_not_a_server_away(
    client: Client, tmp_path: Path
) -> None:
    """A folder dropped on the zone was posted as a file the browser cannot read: the
    browser refused to send it, and the page said the server could not be reached."""
    folder = tmp_path / "holiday"
    folder.mkdir()
    (folder / "person.jpg").write_bytes(PERSON_JPEG.read_bytes())
    async with open_page() as browser:
        page = browser.page
        await open_index(browser, client)
        sent: list[str] = []
        page.on("request", lambda request: sent.append(request.url))
        await drop_paths(page, "drop-zone", [folder])
        await page.wait_for_selector("#still-status[data-kind=error]")
        text = await page.inner_text("#still-status")
        assert text.startswith("holiday could not be read. A folder cannot be tracked"), text
        assert "reach the server" not in text
        assert not [url for url in sent if url.endswith("/predict")]
        assert await page.is_hidden("#still-result")
        assert browser.errors == []


@pytest.mark.parametrize(
    ("name", "mime", "data", "status"),
    [
        ("notes.txt", "text/plain", b"this is not a photo\n", 415),
        ("fake.jpg", "image/jpeg", b"this is not a photo either\n" * 20, 400),
    ],
    ids=["text_file", "text_named_jpg"],
)
async def test_a_refused_upload_is_shown_in_words(
    client: Client, name: str, mime: str, data: bytes, status: int
) -> None:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type=mime)
    direct = await client.post("/predict", data=form)
    expected = await direct.json()
    assert direct.status == status

    async with open_page() as browser:
        page = browser.page
        await open_index(browser, client)
        kind = await upload(browser, {"name": name, "mimeType": mime, "buffer": data})
        assert kind == "error"
        assert await page.is_visible("#still-status")
        text = await page.inner_text("#still-status")
        assert expected["detail"] in text
        assert f"HTTP {direct.status}" in text
        assert await page.is_hidden("#still-result")
        assert browser.errors == []


async def test_every_close_the_server_sends_is_said_in_words(client: Client) -> None:
    # Reasons as the server words them (webapp/live/); the page must not echo the code, nor
    # repeat its own words, nor pass on a note meant for whoever runs the server.
    reasons = {
        Close.GOING_AWAY: "the server is shutting down",
        Close.INTERNAL: "the server failed on this session; see its log",
        Close.TRY_AGAIN_LATER: (
            "full for pose at --min-session-fps 15: "
            "the 3 sessions here leave too little for another"
        ),
        Close.IDLE: "no frame for 30 s; closing idle session",
        Close.UNKNOWN_WATCH: "this watch link names no live session (it ended, or never was)",
        # No key sent: the words for API clients are not the page's.
        Close.UNAUTHORIZED: f"this server needs an access key: {ACCESS_ASK}",
    }
    codes = [int(code) for code in Close]
    async with open_page() as browser:
        await open_index(browser, client)
        said: dict[str, str] = await browser.page.evaluate(
            """async ([codes, reasons]) => {
                 const { describeClose } = await import("/static/protocol.js");
                 return Object.fromEntries(codes.map(
                   (code) => [code, describeClose(code, reasons[code] ?? "a reason").text]));
               }""",
            [codes, {int(code): reason for code, reason in reasons.items()}],
        )
        unknown = await browser.page.evaluate(
            "async () => (await import('/static/protocol.js')).describeClose(4999, '').text"
        )
    for code in codes:
        text = said[str(code)]
        assert str(code) not in text, text
        assert "unexpectedly" not in text, text
    assert "shutting down" in said[str(Close.GOING_AWAY)]
    assert said[str(Close.GOING_AWAY)].count("shutting down") == 1
    assert "log" not in said[str(Close.INTERNAL)]
    assert said[str(Close.TRY_AGAIN_LATER)] == (
        "The server is full or busy (the 3 sessions here leave too little for another)."
    )
    assert "idle session" not in said[str(Close.IDLE)]
    assert said[str(Close.UNKNOWN_WATCH)].count("watch link") == 1
    assert said[str(Close.UNAUTHORIZED)] == (
        "The server refused this session: it needs an access key."
    )
    # A code the page has no words for is named, so that it can be looked up.
    assert "4999" in unknown


async def test_a_keys_quota_is_said_as_the_keys_limit_not_a_full_server(client: Client) -> None:
    """Said as "The server is full or busy", a key's quota sent people to wait for a server
    that had room."""
    busy = "quota max_sessions: key alice already holds 2 live sessions; its max_sessions is 2"
    never = "quota max_sessions: key alice may hold no sessions (its max_sessions is 0)"
    async with open_page() as browser:
        await open_index(browser, client)
        said = await browser.page.evaluate(
            """async (closes) => {
                 const { describeClose } = await import("/static/protocol.js");
                 return closes.map(([code, reason]) => describeClose(code, reason));
               }""",
            [[int(Close.TRY_AGAIN_LATER), busy], [int(Close.POLICY), never]],
        )
    assert said[0]["text"] == (
        "Your access key is at its limit (key alice already holds 2 live sessions; "
        "its max_sessions is 2)."
    )
    assert said[0]["retry"] is True
    assert said[1]["text"].startswith("Your access key is at its limit (key alice may hold no")
    assert said[1]["retry"] is False


async def test_a_watchers_quota_is_said_as_the_watched_sessions_key(client: Client) -> None:
    """A coach's card and an OBS view have no key: a watcher counts against the key of the
    session it watches, and "Your access key is at its limit" sent a coach to look for one."""
    full = "quota max_sessions: key gym already holds 2 live sessions; its max_sessions is 2"
    async with open_page() as browser:
        await open_index(browser, client)
        said = await browser.page.evaluate(
            """async (reason) => {
                 const { describeWatchClose } = await import("/static/avatar/watch.js");
                 const { afterClose } = await import("/static/fitness/watcher.js");
                 return [
                   describeWatchClose(1013, reason, false),
                   afterClose({ code: 1013, reason, wasWatching: false, attempt: 0 }).text,
                 ];
               }""",
            full,
        )
    for text in said:
        assert text.startswith("The access key of the session watched is at its limit ("), text
        assert "Your access key" not in text


async def test_an_empty_file_is_said_in_words_for_a_person(client: Client) -> None:
    """A 0-byte photo (a download or copy that did not finish) was sent, and the server's
    words for scripts shown: "the multipart field 'file' is empty"."""
    async with open_page() as browser:
        page = browser.page
        await open_index(browser, client)
        sent: list[str] = []
        page.on("request", lambda request: sent.append(request.url))
        kind = await upload(
            browser, {"name": "IMG_2041.jpg", "mimeType": "image/jpeg", "buffer": b""}
        )
        text = await page.inner_text("#still-status")
        assert kind == "error", text
        assert text.startswith("IMG_2041.jpg is empty (0 bytes)"), text
        assert "multipart" not in text
        assert "Choose the photo again" in text
        assert not [url for url in sent if url.endswith("/predict")]
        assert await page.is_hidden("#still-result")
        assert browser.errors == []


async def test_a_photo_with_nobody_in_it_says_so_once(client: Client) -> None:
    ramp = np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1))
    ok, encoded = cv2.imencode(".png", ramp)
    assert ok
    async with open_page() as browser:
        page = browser.page
        await open_index(browser, client)
        kind = await upload(
            browser, {"name": "wall.png", "mimeType": "image/png", "buffer": encoded.tobytes()}
        )
        text = await page.inner_text("#still-status")
        assert kind == "info", text
        assert text.startswith("wall.png: No person found: try a photo with a person"), text
        assert text.lower().count("no person") == 1, text
        # What a screen reader says of the picture: it claimed a skeleton drawn over it.
        named = await page.get_attribute("#still-canvas", "aria-label")
        assert named == "wall.png with nothing drawn over it: no person was found", named
        assert await upload(browser, PERSON_JPEG) == "ok"
        named = await page.get_attribute("#still-canvas", "aria-label")
        assert named == (
            f"{PERSON_JPEG.name} with the pose, face, left hand, right hand found drawn over it"
        ), named
        assert browser.errors == []


async def test_a_video_on_the_still_page_is_told_where_videos_go_in_words(
    client: Client,
) -> None:
    """A video chosen or dropped here was told "POST videos to /api/video", words for
    scripts; and a long one, by its size alone, "too large", as if a smaller one would do."""
    video = ASL_VIDEO.read_bytes()
    async with open_page() as browser:
        page = browser.page
        await open_index(browser, client)
        said = []
        # As the browser labels it, and mislabelled, which only the server can tell.
        for name, mime_type in (("clip.mp4", "video/mp4"), ("clip.jpg", "image/jpeg")):
            kind = await upload(browser, {"name": name, "mimeType": mime_type, "buffer": video})
            said.append((kind, await page.inner_text("#still-status")))
            await page.evaluate("document.getElementById('still-status').dataset.kind = ''")
        assert browser.errors == []
    for (kind, text), name in zip(said, ("clip.mp4", "clip.jpg"), strict=True):
        assert kind == "error"
        assert text.startswith(f"{name} is a video, and this page tracks one photo at a time"), text
        assert "POST videos" not in text
        assert "Live webcam" in text


async def test_live_webcam_tracks_and_stops(client: Client, tmp_path: Path) -> None:
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=75)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await open_index(browser, client)
        colors = await browser.colors()
        # From the keyboard: the pressed button disables itself, and the focus went with it
        # to the page's body; it moves to the button that can be pressed next.
        await page.focus("#live-start")
        await page.keyboard.press("Space")
        await page.wait_for_function(
            """() => Number(document.getElementById("live-results").textContent) > 5
                  || document.getElementById("live-status").dataset.kind === "error" """
        )
        assert await page.evaluate("document.activeElement.id") == "live-stop"
        assert await page.get_attribute("#live-status", "data-kind") != "error", (
            await page.inner_text("#live-status")
        )
        # The granted rate changes with every stats message: the readout has it, not these words.
        assert await page.inner_text("#live-status") == "Tracking (holistic)."
        # The overlay holds only the skeleton, so any pixel of a part's colour was drawn.
        many = (100, 10**9)
        await browser.wait_for_colors("#live-overlay", {colors["pose"]: many, colors["face"]: many})
        first_session = await page.inner_text("#live-session")
        assert first_session != PLACEHOLDER
        assert (await page.inner_text("#live-latency")).endswith(" ms")
        assert float(await page.inner_text("#live-fps-granted")) > 0
        assert int(await page.inner_text("#live-dropped")) >= 0
        # The server invites frames with turns, and once they come the page sends most of its
        # frames on one. Before the first it paces itself, which on a loaded machine can be
        # dozens of frames: count from the first turn on. "0" is a truthy string: wait for a
        # turn, not for the attribute.
        await page.wait_for_function(
            "() => Number(document.getElementById('live-stage').dataset.turns) > 0"
        )
        counts_js = "el => [el.dataset.turns, el.dataset.sentOnTurn, el.dataset.sent].map(Number)"
        first = await page.eval_on_selector("#live-stage", counts_js)
        await page.wait_for_function(
            "(n) => Number(document.getElementById('live-stage').dataset.sent) >= n",
            arg=first[2] + 10,
        )
        then = await page.eval_on_selector("#live-stage", counts_js)
        turns, on_turn, sent = (b - a for a, b in zip(first, then, strict=True))
        assert turns > 0, (first, then)
        assert sent >= on_turn >= sent // 2 > 0, (first, then)

        # Pose only needs a new hello, so the page starts a new session by itself.
        await page.check("input[name=live-track][value=pose]")
        await page.wait_for_function(
            "(first) => document.getElementById('live-session').textContent !== first",
            arg=first_session,
        )
        none = (0, 0)
        await browser.wait_for_colors(
            "#live-overlay",
            {
                colors["pose"]: many,
                colors["face"]: none,
                colors["left_hand"]: none,
                colors["right_hand"]: none,
            },
        )

        await page.focus("#live-stop")  # the track's choice took the focus
        await page.keyboard.press("Enter")
        await page.wait_for_function(
            """() => document.getElementById("live-status").textContent.includes("Stopped")"""
        )
        assert await page.is_disabled("#live-stop")
        assert await page.is_enabled("#live-start")
        assert await page.evaluate("document.activeElement.id") == "live-start"
        # Stopped, the rates are no one's: the last ones stayed on screen.
        for rate in ("#live-fps-sent", "#live-fps-received", "#live-fps-granted", "#live-latency"):
            assert await page.inner_text(rate) == PLACEHOLDER, rate
        assert int(await page.inner_text("#live-results")) > 5  # counts are kept
        assert browser.errors == []


async def test_the_live_settings_come_back_on_the_next_visit(
    client: Client, tmp_path: Path
) -> None:
    """Mirror, the track, the frame width and the rate asked for are as they were left (in
    whichever tab), and the next Start's hello asks for them."""
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=30)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await open_index(browser, client)
        await page.uncheck("#live-mirror")
        await page.check("input[name=live-track][value=pose]")
        # Set in another tab of the page meanwhile: neither tab undoes the other's.
        other = await page.context.new_page()
        await other.goto(page.url)
        await other.wait_for_selector("body[data-live-ready]", state="attached")
        await other.select_option("#live-fps", "10")
        await other.close()
        await page.select_option("#live-width", "320")

        await page.reload()
        await page.wait_for_selector("body[data-still-ready][data-live-ready]", state="attached")
        assert not await page.is_checked("#live-mirror")
        assert not await page.eval_on_selector(
            "#live-stage", "el => el.classList.contains('mirrored')"
        )
        assert await page.is_checked("input[name=live-track][value=pose]")
        assert await page.input_value("#live-width") == "320"
        assert await page.input_value("#live-fps") == "10"
        hellos = Reported("hello")
        record_text(page, said=hellos)
        await page.click("#live-start")
        await page.wait_for_function(
            "() => Number(document.getElementById('live-results').textContent) > 2"
        )
        [hello] = await hellos.first(1)
        assert len(hellos) == 1, hellos
        assert (hello["track"], hello["fps"]) == ("pose", 10)
        assert await page.inner_text("#live-status") == "Tracking (pose)."
        assert browser.errors == []


@pytest.mark.parametrize(
    ("control", "presses", "asked"),
    [
        ("#live-fps", 2, ("holistic", 30)),
        ("input[name=live-track][value=holistic]", 3, ("pose", 15)),
    ],
    ids=["rate", "track"],
)
async def test_a_setting_stepped_by_its_keys_starts_one_session(
    client: Client, tmp_path: Path, control: str, presses: int, asked: tuple[str, int]
) -> None:
    """Each arrow key on the rate's select or the track's radios fires their change: 15 to
    30 fps by the keys started two sessions, each "Connecting…" and a gap in tracking."""
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=60)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await open_index(browser, client)
        hellos = Reported("hello")
        record_text(page, said=hellos)
        await page.click("#live-start")
        await page.wait_for_function(
            "() => Number(document.getElementById('live-results').textContent) > 2"
        )
        first = await page.inner_text("#live-session")
        await page.focus(control)
        for _ in range(presses):
            await page.keyboard.press("ArrowDown")
        await page.wait_for_function(
            "(first) => document.getElementById('live-session').textContent !== first",
            arg=first,
        )
        # Results of the new session, past the 0.7 s a keyed change waits: any other
        # session the keys started would be under way by now.
        since = int(await page.inner_text("#live-results"))
        await page.wait_for_function(
            "(n) => Number(document.getElementById('live-results').textContent) > n + 12",
            arg=since,
        )
        await hellos.first(2)
        assert [(h["track"], h["fps"]) for h in hellos] == [("holistic", 15), asked]
        await page.click("#live-stop")
        assert browser.errors == []


async def test_a_setting_picked_by_the_pointer_after_its_keys_is_taken_at_once(
    client: Client,
) -> None:
    """Keys wait for the next key; a pointer's pick is acted on at once, though the keys
    moved the control before it (and the pick replaces the change they left waiting)."""
    async with open_page() as browser:
        await open_index(browser, client)
        calls = await browser.page.evaluate(
            """async () => {
                 const { onSettledChange } = await import("/static/settled.js");
                 const select = document.createElement("select");
                 document.body.append(select);
                 let calls = 0;
                 onSettledChange([select], () => (calls += 1), 60000);
                 select.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown" }));
                 select.dispatchEvent(new Event("change"));
                 const keyed = calls;
                 select.dispatchEvent(new PointerEvent("pointerdown"));
                 select.dispatchEvent(new Event("change"));
                 return [keyed, calls];
               }"""
        )
    assert calls == [0, 1]


# A camera in use: Chromium's fake camera cannot be held, so getUserMedia fails as it does then.
CAMERA_IN_USE_JS = """
navigator.mediaDevices.getUserMedia = () =>
  Promise.reject(new DOMException("Could not start video source", "NotReadableError"));
"""


@pytest.mark.parametrize(
    ("args", "script", "advice"),
    [
        (["--use-fake-device-for-media-stream", "--deny-permission-prompts"], "", "Allow the"),
        (["--use-fake-ui-for-media-stream"], "", "Connect one"),
        (["--use-fake-ui-for-media-stream"], CAMERA_IN_USE_JS, "Close that program"),
    ],
    ids=["denied", "no_camera", "in_use"],
)
async def test_a_camera_that_cannot_start_says_what_to_do(
    client: Client, args: list[str], script: str, advice: str
) -> None:
    async with open_page(args) as browser:
        page = browser.page
        if script:
            await page.add_init_script(script)
        await open_index(browser, client)
        await page.click("#live-start")
        await page.wait_for_selector("#live-status[data-kind=error]")
        text = await page.inner_text("#live-status")
        assert text.startswith("Cannot start the camera: "), text
        assert advice in text
        assert text.endswith("press Start."), text
        assert await page.is_enabled("#live-start")
        assert browser.errors == []


@pytest.mark.parametrize("size", [(1280, 720), (360, 640)], ids=["wide", "portrait"])
async def test_a_camera_of_another_shape_is_tracked_whole(
    client: Client, tmp_path: Path, size: tuple[int, int]
) -> None:
    """A camera that is not 4:3 (an HD webcam or a capture card at 16:9, a phone or a
    virtual camera standing up) is shown and tracked in its own shape, not its middle."""
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=10, size=size)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        answered = asyncio.Event()
        _, received = record_text(page, lambda m: answered.set() if m["type"] == "result" else None)
        await open_index(browser, client)
        await page.click("#live-start")
        await page.wait_for_function(
            "() => Number(document.getElementById('live-results').textContent) > 0"
        )
        width, height = size
        shown = await page.eval_on_selector("#live-video", "(v) => [v.videoWidth, v.videoHeight]")
        assert shown[0] * height == shown[1] * width, shown
        # Playwright may report the result after the page has counted it.
        async with asyncio.timeout(30):
            await answered.wait()
        (image, *_) = [m["image"] for m in received if m["type"] == "result"]
        assert image["width"] * height == image["height"] * width, image
        await page.click("#live-stop")
        assert browser.errors == []


# The camera held back until the test lets it go: getUserMedia (the person still on the
# permission prompt) or video.play() (the picture still starting). Every stream handed out and
# every WebSocket opened is kept, to see what the page did with them.
HELD_CAMERA_JS = """
window.heldStreams = [];
window.sockets = 0;
let release;
const held = new Promise((resolve) => { release = resolve; });
window.releaseCamera = release;
const hold = new URLSearchParams(location.search).get("hold");
const ask = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = async (constraints) => {
  window.cameraAsked = true;
  if (hold === "prompt") await held;
  const stream = await ask(constraints);
  window.heldStreams.push(stream);
  return stream;
};
const play = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = async function () {
  const playing = play.call(this);
  playing.catch(() => {}); // handled below, once let go
  window.playing = true;
  if (hold === "play") await held;
  return playing;
};
const Socket = window.WebSocket;
window.WebSocket = class extends Socket {
  constructor(...args) {
    super(...args);
    window.sockets += 1;
  }
};
"""


@pytest.mark.parametrize("hold", ["prompt", "play"])
async def test_stop_while_the_camera_opens_keeps_it_closed(
    client: Client, tmp_path: Path, hold: str
) -> None:
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=10)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await page.add_init_script(HELD_CAMERA_JS)
        await page.goto(str(client.make_url(f"/?hold={hold}")))
        await page.wait_for_selector("body[data-live-ready]", state="attached")
        await page.click("#live-start")
        await page.wait_for_function(
            "() => window.playing" if hold == "play" else "() => window.cameraAsked"
        )
        await page.click("#live-stop")
        await page.wait_for_function(
            "() => document.getElementById('live-status').textContent === 'Stopped.'"
        )
        await page.evaluate("() => window.releaseCamera()")
        # The late stream is closed, put to use, or blamed on the camera: whichever comes.
        # Closing it takes no server, so a page that waits on a cleared video fails soon.
        await page.wait_for_function(
            """() => window.sockets > 0
                 || document.getElementById("live-status").dataset.kind !== "info"
                 || (window.heldStreams.length > 0
                 && window.heldStreams.every((s) => s.getTracks().every(
                      (t) => t.readyState === "ended")))""",
            timeout=30_000,
        )
        live = await page.evaluate(
            """() => window.heldStreams.flatMap((s) => s.getTracks())
                 .filter((t) => t.readyState === "live").length"""
        )
        assert live == 0
        assert await page.evaluate("() => window.sockets") == 0
        assert await page.evaluate("() => document.getElementById('live-video').srcObject") is None
        assert await page.inner_text("#live-status") == "Stopped."
        assert await page.get_attribute("#live-status", "data-kind") == "info"
        assert await page.is_enabled("#live-start")
        assert await page.is_disabled("#live-stop")
        assert browser.errors == []


# A camera track other than `first`, live, and the page tracking with it.
TRACKING_ON_ANOTHER_TRACK_JS = """(first) => {
  const track = document.getElementById("live-video").srcObject?.getVideoTracks()[0];
  return track && track.id !== first && track.readyState === "live"
    && document.getElementById("live-status").textContent.startsWith("Tracking");
}"""


@contextlib.asynccontextmanager
async def tracking(client: Client, camera: Path, frames: int) -> AsyncIterator[BrowserPage]:
    """The live page with `frames` of the ASL video as its camera, once a result is in."""
    y4m = write_y4m(ASL_VIDEO, camera, frames=frames)
    async with open_page(fake_camera_args(y4m)) as browser:
        await open_index(browser, client)
        await browser.page.click("#live-start")
        await browser.page.wait_for_function(
            "() => Number(document.getElementById('live-results').textContent) > 0"
        )
        yield browser


async def test_a_camera_that_stops_mid_session_is_opened_again(
    client: Client, tmp_path: Path
) -> None:
    """The OS takes the camera (or it is unplugged): the session waits while the page opens
    the camera again, then goes on by itself; a camera that cannot be had is said in words."""
    async with tracking(client, tmp_path / "camera.y4m", frames=10) as browser:
        page = browser.page
        first = await page.evaluate(
            "() => document.getElementById('live-video').srcObject.getVideoTracks()[0].id"
        )
        # As the browser does when the camera is unplugged or another program takes it.
        await page.evaluate(
            """() => document.getElementById("live-video").srcObject.getVideoTracks()[0]
                 .dispatchEvent(new Event("ended"))"""
        )
        await page.wait_for_function(
            TRACKING_ON_ANOTHER_TRACK_JS,
            arg=first,
        )
        notice = await page.inner_text("#live-notice")
        assert notice.endswith("the camera stopped and was opened again."), notice
        assert await page.is_disabled("#live-start")

        # Unplugged for good: no camera to open again.
        await page.evaluate(
            """() => {
                 navigator.mediaDevices.getUserMedia = () =>
                   Promise.reject(new DOMException("Requested device not found", "NotFoundError"));
                 document.getElementById("live-video").srcObject.getVideoTracks()[0]
                   .dispatchEvent(new Event("ended"));
               }"""
        )
        await page.wait_for_selector("#live-start:enabled")
        text = await page.inner_text("#live-status")
        assert (
            text == "Cannot start the camera: no camera was found. Connect one, then press Start."
        )
        assert browser.errors == []


async def test_a_camera_stopped_without_its_ended_event_is_opened_again(
    client: Client, tmp_path: Path
) -> None:
    """track.stop() (from the devtools console, or an extension) ends the camera without
    the "ended" event a browser fires: the page finds it ended at its next frame."""
    async with tracking(client, tmp_path / "camera.y4m", frames=10) as browser:
        page = browser.page
        first = await page.evaluate(
            "() => document.getElementById('live-video').srcObject.getVideoTracks()[0].id"
        )
        await page.evaluate(
            "() => document.getElementById('live-video').srcObject.getVideoTracks()[0].stop()"
        )
        await page.wait_for_function(
            TRACKING_ON_ANOTHER_TRACK_JS,
            arg=first,
            timeout=30_000,
        )
        notice = await page.inner_text("#live-notice")
        assert notice.endswith("the camera stopped and was opened again."), notice
        since = int(await page.inner_text("#live-results"))
        await page.wait_for_function(
            "(n) => Number(document.getElementById('live-results').textContent) > n", arg=since
        )
        assert browser.errors == []


# The page's WebSocket goes to a port where nothing listens: a server that cannot be reached.
UNREACHABLE_JS = """
const Real = window.WebSocket;
window.WebSocket = class extends Real {
  constructor(url, protocols) {
    super(url.replace(/\\/\\/[^/]+\\//, "//127.0.0.1:9/"), protocols);
  }
};
"""


async def test_a_server_that_cannot_be_reached_is_said_so_until_the_page_gives_up(
    client: Client, tmp_path: Path
) -> None:
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=10)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await page.add_init_script(UNREACHABLE_JS)
        # The backoff's minute passes at once on the page's clock.
        await page.clock.install()
        await open_index(browser, client)
        await page.click("#live-start")
        await page.wait_for_function(
            "() => document.getElementById('live-status').textContent.includes('Reconnecting')"
        )
        assert (await page.inner_text("#live-status")).startswith("Cannot reach the server."), (
            await page.inner_text("#live-status")
        )
        # Eight tries wait at most 0.6 + 1.2 + ... + 18 s: under two minutes of the page's
        # clock. Each try fails on the real network, not on that clock, so the clock moves on
        # only while the page counts down to its next try.
        for _ in range(40):
            await page.wait_for_function(
                """() => !document.getElementById("live-status").textContent
                           .startsWith("Reconnecting (attempt")"""
            )
            if await page.is_enabled("#live-start"):
                break
            await page.clock.run_for(5000)
        text = await page.inner_text("#live-status")
        assert text.startswith("Cannot reach the server. Gave up after 8 attempts"), text
        assert text.endswith("press Start to try again."), text
        assert [e for e in browser.errors if "WebSocket" not in e] == []


async def test_reconnect_waits_grow_to_at_most_fifteen_seconds_and_keep_the_servers_floor(
    client: Client,
) -> None:
    """The page's waits between reconnects double from half a second, each 20% either way,
    up to 15 s: a page left to reconnect after a blip must not wait minutes. A close that
    names its own wait (a full server's) is never tried sooner."""
    async with open_page() as browser:
        await open_index(browser, client)
        low, high, floor = await browser.page.evaluate(
            """async () => {
                 const { backoffMs } = await import("/static/protocol.js");
                 const random = Math.random;
                 const each = (r, min) => {
                   Math.random = () => r;
                   try {
                     return [0, 1, 2, 3, 4, 5, 7, 12, 40].map((a) => backoffMs(a, min));
                   } finally {
                     Math.random = random;
                   }
                 };
                 return [each(0, 0), each(0.999999, 0), each(0, 5000)];
               }"""
        )
    assert low == [400, 800, 1600, 3200, 6400, 12000, 12000, 12000, 12000]
    assert high == [600, 1200, 2400, 4800, 9600, 18000, 18000, 18000, 18000]
    assert floor == [5000, 5000, 5000, 5000, 6400, 12000, 12000, 12000, 12000]


async def test_a_session_that_worked_again_has_its_eight_reconnects_afresh(
    client: Client,
) -> None:
    """Eight tries to reconnect are for one trouble: once a result came back, the next
    loss counts from the first try again. A session that lost its connection now and
    then over an evening gave up at its ninth blip."""
    async with open_page() as browser:
        await open_index(browser, client)
        said = await browser.page.evaluate(
            """async () => {
                 const { LiveSession } = await import("/static/session.js");
                 // No network: each connection the session opens is dropped by hand.
                 class Unreached {
                   static OPEN = 1;
                   constructor() { this.readyState = 0; }
                   send() {}
                   close() {}
                 }
                 const real = window.WebSocket;
                 window.WebSocket = Unreached;
                 const statuses = [];
                 let ended = null;
                 const session = new LiveSession({
                   url: "ws://127.0.0.1:9/ws", track: "pose", fps: 15, grab: async () => null,
                   handlers: {
                     status: (text) => statuses.push(text),
                     ended: (text) => (ended = text),
                   },
                 });
                 const blips = (n) => {
                   for (let i = 0; i < n && ended === null; i++) {
                     session.closed(1006, "", true);
                     session.clearTimers();
                     session.connect();
                   }
                 };
                 try {
                   session.connect();
                   blips(6);
                   session.receive(JSON.stringify({ type: "result", seq: 1, capture_ms: 0 }));
                   blips(6);
                 } finally {
                   session.clearTimers();
                   window.WebSocket = real;
                 }
                 return { ended, last: statuses.at(-1) };
               }"""
        )
    assert said == {"ended": None, "last": "Reconnecting (attempt 7)…"}


async def test_an_answer_frees_its_frames_place_for_the_next_turn(client: Client) -> None:
    """Two frames may await their answers: the answer to the first frees its place at
    once, so the next turn gets a fresh frame. Kept until a later answer, it held the
    place, and the turn waited a whole answer more: half the rate."""
    async with open_page() as browser:
        await open_index(browser, client)
        sent = await browser.page.evaluate(
            """async () => {
                 const { LiveSession } = await import("/static/session.js");
                 class Socket {
                   static OPEN = 1;
                   constructor() { this.readyState = 1; }
                   send() {}
                   close() {}
                 }
                 const real = window.WebSocket;
                 window.WebSocket = Socket;
                 const sent = [];
                 let wake = null;
                 const next = () => new Promise((resolve) => {
                   wake = resolve;
                   setTimeout(resolve, 1000);
                 });
                 // 0.5 fps: no frame goes without a turn while the test runs.
                 const session = new LiveSession({
                   url: "ws://127.0.0.1:9/ws", track: "pose", fps: 0.5,
                   grab: async () => ({ blob: new Blob([new Uint8Array(8)]), captureMs: 0 }),
                   handlers: { sent: (seq) => { sent.push(seq); wake?.(); } },
                 });
                 const say = (message) => session.receive(JSON.stringify(message));
                 try {
                   session.connect();
                   let frame = next();
                   say({ type: "ready", fps: 0.5 });
                   await frame;
                   frame = next();
                   say({ type: "turn" });
                   await frame;
                   frame = next();
                   say({ type: "result", seq: 1, capture_ms: 0 });
                   say({ type: "turn" });
                   await frame;
                 } finally {
                   session.stop();
                   window.WebSocket = real;
                 }
                 return sent;
               }"""
        )
    assert sent == [1, 2, 3]


async def test_a_watcher_back_to_watching_counts_its_next_tries_afresh(client: Client) -> None:
    """A coach's card gives up after five tries in a row: a watcher that watched again in
    between starts its count over, or a card that rode out five blips over a workout gave
    up at the sixth's first try."""
    async with open_page() as browser:
        await open_index(browser, client)
        attempts = await browser.page.evaluate(
            """async () => {
                 const { WatchSocket } = await import("/static/watch.js");
                 const sockets = [];
                 class Socket {
                   static OPEN = 1;
                   constructor() {
                     this.readyState = 1;
                     sockets.push(this);
                   }
                   send() {}
                   close() {}
                 }
                 const real = window.WebSocket;
                 window.WebSocket = Socket;
                 const attempts = [];
                 const watcher = new WatchSocket({
                   url: "ws://127.0.0.1:9/ws", token: "t", bye: "bye",
                   handlers: { closed: ({ attempt }) => (attempts.push(attempt), 0) },
                 });
                 const tick = () => new Promise((resolve) => setTimeout(resolve, 20));
                 try {
                   watcher.start();
                   // Watching, lost; watching, lost; lost before watching; watching, lost.
                   for (const watches of [true, true, false, true]) {
                     const socket = sockets.at(-1);
                     if (watches) socket.onmessage({ data: JSON.stringify({ type: "watching" }) });
                     socket.onclose({ code: 1006, reason: "" });
                     await tick();
                   }
                 } finally {
                   watcher.stop();
                   window.WebSocket = real;
                 }
                 return attempts;
               }"""
        )
    assert attempts == [0, 0, 1, 0]


async def network_switch(page: Page) -> Callable[[bool], Awaitable[None]]:
    """Takes the page's network away (True) and gives it back (False), its connection left
    open, as a Wi-Fi that drops out does."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Network.enable")
    conditions = {"latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}

    async def offline(on: bool) -> None:
        await cdp.send("Network.emulateNetworkConditions", {**conditions, "offline": on})

    return offline


# Every binary message (a frame) the page sends on its WebSockets.
COUNT_FRAMES_JS = """
window.framesSent = 0;
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  if (typeof data !== "string") window.framesSent += 1;
  return send.call(this, data);
};
"""
# The pictures the live video has had from the camera, and the frames sent.
PICTURES_AND_FRAMES_JS = """() => [
  document.getElementById("live-video").getVideoPlaybackQuality().totalVideoFrames,
  window.framesSent,
]"""


async def test_a_slow_camera_has_each_picture_sent_once(client: Client, tmp_path: Path) -> None:
    """A camera slower than the server's rate (2 fps, as a webcam in a dim room): each of
    its pictures goes to the server once, not again at each turn until the next."""
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=10)
    header, pictures = y4m.read_bytes().split(b"\n", 1)
    y4m.write_bytes(header.replace(b" F30:1 ", b" F2:1 ") + b"\n" + pictures)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await page.add_init_script(COUNT_FRAMES_JS)
        await open_index(browser, client)
        await page.click("#live-start")
        await page.wait_for_function(
            "() => Number(document.getElementById('live-results').textContent) > 0"
        )
        shown, sent = await page.evaluate(PICTURES_AND_FRAMES_JS)
        await page.wait_for_function(
            f"(n) => ({PICTURES_AND_FRAMES_JS})()[0] >= n + 6", arg=shown, timeout=30_000
        )
        shown_now, sent_now = await page.evaluate(PICTURES_AND_FRAMES_JS)
        assert 0 < sent_now - sent <= shown_now - shown + 1, (shown, shown_now, sent, sent_now)
        await page.click("#live-stop")
        assert browser.errors == []


async def test_a_stalled_network_is_said_and_unsaid(client: Client, tmp_path: Path) -> None:
    """Said once no answer came for 5 s: a frozen picture under "Tracking" for longer reads
    as the tracker's fault."""
    async with tracking(client, tmp_path / "camera.y4m", frames=30) as browser:
        page = browser.page
        offline = await network_switch(page)
        await offline(True)
        await page.wait_for_function(
            "() => document.getElementById('live-notice').textContent.includes('No answer')"
        )
        assert await page.is_visible("#live-notice")
        said = await page.inner_text("#live-notice")
        assert re.match(r"No answer from the server for [5-7] s:", said), said
        await offline(False)
        await page.wait_for_selector("#live-notice", state="hidden")
        assert await page.get_attribute("#live-status", "data-kind") == "ok"
        await page.click("#live-stop")
        assert browser.errors == []


WATCH_NOTICE_JS = """
() => {
  const notice = document.getElementById("live-notice");
  window.noticeSeen = [];
  new MutationObserver(() => window.noticeSeen.push(
    [notice.textContent, notice.getAttribute("aria-live")],
  )).observe(notice, { childList: true, characterData: true, subtree: true });
}
"""


# A camera that opens and gives no picture (a virtual camera nothing feeds): the browser's
# permission and its cameras' names are had, and the stream handed out never has a frame.
NO_PICTURE_JS = """
const ask = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = async (constraints) => {
  for (const track of (await ask(constraints)).getTracks()) track.stop();
  const canvas = document.createElement("canvas");
  window.blank = canvas.captureStream(0);
  return window.blank;
};
"""


async def test_a_camera_that_gives_no_picture_says_so(client: Client) -> None:
    """The camera opens, and no picture ever comes: not "Asking for the camera…" for ever,
    but why, the camera closed again, and the other cameras listed to choose from."""
    args = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream=device-count=2"]
    async with open_page(args) as browser:
        page = browser.page
        await page.add_init_script(NO_PICTURE_JS)
        await open_index(browser, client)
        await page.click("#live-start")
        await page.wait_for_selector("#live-status[data-kind=error]", timeout=30_000)
        text = await page.inner_text("#live-status")
        assert text == (
            "Cannot start the camera: the camera opened but gave no picture in 10 s (another"
            " program may be using it, or nothing feeds this virtual camera). Close that"
            " program or choose another camera, then press Start."
        )
        assert await page.evaluate("() => window.blank.getVideoTracks()[0].readyState") == "ended"
        assert await page.is_enabled("#live-start")
        await page.wait_for_function(
            "() => document.querySelectorAll('#live-camera optgroup option').length === 2"
        )
        assert browser.errors == []


async def test_a_countdown_is_announced_once_and_its_figures_tick_quietly(
    client: Client, tmp_path: Path
) -> None:
    """ "No answer from the server for N s" is an alert: rewritten each second, a screen
    reader read out every second of it."""
    async with tracking(client, tmp_path / "camera.y4m", frames=30) as browser:
        page = browser.page
        await page.evaluate(WATCH_NOTICE_JS)
        offline = await network_switch(page)
        await offline(True)
        await page.wait_for_function(
            "() => new Set(window.noticeSeen.filter(([t]) => t.includes('No answer'))"
            ".map(([t]) => t)).size >= 3"
        )
        await offline(False)
        await page.wait_for_selector("#live-notice", state="hidden")
        seen = [pair for pair in await page.evaluate("window.noticeSeen") if "No answer" in pair[0]]
        assert seen[0][1] is None, seen  # the alert's own assertive announcement
        assert {live for _, live in seen[1:]} == {"off"}, seen
        assert await page.get_attribute("#live-notice", "aria-live") is None
        await page.click("#live-stop")
        assert browser.errors == []


async def test_a_stalled_network_leaves_no_latency_or_skeleton_of_the_last_answer(
    client: Client, tmp_path: Path
) -> None:
    """No answer for seconds on a connection still open: the readout kept the last answer's
    latency ("180 ms") and the skeleton stayed frozen over the moving video, beside words
    saying nothing had come back."""
    async with tracking(client, tmp_path / "camera.y4m", frames=30) as browser:
        page = browser.page
        colors = await browser.colors()
        await browser.wait_for_colors("#live-overlay", {colors["pose"]: (100, 10**9)})
        offline = await network_switch(page)
        await offline(True)
        await page.wait_for_function(
            "() => document.getElementById('live-notice').textContent.includes('No answer')"
        )
        # The readout refreshes twice a second.
        await page.wait_for_function(
            "() => document.getElementById('live-latency').textContent === '\u2013'",
            timeout=5000,
        )
        assert (await browser.count_colors("#live-overlay", {"pose": colors["pose"]}))["pose"] == 0
        await offline(False)
        await page.wait_for_selector("#live-notice", state="hidden")
        await browser.wait_for_colors("#live-overlay", {colors["pose"]: (100, 10**9)})
        assert (await page.inner_text("#live-latency")).endswith(" ms")
        await page.click("#live-stop")
        assert browser.errors == []


async def test_a_lost_connection_leaves_no_figures_or_skeleton_of_the_last_one(
    client: Client, tmp_path: Path
) -> None:
    async with tracking(client, tmp_path / "camera.y4m", frames=30) as browser:
        page = browser.page
        colors = await browser.colors()
        await browser.wait_for_colors("#live-overlay", {colors["pose"]: (100, 10**9)})
        network = NetworkDown(page)
        await network.cut()
        session = await page.inner_text("#live-session")
        (camera,) = [s for s in client.app[SESSIONS] if s.name == session]
        assert camera.transport is not None
        camera.transport.abort()
        await network.refused.wait()
        await page.wait_for_function(
            "() => document.getElementById('live-status').textContent.includes('Reconnecting in')"
        )
        # The readout refreshes twice a second.
        await page.wait_for_function(
            "() => document.getElementById('live-latency').textContent === '\u2013'"
        )
        assert await page.inner_text("#live-fps-granted") == PLACEHOLDER
        assert (await browser.count_colors("#live-overlay", {"pose": colors["pose"]}))["pose"] == 0
        network.back()
        await page.wait_for_function(
            "(old) => document.getElementById('live-session').textContent !== old",
            arg=session,
        )
        await browser.wait_for_colors("#live-overlay", {colors["pose"]: (100, 10**9)})
        assert (await page.inner_text("#live-latency")).endswith(" ms")
        await page.click("#live-stop")
        assert [e for e in browser.errors if "WebSocket" not in e] == []


@contextlib.asynccontextmanager
async def started_at_640(client: Client, tmp_path: Path) -> AsyncIterator[BrowserPage]:
    """The live page started at 640 px wide, the ASL video as its camera: frames a server
    with smaller limits refuses."""
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=30)
    async with open_page(fake_camera_args(y4m)) as browser:
        await open_index(browser, client)
        await browser.page.select_option("#live-width", "640")
        await browser.page.click("#live-start")
        yield browser


async def test_frames_over_the_servers_size_are_said_not_blamed_on_the_tracker(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """A server that takes smaller frames than the width chosen: the page sends none, and
    said, every second, that the server was still starting the tracker."""
    client = await make_client(Config(workers=1, no_cache=True, max_frame_bytes=20_000))
    async with started_at_640(client, tmp_path) as browser:
        page = browser.page
        await page.wait_for_function(
            "() => document.getElementById('live-notice').textContent"
            ".startsWith('No frame has gone to the server for')"
        )
        notice = await page.inner_text("#live-notice")
        assert "over the server's 20000-byte limit" in notice, notice
        assert int(await page.inner_text("#live-results")) == 0
        # Smaller frames go, and the words go with the first answer.
        await page.select_option("#live-width", "320")
        await page.wait_for_selector("#live-notice", state="hidden")
        assert int(await page.inner_text("#live-results")) > 0
        await page.click("#live-stop")
        assert browser.errors == []


# Counts in window.noticeWrites each time the live notice is written from now on.
COUNT_NOTICE_WRITES_JS = """() => {
  window.noticeWrites = 0;
  new MutationObserver(() => { window.noticeWrites += 1; }).observe(
    document.getElementById("live-notice"),
    { childList: true, characterData: true, subtree: true });
}"""


async def test_a_frame_error_repeated_on_every_frame_is_alerted_once(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """Every frame over the server's pixel limit: the notice, an alert a screen reader
    speaks at once, was written again for each of them, fifteen times a second."""
    client = await make_client(Config(workers=1, no_cache=True, max_frame_pixels=100_000))
    async with started_at_640(client, tmp_path) as browser:
        page = browser.page
        await page.wait_for_selector("#live-notice", state="visible")
        notice = await page.inner_text("#live-notice")
        assert notice.startswith("A frame had more pixels than the server allows"), notice
        await page.evaluate(COUNT_NOTICE_WRITES_JS)
        sent = int(await page.get_attribute("#live-stage", "data-sent") or 0)
        # Ten more refused frames, each answered with the same error.
        await page.wait_for_function(
            "(sent) => Number(document.getElementById('live-errors').textContent) >= sent + 10",
            arg=sent,
        )
        assert await page.evaluate("window.noticeWrites") == 0
        assert (await page.inner_text("#live-notice")).startswith(
            "A frame had more pixels than the server allows"
        )
        await page.click("#live-stop")
        assert browser.errors == []


async def test_a_frame_too_big_to_send_is_alerted_once_though_each_is_its_own_size(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """Every frame over --max-frame-bytes, which the page does not send: its words name each
    frame's size, and the notice, an alert, was written again with every frame."""
    client = await make_client(Config(workers=1, no_cache=True, max_frame_bytes=2000))
    async with started_at_640(client, tmp_path) as browser:
        page = browser.page
        await page.wait_for_selector("#live-notice", state="visible")
        notice = await page.inner_text("#live-notice")
        assert notice.startswith("A frame was too big to send: a "), notice
        await page.evaluate(COUNT_NOTICE_WRITES_JS)
        # Five seconds of frames not sent (fifteen a second) end in the stall's words.
        await page.wait_for_function(
            "() => document.getElementById('live-notice').textContent"
            ".startsWith('No frame has gone to the server')"
        )
        # The stall's words are one write; each frame's words were one more (4 or 5 here).
        assert await page.evaluate("window.noticeWrites") <= 2
        await page.click("#live-stop")
        assert browser.errors == []


async def test_a_frame_error_of_the_same_code_with_new_words_is_said_anew(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """Frames over the pixel limit at 640 px, then at 480 px, still over it: the notice kept
    the first error's words, the 640 px size and the size to scale to, while the errors
    that came were about 480 px frames (same code, other words)."""
    client = await make_client(Config(workers=1, no_cache=True, max_frame_pixels=100_000))
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=30)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await open_index(browser, client)
        await page.select_option("#live-width", "640")
        await page.click("#live-start")
        await page.wait_for_selector("#live-notice", state="visible")
        assert "declares 640x" in await page.inner_text("#live-notice")
        await page.evaluate(
            """() => {
                 window.noticeTexts = [];
                 new MutationObserver(() => window.noticeTexts.push(
                   document.getElementById("live-notice").textContent)).observe(
                   document.getElementById("live-notice"),
                   { childList: true, characterData: true, subtree: true });
               }"""
        )
        await page.select_option("#live-width", "480")
        await page.wait_for_function(
            "() => document.getElementById('live-notice').textContent.includes('declares 480x')"
        )
        # The 480 px frames' own words at once, not after the stall notice (5 s) had
        # rewritten the notice in between.
        first = (await page.evaluate("window.noticeTexts"))[0]
        assert first.startswith("A frame had more pixels than the server allows"), first
        assert "declares 480x" in first, first
        await page.click("#live-stop")
        assert browser.errors == []


async def test_a_tracker_still_being_built_is_said_so_not_blamed_on_the_network(
    client: Client, tmp_path: Path
) -> None:
    """Many sessions started together wait for graphs built one at a time per worker
    (about 2 s each on two busy cores); here the worker is stopped instead. The server's
    stats still come, so the page says the tracker is starting, not that the network is
    slow, and clears it with the first result."""
    worker = client.app[SCHEDULER].workers[0]
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=30)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await open_index(browser, client)
        os.kill(worker.pid, signal.SIGSTOP)
        try:
            await page.click("#live-start")
            await page.wait_for_function(
                "() => document.getElementById('live-notice').textContent"
                ".includes('still starting your tracker')"
            )
            assert await page.get_attribute("#live-notice", "data-kind") == "busy"
        finally:
            os.kill(worker.pid, signal.SIGCONT)
        await page.wait_for_selector("#live-notice", state="hidden")
        assert int(await page.inner_text("#live-results")) > 0
        await page.click("#live-stop")
        assert browser.errors == []


async def test_record_waits_for_a_session_that_answers(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """Record was enabled from Start on: pressed while the page waited to reconnect (the
    server full), it said "Recording…" over a session that could send no result."""
    client = await make_client(Config(workers=1, max_sessions=1))
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=30)
    holder = await client.ws_connect("/ws")
    await holder.send_json({"type": "hello", "version": 1, "track": "pose", "fps": 1})
    assert (await holder.receive_json())["type"] == "ready"
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await open_index(browser, client)
        await page.click("#live-start")
        await page.wait_for_function(
            "() => document.getElementById('live-status').textContent.includes('Reconnecting in')"
        )
        # The readout, which offers Record, refreshes twice a second.
        await page.wait_for_selector("#live-record:disabled", timeout=2000)
        await holder.close()
        await page.wait_for_function(
            "() => Number(document.getElementById('live-results').textContent) > 0"
        )
        assert await page.is_enabled("#live-record")
        await page.click("#live-stop")
        assert browser.errors == []


async def test_live_refusal_is_shown_and_the_page_retries_when_a_slot_frees(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client = await make_client(Config(workers=1, max_sessions=1))
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=30)
    holder = await client.ws_connect("/ws")
    await holder.send_json({"type": "hello", "version": 1, "track": "pose", "fps": 1})
    ready = await holder.receive_json()
    assert ready["type"] == "ready"
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await open_index(browser, client)
        await page.click("#live-start")
        await page.wait_for_function(
            "() => document.getElementById('live-status').textContent.includes('full')"
        )
        text = await page.inner_text("#live-status")
        # In words, once, with the server's count: no close code, no "server full" twice.
        assert text.startswith("The server is full or busy (1 of 1 sessions in use)."), text
        assert "1013" not in text
        # 3 s from the close; a loaded machine may read it a second into the wait.
        assert re.search(r"Reconnecting in [23] s", text), text
        assert await page.get_attribute("#live-status", "data-kind") == "error"
        # The wait counts down instead of standing still.
        await page.wait_for_function(
            "() => /Reconnecting in [12] s/"
            ".test(document.getElementById('live-status').textContent)"
        )
        assert await page.is_enabled("#live-stop")

        await holder.close()
        await page.wait_for_function(
            "() => Number(document.getElementById('live-results').textContent) > 0"
        )
        assert await page.get_attribute("#live-status", "data-kind") == "ok"
        await page.click("#live-stop")
        await page.wait_for_function(
            "() => document.getElementById('live-status').textContent === 'Stopped.'"
        )
        # Chromium logs the refused handshake's close itself; nothing else may be logged.
        assert [e for e in browser.errors if "WebSocket" not in e] == []


async def test_a_page_left_and_brought_back_by_back_says_it_stopped(
    client: Client, tmp_path: Path
) -> None:
    async with tracking(client, tmp_path / "camera.y4m", frames=30) as browser:
        page = browser.page
        # What the browser fires when it keeps the page for Back and shows it again
        # (Playwright turns that cache off, so the events are played).
        await page.evaluate(
            """() => {
                 window.dispatchEvent(new PageTransitionEvent("pagehide", { persisted: true }));
                 window.dispatchEvent(new PageTransitionEvent("pageshow", { persisted: true }));
               }"""
        )
        assert await page.is_enabled("#live-start")
        assert await page.evaluate("document.getElementById('live-video').srcObject") is None
        assert await page.inner_text("#live-status") == (
            "Stopped when you left this page. Press Start to go on."
        )
        assert browser.errors == []


async def test_every_error_code_of_an_upload_is_said_in_its_own_words(client: Client) -> None:
    """408 upload_timeout, 500 model_error and 500 internal read "The server refused the
    file", which says neither what happened nor what to do."""
    codes = sorted({cls.code for cls in all_subclasses(HolotrackError)} | {"unavailable"})
    async with open_page() as browser:
        await open_index(browser, client)
        said: dict[str, str] = await browser.page.evaluate(
            """async (codes) => {
                 const { describeHttpError } = await import("/static/errors.js");
                 return Object.fromEntries(codes.map(
                   (code) => [code, describeHttpError(500, { error: code, detail: "d" })]));
               }""",
            codes,
        )
    generic = [code for code, text in said.items() if text.startswith("The server refused")]
    assert generic == []
    assert said["upload_timeout"].startswith("The file took too long to reach the server")


async def test_a_quotas_wait_is_said_and_a_quota_of_none_says_no_wait(client: Client) -> None:
    """A 429 quota says when the key may ask again (its retry_after); a limit of 0 (403,
    retry_after null) has no wait to say."""
    async with open_page() as browser:
        await open_index(browser, client)
        later, never = await browser.page.evaluate(
            """async () => {
                 const { describeHttpError } = await import("/static/errors.js");
                 const quota = { error: "quota", detail: "key a is over it" };
                 return [
                   describeHttpError(429, { ...quota, retry_after: 40 }),
                   describeHttpError(403, { ...quota, retry_after: null }),
                 ];
               }"""
        )
    assert later == (
        "This access key is over its quota: key a is over it (HTTP 429, quota). Try again in 40 s."
    )
    assert never == "This access key is over its quota: key a is over it (HTTP 403, quota)."


async def test_a_duration_reads_in_minutes_from_the_minute_on(client: Client) -> None:
    """A grace or a pause of exactly a minute reads "1 min", as those of 61 s and more read
    in minutes: "60 s" next to "1 min 1 s" read as two units for one length."""
    async with open_page() as browser:
        await open_index(browser, client)
        said = await browser.page.evaluate(
            """async () => {
                 const { duration } = await import("/static/format.js");
                 return [59, 60, 61, 120, 3542].map(duration);
               }"""
        )
    assert said == ["59 s", "1 min", "1 min 1 s", "2 min", "59 min 2 s"]


async def test_an_error_page_without_json_is_said_with_its_status_words(client: Client) -> None:
    """A proxy's own error page (nginx's 502, HTML) has no error code to say: its status
    and the status's words are, or none over HTTP/2, which has no words."""
    async with open_page() as browser:
        await open_index(browser, client)
        said = await browser.page.evaluate(
            """async () => {
                 const { describeHttpError } = await import("/static/errors.js");
                 return [
                   describeHttpError(502, null, "Bad Gateway"),
                   describeHttpError(502, { detail: "no code" }, ""),
                 ];
               }"""
        )
    assert said == [
        "The server answered HTTP 502 Bad Gateway without an explanation.",
        "The server answered HTTP 502 without an explanation.",
    ]


async def test_a_figure_written_again_unchanged_is_not_rewritten(client: Client) -> None:
    """A screen reader reads a live region out at every write, the same words too: the
    count, rewritten with each result, was said 15 times a second."""
    async with open_page() as browser:
        await open_index(browser, client)
        wrote = await browser.page.evaluate(
            """async () => {
                 const { putText } = await import("/static/format.js");
                 const output = document.createElement("output");
                 output.setAttribute("aria-live", "polite");
                 document.body.append(output);
                 const writes = new MutationObserver(() => {});
                 writes.observe(output, { childList: true, characterData: true, subtree: true });
                 return ["3", "3", "4", "4", ""].map((text) => {
                   putText(output, text);
                   return writes.takeRecords().length > 0;
                 });
               }"""
        )
    assert wrote == [True, False, True, False, True]


def all_subclasses(cls: type[HolotrackError]) -> set[type[HolotrackError]]:
    return {cls} | {sub for child in cls.__subclasses__() for sub in all_subclasses(child)}


async def test_a_page_over_plain_http_says_which_address_has_the_camera(client: Client) -> None:
    """Over plain http from anywhere but localhost a browser gives no camera at all: the
    page says so, and names the addresses that would have it."""
    rules = "--host-resolver-rules=MAP holotrack.test 127.0.0.1"
    async with open_page(["--use-fake-ui-for-media-stream", rules]) as browser:
        page = browser.page
        url = client.make_url("/")
        await page.goto(str(url.with_host("holotrack.test")))
        await page.wait_for_selector("body[data-live-ready]", state="attached")
        assert await page.evaluate("() => window.isSecureContext") is False
        await page.click("#live-start")
        await page.wait_for_selector("#live-status[data-kind=error]")
        text = await page.inner_text("#live-status")
        assert text.startswith("Cannot start the camera: "), text
        assert "plain http from holotrack.test" in text, text
        assert f"http://localhost:{url.port}/ on the computer the server runs on" in text, text
        assert "--self-signed" in text, text
        assert await page.is_enabled("#live-start")
        assert browser.errors == []


async def test_a_session_renewed_at_the_servers_length_limit_is_no_error(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """At --max-session-seconds the server closes 4004, "reconnect at once"
    (docs/protocol.md): the page waited the backoff under a red "The session reached the
    server's time limit. Reconnecting in 1 s…", as for a fault."""
    client = await make_client(Config(workers=1, no_cache=True, max_session_seconds=3))
    async with tracking(client, tmp_path / "camera.y4m", frames=30) as browser:
        page = browser.page
        await page.evaluate(
            """() => {
                 const status = document.getElementById("live-status");
                 window.statuses = [];
                 new MutationObserver(() => window.statuses.push(
                   [status.textContent, status.dataset.kind])).observe(status,
                   { childList: true, characterData: true, subtree: true, attributes: true });
               }"""
        )
        await page.wait_for_function(
            "() => window.statuses.some(([text]) => text.includes('time limit'))", timeout=30_000
        )
        results = int(await page.inner_text("#live-results"))
        await page.wait_for_function(
            "(before) => Number(document.getElementById('live-results').textContent) > before",
            arg=results,
        )
        renewing = [s for s in await page.evaluate("window.statuses") if "time limit" in s[0]]
        assert renewing, renewing
        assert all(kind != "error" and "Reconnecting in" not in text for text, kind in renewing), (
            renewing
        )
        await page.click("#live-stop")
        assert [e for e in browser.errors if "WebSocket" not in e] == []
