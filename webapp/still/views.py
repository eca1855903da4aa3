"""POST /predict: one still image in, its landmarks out."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from webapp import json_text
from webapp.engine import imaging
from webapp.errors import BadRequestError, CapacityError
from webapp.keys import CACHE, CONFIG, METRICS, SCHEDULER, STILLS
from webapp.live.guard import client_address
from webapp.still import uploads
from webapp.still.cache import digest
from webapp.uploads import arriving_within, refuse_cross_site

SCHEMA_VERSION = 1


async def predict(request: web.Request) -> web.Response:
    started = time.perf_counter()
    config = request.app[CONFIG]
    if request.query:
        # As /api/video and /api/export do: ?rig=1 or ?smoothing=off, which /api/video
        # takes, was answered without them as if they had been heard.
        name = sorted(request.query)[0]
        raise BadRequestError(f"unknown query parameter {name!r}; POST /predict takes none")
    refuse_cross_site(request, config)
    # A full line refuses before the body is read, so a refused client wastes no upload.
    request.app[SCHEDULER].check_still_room()
    # Each body is held whole in memory while it arrives, before the waiting line bounds
    # it: one address with 30 sockets trickling 9 MB each held 280 MB for the whole
    # --upload-timeout, and nothing stopped it opening more.
    arriving = request.app[STILLS]
    client = client_address(request, config)
    if arriving.full(client):
        raise CapacityError(
            f"this address has {arriving.held(client)} images arriving, the most one may "
            "(--max-sessions-per-client); try again when one is in"
        )
    arriving.enter(client)
    try:
        async with arriving_within(config.upload_timeout, declared=request.content_length):
            data = await uploads.read_image(request, config.max_upload_bytes)
    finally:
        arriving.leave(client)
    uploads.check_not_heif(data)
    uploads.check_not_video(data)
    cache = None if config.no_cache else request.app[CACHE]
    key = digest(data) if cache is not None else ""
    answer = cache.get(key) if cache is not None else None
    if answer is not None:  # these bytes passed the probe when they were answered
        return _answer(answer, cached=True, decode_ms=0.0, inference_ms=0.0, started=started)
    # Header only: a bomb or a wrong type is refused before it takes a worker's turn. Off
    # the loop: Pillow walks every marker or chunk before the pixels, and a file of
    # millions of them (COM markers, PNG chunks, a TIFF tag's values) took it seconds.
    await asyncio.to_thread(imaging.probe, data, config.max_pixels)
    result = await request.app[SCHEDULER].predict(data)
    request.app[METRICS].inference.labels("still").observe(result.inference_ms / 1000.0)
    answer = {
        "image": {"width": result.width, "height": result.height},
        "landmarks": result.landmarks.as_json(),
        "warnings": result.warnings,
    }
    if cache is not None:
        cache.put(key, answer)
    return _answer(
        answer,
        cached=False,
        decode_ms=result.decode_ms,
        inference_ms=result.inference_ms,
        started=started,
    )


def _answer(
    answer: dict[str, Any], *, cached: bool, decode_ms: float, inference_ms: float, started: float
) -> web.Response:
    total_ms = (time.perf_counter() - started) * 1000.0
    return web.json_response(
        {
            "schema": SCHEMA_VERSION,
            **answer,
            "cached": cached,
            "timing_ms": {
                "decode": round(decode_ms, 2),
                "inference": round(inference_ms, 2),
                "total": round(total_ms, 2),
            },
        },
        dumps=json_text.as_text,
    )
