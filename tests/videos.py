"""Videos for POST /api/video tests, cut from the shared media, and a reader of its lines."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import cv2
from aiohttp import web

from tests.conftest import Client
from webapp.video.decode import encode


def write_clip(
    source: Path,
    target: Path,
    count: int,
    *,
    size: tuple[int, int] | None = None,
    fps: float | None = None,
    fourcc: str = "mp4v",
) -> Path:
    """The first `count` frames of `source`, re-encoded (MPEG-4 part 2, which the wheel's
    FFmpeg can write), resized to `size` and retimed to `fps` when given."""
    capture = cv2.VideoCapture(str(source))
    rate = fps or capture.get(cv2.CAP_PROP_FPS)
    writer: cv2.VideoWriter | None = None
    written = 0
    try:
        while written < count:
            ok, bgr = capture.read()
            if not ok:
                break
            if size is not None:
                bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
            if writer is None:
                height, width = bgr.shape[:2]
                code = cv2.VideoWriter.fourcc(*fourcc)
                writer = cv2.VideoWriter(str(target), code, rate, (width, height))
                assert writer.isOpened(), f"cannot write {target} with {fourcc}"
            writer.write(bgr)
            written += 1
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    assert written == count
    return target


def decoded_frames(path: Path) -> list[tuple[float, bytes]]:
    """(presentation time, the JPEG the server sends its worker) of every frame, decoded
    here on its own, as a live client would send them."""
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames: list[tuple[float, bytes]] = []
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                return frames
            frames.append((float(capture.get(cv2.CAP_PROP_POS_MSEC)), encode(bgr)))
    finally:
        capture.release()


async def post(
    client: Client, body: bytes, query: str = "", content_type: str = "video/mp4"
) -> aiohttp.ClientResponse:
    return await client.post(
        "/api/video" + query, data=body, headers={"Content-Type": content_type}
    )


async def lines(response: aiohttp.ClientResponse) -> list[dict[str, Any]]:
    """Every line of a streamed answer; the last one is the summary."""
    assert response.status == 200, await response.text()
    assert response.content_type == "application/x-ndjson"
    found = [json.loads(line) async for line in response.content if line.strip()]
    assert "summary" in found[-1]
    assert all("summary" not in line for line in found[:-1])
    return found


@contextlib.asynccontextmanager
async def served(app: web.Application) -> AsyncIterator[str]:
    """The app on a free port the way `python -m webapp` runs it: aiohttp does not cancel a
    handler whose client left (the test client's server does)."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
