"""HTTP handlers: the page, the skeleton tables, and still-image prediction."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from webapp import imaging, uploads
from webapp.cache import digest
from webapp.errors import UploadTimeoutError
from webapp.keys import CACHE, CONFIG, CONNECTIONS, METRICS, SCHEDULER

SCHEMA_VERSION = 1


@aiohttp_jinja2.template("index.html")
async def index(request: web.Request) -> dict[str, Any]:
    config = request.app[CONFIG]
    return {
        "max_upload_bytes": config.max_upload_bytes,
        "max_frame_bytes": config.max_frame_bytes,
    }


async def skeleton(request: web.Request) -> web.Response:
    return web.json_response(request.app[CONNECTIONS])


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and its event loop answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """503 when one more live session would be refused, so a balancer sends it elsewhere."""
    scheduler = request.app[SCHEDULER]
    body = {
        "sessions": len(scheduler.slots),
        "max_sessions": request.app[CONFIG].max_sessions,
        "workers_alive": sum(1 for w in scheduler.workers if w.alive),
    }
    if scheduler.has_room():
        return web.json_response({"status": "ready", **body})
    return web.json_response({"status": "full", **body}, status=503)


async def predict(request: web.Request) -> web.Response:
    started = time.perf_counter()
    config = request.app[CONFIG]
    # A full line refuses before the body is read, so a refused client wastes no upload.
    request.app[SCHEDULER].check_still_room()
    try:
        async with asyncio.timeout(config.upload_timeout):
            data = await uploads.read_image(request, config.max_upload_bytes)
    except TimeoutError:
        raise UploadTimeoutError(
            f"the upload did not arrive within {config.upload_timeout:g} s"
        ) from None
    # Header only: a bomb or a wrong type is refused before it takes a worker's turn.
    imaging.probe(data, config.max_pixels)
    cache = None if config.no_cache else request.app[CACHE]
    key = digest(data) if cache is not None else ""
    answer = cache.get(key) if cache is not None else None
    if answer is not None:
        return _answer(answer, cached=True, decode_ms=0.0, inference_ms=0.0, started=started)
    result = await request.app[SCHEDULER].predict(data)
    request.app[METRICS].inference.labels("still").observe(result["inference_ms"] / 1000.0)
    answer = {
        "image": {"width": result["width"], "height": result["height"]},
        "landmarks": result["landmarks"],
        "warnings": result["warnings"],
    }
    if cache is not None:
        cache.put(key, answer)
    return _answer(
        answer,
        cached=False,
        decode_ms=result["decode_ms"],
        inference_ms=result["inference_ms"],
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
        }
    )
