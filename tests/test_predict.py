"""POST /predict end to end, with the real model on the shared photos of people."""

from __future__ import annotations

import asyncio
import io
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
from aiohttp import web
from PIL import Image

from tests.conftest import Client, MakeClient, files_form
from tests.live import until
from tests.media import ASL_VIDEO, MEDIA, PERSON_JPEG, STILLS, png_declaring, reencode
from tests.videos import write_clip
from webapp.config import Config
from webapp.still import uploads
from webapp.still.cache import AnswerCache

SIZES = {"pose": 33, "face": 468, "left_hand": 21, "right_hand": 21}


def form(data: bytes, content_type: str = "image/jpeg", name: str = "file") -> aiohttp.FormData:
    body = aiohttp.FormData()
    body.add_field(name, io.BytesIO(data), filename="upload.jpg", content_type=content_type)
    return body


async def post_file(client: Client, data: bytes, content_type: str = "image/jpeg") -> Any:
    response = await client.post("/predict", data=form(data, content_type))
    return response.status, await response.json()


def assert_full_body(body: dict[str, Any]) -> None:
    for part, count in SIZES.items():
        points = body["landmarks"][part]
        assert points is not None, f"{part} missing"
        assert len(points) == count
        width = 4 if part == "pose" else 3
        for point in points:
            assert len(point) == width
            assert all(math.isfinite(v) for v in point)
            # Pose points out of frame (legs below the edge) are extrapolated past [0, 1];
            # every face and hand point is in frame.
            low, high = (-3.0, 4.0) if part == "pose" else (-0.05, 1.05)
            assert low <= point[0] <= high, (part, point)
            assert low <= point[1] <= high, (part, point)
            if part == "pose":
                assert 0.0 <= point[3] <= 1.0


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    return await make_client(Config(workers=1, no_cache=True))


@pytest.mark.parametrize("path", STILLS, ids=lambda p: p.name)
async def test_every_still_gives_the_whole_body(client: Client, path: Path) -> None:
    status, body = await post_file(client, path.read_bytes())
    assert status == 200, body
    assert body["schema"] == 1
    with Image.open(path) as img:
        assert body["image"] == {"width": img.width, "height": img.height}
    assert_full_body(body)
    assert body["cached"] is False
    assert body["warnings"] == []
    assert body["timing_ms"]["inference"] > 0
    assert body["timing_ms"]["total"] >= body["timing_ms"]["inference"]


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "BMP"])
async def test_other_formats_work(client: Client, fmt: str) -> None:
    status, body = await post_file(client, reencode(PERSON_JPEG, fmt), "application/octet-stream")
    assert status == 200, body
    assert_full_body(body)


async def test_raw_body_with_image_type(client: Client) -> None:
    response = await client.post(
        "/predict", data=PERSON_JPEG.read_bytes(), headers={"Content-Type": "image/jpeg"}
    )
    assert response.status == 200
    assert_full_body(await response.json())


async def test_no_person_is_a_200_with_a_warning(client: Client) -> None:
    ramp = np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1))
    ok, encoded = cv2.imencode(".png", ramp)
    assert ok
    status, body = await post_file(client, encoded.tobytes(), "image/png")
    assert status == 200
    assert all(value is None for value in body["landmarks"].values())
    assert "no_person" in [w["code"] for w in body["warnings"]]
    # A person far from the camera is the usual reason: the words say what to do.
    assert "crop closer" in body["warnings"][0]["message"]


async def test_a_person_lost_in_a_wide_picture_is_not_said_to_be_short(client: Client) -> None:
    """The seated woman at her photo's full height, in a 3840x640 strip, is not found: the
    model scales the longest side. The hint said a person under a quarter of the height was
    too small, which she is not, so it pointed at nothing she could see."""
    photo = cv2.imread(str(MEDIA / "woman_sitting_mpsamples_pose_test_image.jpg"))
    height, width = photo.shape[:2]
    strip = np.full((height, width * 4, 3), 128, np.uint8)
    strip[:, width : 2 * width] = photo
    ok, encoded = cv2.imencode(".jpg", strip)
    assert ok
    status, body = await post_file(client, encoded.tobytes())
    assert status == 200
    assert [w["code"] for w in body["warnings"]] == ["no_person"]
    assert "of its longest side" in body["warnings"][0]["message"]


async def test_an_animated_image_says_its_first_frame_was_tracked(
    client: Client, tmp_path: Path
) -> None:
    """An animated GIF or WebP whose first frame was blank answered no_person with nothing
    to say the person was in a later frame."""
    person = Image.open(PERSON_JPEG).convert("RGB")
    blank = Image.new("RGB", person.size, (128, 128, 128))
    for suffix in ("gif", "webp"):
        out = tmp_path / f"anim.{suffix}"
        blank.save(out, save_all=True, append_images=[person], duration=200, loop=0)
        status, body = await post_file(client, out.read_bytes(), f"image/{suffix}")
        assert status == 200, body
        assert [w["code"] for w in body["warnings"]][:1] == ["no_person"], suffix
        assert "animated" in [w["code"] for w in body["warnings"]], suffix
    still = tmp_path / "still.gif"
    person.save(still)
    _, body = await post_file(client, still.read_bytes(), "image/gif")
    assert "animated" not in [w["code"] for w in body["warnings"]]
    # A phone's JPEG with a second picture (MPO, as Ultra HDR's gain map) is one photo.
    mpo = tmp_path / "photo.mpo"
    person.save(mpo, format="MPO", save_all=True, append_images=[person.resize((64, 48))])
    status, body = await post_file(client, mpo.read_bytes(), "image/jpeg")
    assert status == 200, body
    assert "animated" not in [w["code"] for w in body["warnings"]]


async def test_blurred_photo_is_processed_with_a_warning(client: Client) -> None:
    with Image.open(PERSON_JPEG) as img:
        rgb = np.asarray(img.convert("RGB"))
    blurred = cv2.GaussianBlur(rgb, (0, 0), 5)
    out = io.BytesIO()
    Image.fromarray(blurred).save(out, format="JPEG")
    status, body = await post_file(client, out.getvalue())
    assert status == 200
    assert body["landmarks"]["pose"] is not None
    assert "blurred" in [w["code"] for w in body["warnings"]]


async def test_a_blank_image_is_said_blank_not_blurred(client: Client) -> None:
    """A picture of one colour was "strongly blurred; landmarks may be inaccurate", of no
    landmarks, and told to crop closer to a person too small to find."""
    said = []
    for color, fmt in (((128, 128, 128), ".png"), ((200, 30, 30), ".jpg")):
        ok, encoded = cv2.imencode(fmt, np.full((480, 640, 3), color, np.uint8))
        assert ok
        status, body = await post_file(client, encoded.tobytes(), f"image/{fmt[1:]}")
        assert status == 200, body
        said.append(body["warnings"])
    nobody = "the image is one flat colour: there is nobody in it to find"
    assert said == [[{"code": "no_person", "message": nobody}]] * 2
    # Smooth but not flat: blurred, of nobody.
    ramp = np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (480, 1))
    ok, encoded = cv2.imencode(".png", ramp)
    assert ok
    status, body = await post_file(client, encoded.tobytes(), "image/png")
    blurred = [w["message"] for w in body["warnings"] if w["code"] == "blurred"]
    assert (status, len(blurred)) == (200, 1), body
    assert blurred[0].endswith("it may be why nobody was found"), blurred


def truncated_jpeg() -> bytes:
    data = PERSON_JPEG.read_bytes()
    return data[: len(data) // 3]


# The ftyp box an iPhone's HEIC photo starts with.
HEIC_HEADER = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"
BAD_INPUTS = [
    ("empty-file", b"", "image/jpeg", 400, "empty"),
    ("text-as-jpeg", b"this is not an image at all", "image/jpeg", 400, "not_an_image"),
    ("random-bytes", bytes(range(256)) * 8, "application/octet-stream", 400, "not_an_image"),
    ("truncated-jpeg", None, "image/jpeg", 400, "not_an_image"),
    ("text-plain", b"hello", "text/plain", 415, "unsupported_type"),
    ("svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml", 415, "unsupported_type"),
    ("ico", None, "application/octet-stream", 415, "unsupported_type"),
    # An iPhone's photo (its header; the rest does not matter): a format, not a damaged file.
    (
        "heic",
        HEIC_HEADER + bytes(range(256)) * 8,
        "application/octet-stream",
        415,
        "unsupported_type",
    ),
    ("bomb-png", png_declaring(30000, 30000), "image/png", 413, "too_many_pixels"),
]


def _payload(name: str, data: bytes | None) -> bytes:
    if data is not None:
        return data
    if name == "truncated-jpeg":
        return truncated_jpeg()
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(out, format="ICO")
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "content_type", "status", "code"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
async def test_bad_input_gets_its_status_then_the_server_still_works(
    client: Client, name: str, data: bytes | None, content_type: str, status: int, code: str
) -> None:
    got, body = await post_file(client, _payload(name, data), content_type)
    assert got == status, body
    assert body["error"] == code
    assert body["detail"]
    ok, good = await post_file(client, PERSON_JPEG.read_bytes())
    assert ok == 200
    assert good["landmarks"]["pose"] is not None


@pytest.mark.parametrize("query", ["rig=1", "smoothing=off", "format=csv&rig=1"])
async def test_a_query_parameter_is_refused_not_ignored(client: Client, query: str) -> None:
    """/api/video takes ?rig=1 and ?smoothing=off; /predict answered without either, 200,
    as if it had heard them."""
    data = PERSON_JPEG.read_bytes()
    response = await client.post(f"/predict?{query}", data=form(data))
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "bad_request"
    first = sorted(name.split("=")[0] for name in query.split("&"))[0]
    assert body["detail"] == f"unknown query parameter {first!r}; POST /predict takes none"


async def test_missing_field_and_empty_body(client: Client) -> None:
    response = await client.post("/predict", data=form(b"abc", name="image"))
    assert response.status == 400
    assert (await response.json())["error"] == "empty"
    response = await client.post("/predict", data=b"", headers={"Content-Type": "image/png"})
    assert response.status == 400
    assert (await response.json())["error"] == "empty"


async def test_body_over_the_byte_limit_is_413(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1, max_upload_bytes=20_000))
    data = PERSON_JPEG.read_bytes()
    assert len(data) > 20_000
    for send in (
        client.post("/predict", data=form(data)),
        client.post("/predict", data=data, headers={"Content-Type": "image/jpeg"}),
    ):
        response = await send
        assert response.status == 413
        assert (await response.json())["error"] == "too_large"


@pytest.mark.parametrize(
    ("limit", "hint"),
    [(20_000, "20 KB"), (1_572_864, "1.5 MB"), (10 * 1024 * 1024, "10 MB"), (900, "900 bytes")],
)
async def test_the_pages_hint_names_the_limit_its_refusal_names(
    make_client: MakeClient, limit: int, hint: str
) -> None:
    """The hint rounded the limit to a tenth of a MB: 20 kB was "up to 0.0 MB", and 10 MB
    "10.0 MB" where the page's refusal (static/format.js formatBytes) says "10 MB"."""
    client = await make_client(Config(workers=1, max_upload_bytes=limit))
    page = await (await client.get("/")).text()
    assert f"JPEG, PNG, WebP, BMP, GIF or TIFF, up to {hint}</span>" in page


async def test_multipart_parts_besides_the_file_are_bounded_too(make_client: MakeClient) -> None:
    """Sent chunked (no Content-Length), a part named otherwise was read to its end, of any
    size (a reviewer's 3 GB), before the answer 'no multipart field named file'."""
    client = await make_client(Config(workers=1, max_upload_bytes=100_000))
    boundary = "holotrack-test-boundary"

    async def body() -> AsyncIterator[bytes]:
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="junk"\r\n\r\n'.encode()
        for _ in range(64):  # 4 MiB, where the limit is 100 kB
            yield b"x" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    response = await client.post("/predict", data=body(), headers=headers)
    assert response.status == 413
    detail = await response.json()
    assert detail["error"] == "too_large"
    assert "besides the field 'file'" in detail["detail"]


async def test_a_video_sent_for_a_photo_is_told_where_videos_go(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """A clip posted to /predict was 'not an image in any known format' (unlabelled) or
    told which image types to send (video/mp4): neither said /api/video. A phone's MOV
    (an iPhone's) is a video too."""
    client = await make_client(Config(workers=1))
    for name in ("clip.mp4", "clip.mkv", "clip.mov"):
        clip = write_clip(ASL_VIDEO, tmp_path / name, 3).read_bytes()
        for content_type in ("application/octet-stream", "video/mp4", "image/jpeg"):
            response = await client.post(
                "/predict", data=clip, headers={"Content-Type": content_type}
            )
            answer = await response.json()
            assert (response.status, answer["error"]) == (415, "unsupported_type"), answer
            assert "POST videos to /api/video" in answer["detail"], (name, content_type)


async def test_a_file_under_another_name_is_told_its_name(make_client: MakeClient) -> None:
    """curl -F image=@photo.jpg: the photo (over the 64 KiB the other fields may hold)
    was answered 413 too_large, and the person looked at its size."""
    client = await make_client(Config(workers=1))
    photo = PERSON_JPEG.read_bytes()
    assert len(photo) > 65536
    form = aiohttp.FormData()
    form.add_field("image", photo, filename="photo.jpg", content_type="image/jpeg")
    response = await client.post("/predict", data=form)
    assert response.status == 400
    answer = await response.json()
    assert answer["error"] == "empty"
    assert answer["detail"].startswith('the file came as the multipart field "image"; send it')
    # Small, and alone, it is named all the same; small, beside the file, it is let be.
    small = reencode(PERSON_JPEG, "JPEG", quality=10)
    assert len(small) < 65536
    alone = aiohttp.FormData()
    alone.add_field("image", small, filename="photo.jpg", content_type="image/jpeg")
    answer = await (await client.post("/predict", data=alone)).json()
    assert answer["detail"].startswith('the file came as the multipart field "image"')
    beside = aiohttp.FormData()
    beside.add_field("meta", b'{"camera": "phone"}', filename="meta.json")
    beside.add_field("file", photo, filename="photo.jpg", content_type="image/jpeg")
    response = await client.post("/predict", data=beside)
    assert response.status == 200, await response.text()


async def test_a_big_file_before_the_file_is_not_taken_for_it(make_client: MakeClient) -> None:
    """A form's second file (over the 64 KiB the other fields may hold) before the photo
    sent as 'file' was answered "the file came as the multipart field 'scan'; send it as
    'file'", which it had been."""
    client = await make_client(Config(workers=1))
    photo = PERSON_JPEG.read_bytes()
    form = aiohttp.FormData()
    form.add_field("scan", photo, filename="scan.jpg", content_type="image/jpeg")
    form.add_field("file", photo, filename="photo.jpg", content_type="image/jpeg")
    response = await client.post("/predict", data=form)
    answer = await response.json()
    assert (response.status, answer["error"]) == (413, "too_large"), answer
    assert answer["detail"] == (
        "the multipart body besides the field 'file' is over the 65536-byte limit"
    )


async def test_two_files_under_the_name_are_refused(make_client: MakeClient) -> None:
    """curl -F file=@a.jpg -F file=@b.jpg: b was never read, and a's landmarks came back as
    if they were the whole answer. A field after the file is let be, as one before it."""
    client = await make_client(Config(workers=1))
    photo = PERSON_JPEG.read_bytes()
    two = files_form(photo, "image/jpeg", "a.jpg", "b.jpg")
    response = await client.post("/predict", data=two)
    answer = await response.json()
    assert (response.status, answer["error"]) == (400, "bad_request"), answer
    assert answer["detail"] == (
        "the body has more than one part named 'file'; send one file per request"
    )
    after = aiohttp.FormData()
    after.add_field("file", photo, filename="a.jpg", content_type="image/jpeg")
    after.add_field("note", "from the phone")
    response = await client.post("/predict", data=after)
    assert response.status == 200, await response.text()
    assert (await client.get("/readyz")).status == 200


@pytest.mark.parametrize("end", [b"", b"\r\n"], ids=["file_bytes", "line_break"])
@pytest.mark.parametrize(
    ("disposition", "content"),
    [
        (b'name="file"; filename="a.jpg"', PERSON_JPEG.read_bytes()),
        # The photo under another name (curl -F image=@photo.jpg), which is read on to see
        # whether "file" follows, and a small field before it.
        (b'name="image"; filename="a.jpg"', PERSON_JPEG.read_bytes()),
        (b'name="note"', b"from the phone"),
    ],
    ids=["file", "file_under_another_name", "field_before_the_file"],
)
async def test_a_multipart_body_without_its_closing_boundary_is_said_so(
    client: Client, end: bytes, disposition: bytes, content: bytes
) -> None:
    """A part that runs to the body's end, its boundary never sent (a hand-built body, a
    sender cut off), was "the multipart body is malformed: Reading after EOF"."""
    part = (
        b"--XYZ\r\nContent-Disposition: form-data; " + disposition + b"\r\n"
        b"Content-Type: image/jpeg\r\n\r\n"
    )
    headers = {"Content-Type": "multipart/form-data; boundary=XYZ"}
    body = part + content + end
    response = await client.post("/predict", data=body, headers=headers)
    answer = await response.json()
    assert (response.status, answer["error"]) == (400, "bad_request"), answer
    assert answer["detail"] == (
        "the multipart body ends without its closing boundary: it was cut short, or its "
        "sender did not finish it"
    )


async def test_pixel_limit_is_413(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1, max_pixels=100_000))
    status, body = await post_file(client, PERSON_JPEG.read_bytes())
    assert status == 413
    assert body["error"] == "too_many_pixels"


async def test_second_upload_is_answered_from_the_cache(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1))
    data = PERSON_JPEG.read_bytes()
    _, first = await post_file(client, data)
    _, second = await post_file(client, data)
    assert first["cached"] is False
    assert second["cached"] is True
    assert second["landmarks"] == first["landmarks"]


def test_the_cache_keeps_its_most_recently_used_answers() -> None:
    """--cache-entries bounds it; an answer looked up is kept over one put before it."""
    cache = AnswerCache(2)
    first, second, third = {"n": 1}, {"n": 2}, {"n": 3}
    cache.put("first", first)
    cache.put("second", second)
    assert cache.get("first") is first
    cache.put("third", third)
    assert len(cache) == 2
    assert cache.get("second") is None
    assert (cache.get("first"), cache.get("third")) == (first, third)
    empty = AnswerCache(0)
    empty.put("first", first)
    assert (len(empty), empty.get("first")) == (0, None)


async def test_an_image_alike_but_for_its_last_bytes_is_not_answered_from_the_cache(
    make_client: MakeClient,
) -> None:
    """A BMP stores its rows bottom first: the same photo with its top rows blacked out
    differs only near the end of the file, and gets an answer of its own."""
    client = await make_client(Config(workers=1))
    photo = Image.open(PERSON_JPEG).convert("RGB")
    covered = photo.copy()
    covered.paste((0, 0, 0), (0, 0, photo.width, photo.height // 8))
    data = []
    for image in (photo, covered):
        out = io.BytesIO()
        image.save(out, format="BMP")
        data.append(out.getvalue())
    assert data[0][: len(data[0]) // 2] == data[1][: len(data[1]) // 2]
    _, first = await post_file(client, data[0], "image/bmp")
    _, second = await post_file(client, data[1], "image/bmp")
    assert first["cached"] is False
    assert second["cached"] is False


async def test_cache_can_be_turned_off(client: Client) -> None:
    data = PERSON_JPEG.read_bytes()
    _, first = await post_file(client, data)
    _, second = await post_file(client, data)
    assert first["cached"] is False
    assert second["cached"] is False


async def test_full_pool_and_line_answer_503_at_once_and_the_page_still_loads(
    make_client: MakeClient,
) -> None:
    client = await make_client(Config(workers=1, max_waiting=1, no_cache=True))
    data = max(STILLS, key=lambda p: p.stat().st_size).read_bytes()
    finished: list[tuple[int, float]] = []
    loop = asyncio.get_running_loop()

    async def one() -> None:
        response = await client.post("/predict", data=form(data))
        body = await response.json()
        if response.status == 503:
            assert response.headers["Retry-After"] == "1"
            assert body["error"] == "busy"
        finished.append((response.status, loop.time()))

    burst = [asyncio.create_task(one()) for _ in range(8)]
    refused = asyncio.Event()

    async def page_while_busy() -> int:
        while not any(status == 503 for status, _ in finished):
            await asyncio.wait(burst, return_when=asyncio.FIRST_COMPLETED)
        refused.set()
        response = await client.get("/")
        return response.status

    page_status = await page_while_busy()
    await asyncio.gather(*burst)
    statuses = sorted(status for status, _ in finished)
    assert page_status == 200
    assert set(statuses) == {200, 503}
    assert statuses.count(200) >= 2
    first_refusal = min(t for status, t in finished if status == 503)
    last_success = max(t for status, t in finished if status == 200)
    assert first_refusal < last_success


@pytest.mark.parametrize("path", ["/predict", "/api/video", "/api/export?format=csv"])
async def test_an_upload_from_another_sites_page_is_refused(client: Client, path: str) -> None:
    """A multipart POST is one any site's page may send from its visitor's browser without
    a CORS preflight: /ws and pairing claims refused such pages, but a photo, a video or a
    recording from one was run, though the page could never read the answer."""
    response = await client.post(
        path, data=form(PERSON_JPEG.read_bytes()), headers={"Origin": "http://elsewhere.example"}
    )
    body = await response.json()
    assert (response.status, body["error"]) == (403, "cross_site"), body
    assert "elsewhere.example" in body["detail"]
    # The refusal is shared with /ws; it spoke of "cross-site sessions" to an upload.
    assert "session" not in body["detail"]


async def test_an_upload_from_this_servers_page_is_taken(client: Client) -> None:
    origin = f"http://{client.host}:{client.port}"
    response = await client.post(
        "/predict", data=form(PERSON_JPEG.read_bytes()), headers={"Origin": origin}
    )
    assert response.status == 200, await response.text()


async def test_deadline_gives_504(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1, request_timeout=0.001, no_cache=True))
    status, body = await post_file(client, PERSON_JPEG.read_bytes())
    assert status == 504
    assert body["error"] == "timeout"


async def test_one_address_has_at_most_its_share_of_images_arriving(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each body is held in memory whole while it arrives: one address with 30 sockets
    trickling 9 MB each held 280 MB, and could open as many more as it liked."""
    client = await make_client(
        Config(workers=1, max_sessions_per_client=2, trust_proxy=True, no_cache=True)
    )
    data = PERSON_JPEG.read_bytes()
    reading = 0
    read_image = uploads.read_image

    async def counted(request: web.Request, limit: int) -> bytes:
        nonlocal reading
        reading += 1
        return await read_image(request, limit)

    monkeypatch.setattr(uploads, "read_image", counted)
    go_on = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield data[:1000]
        await go_on.wait()
        yield data[1000:]

    def post(body: Any, address: str) -> Any:
        headers = {"Content-Type": "image/jpeg", "X-Forwarded-For": address}
        return client.post("/predict", data=body, headers=headers)

    slow = [asyncio.create_task(post(slow_body(), "192.0.2.1")) for _ in range(2)]
    await until(lambda: reading == 2, "both slow uploads reading")
    third = await post(data, "192.0.2.1")
    assert third.status == 503
    assert third.headers["Retry-After"] == "1"
    answer = await third.json()
    assert answer["error"] == "busy"
    assert answer["detail"].startswith("this address has 2 images arriving")
    other = await post(data, "192.0.2.2")  # another address is not held up
    assert other.status == 200, await other.text()
    go_on.set()
    for task in slow:
        response = await task
        assert response.status == 200, await response.text()
    again = await post(data, "192.0.2.1")  # each place is given back once its body is in
    assert again.status == 200, await again.text()
