"""The application factory: it only wires things; workers start in cleanup_ctx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from webapp.access.http import require_key
from webapp.access.lifecycle import access_ctx
from webapp.access.metrics import AccessMetrics
from webapp.access.service import Access
from webapp.config import Config
from webapp.engine.scheduler import Scheduler
from webapp.http_errors import json_errors
from webapp.keys import (
    ACCESS,
    CACHE,
    CONFIG,
    CONNECTIONS,
    LIVE,
    METRICS,
    PHONE_ORIGINS,
    SCHEDULER,
    SESSIONS,
    STILLS,
    VIDEOS,
)
from webapp.live.handler import close_all
from webapp.live.registry import SessionRegistry
from webapp.live.shared import LiveShared
from webapp.metrics import Metrics
from webapp.ops import count_requests, sampler_ctx
from webapp.per_address import PerAddress
from webapp.routes import setup_routes
from webapp.safe_headers import add_safe_headers
from webapp.still.cache import AnswerCache
from webapp.uploads import close_after_unread_compressed_body
from webapp.video.arrivals import Arrivals

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    scheduler = Scheduler(app[CONFIG])
    await scheduler.start()
    app[SCHEDULER] = scheduler
    app[METRICS].snapshot = scheduler.snapshot
    app[CONNECTIONS] = scheduler.workers[0].connections
    yield
    await scheduler.stop()


def create_app(config: Config, phone_origins: tuple[str, ...] = ()) -> web.Application:
    """The server for `config`; `phone_origins`: where a phone on the network reaches it,
    as the TLS set-up found them (the pages' QR codes lead there)."""
    app = web.Application(
        middlewares=[close_after_unread_compressed_body, count_requests, json_errors, require_key]
    )
    app[CONFIG] = config
    app[PHONE_ORIGINS] = phone_origins
    app[CACHE] = AnswerCache(0 if config.no_cache else config.cache_entries)
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True)
    app[SESSIONS] = SessionRegistry()
    app[LIVE] = LiveShared.from_config(config)
    app[METRICS] = Metrics()
    app[METRICS].watchers_live.set_function(app[LIVE].tokens.watching)
    app[METRICS].link_avatar_bytes.set_function(app[LIVE].tokens.avatars.held)
    app[METRICS].pairing_codes_live.set_function(app[LIVE].pairing.__len__)
    keys_file = Path(config.access_keys) if config.access_keys else None
    app[ACCESS] = Access.load(keys_file, AccessMetrics(app[METRICS].registry))
    app.cleanup_ctx.append(access_ctx)
    app[VIDEOS] = Arrivals(config.max_sessions_per_client)
    app[STILLS] = PerAddress(config.max_sessions_per_client)
    app.cleanup_ctx.append(scheduler_ctx)
    app.cleanup_ctx.append(sampler_ctx)
    app.on_shutdown.append(close_all)
    app.on_response_prepare.append(add_safe_headers)
    setup_routes(app)
    return app
