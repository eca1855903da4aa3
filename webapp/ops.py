"""What operators and balancers read: /healthz, /readyz, /metrics and their samplers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from webapp.keys import CONFIG, METRICS, SCHEDULER, VIDEO_COUNTED, VIDEOS


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and its event loop answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """503 when one more live session would be refused (--max-sessions, --min-session-fps
    for a session with the hello's defaults) or videos still uploading take the last
    sessions, so a balancer sends it elsewhere."""
    pool = request.app[SCHEDULER].snapshot()
    body = {
        "sessions": pool.sessions,
        "max_sessions": request.app[CONFIG].max_sessions,
        "workers_alive": pool.workers_alive,
        "videos_arriving": request.app[VIDEOS].count,
    }
    # Videos still uploading hold their session slot already (webapp/video/arrivals.py).
    refusal = pool.refusal if not pool.room else request.app[VIDEOS].fill(pool)
    if refusal is None:
        return web.json_response({"status": "ready", **body})
    return web.json_response({"status": "full", "reason": refusal, **body}, status=503)


async def metrics_view(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """POST /predict's and POST /api/video's answers by status, the access layer's 401, 403
    and 429 and json_errors' too; but a video's view counts its stream's 200 as the stream
    starts (it may end hours later) and an upload abandoned (no answer), and marks them."""
    metrics = request.app[METRICS]
    if request.path == "/predict":
        counter = metrics.predict_requests
    elif request.path == "/api/video":
        counter = metrics.video_requests
    else:
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if not request.get(VIDEO_COUNTED):
            counter.labels(str(exc.status)).inc()
        raise
    if not request.get(VIDEO_COUNTED):
        counter.labels(str(response.status)).inc()
    return response


async def sampler_ctx(app: web.Application) -> AsyncIterator[None]:
    """Samples worker busy time every second, so the busy ratio covers a steady window."""

    async def sample() -> None:
        while True:
            app[METRICS].sample_busy()
            await asyncio.sleep(1.0)

    task = asyncio.create_task(sample())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
