"""Every piece of application state, each under its own typed key."""

from __future__ import annotations

from aiohttp import web

from webapp.access.service import Access
from webapp.config import Config
from webapp.engine.scheduler import Scheduler
from webapp.export.gate import ExportGate
from webapp.export.pool import ExportPool
from webapp.live.registry import SessionRegistry
from webapp.live.shared import LiveShared
from webapp.metrics import Metrics
from webapp.per_address import PerAddress
from webapp.still.cache import AnswerCache
from webapp.video.arrivals import Arrivals

CONFIG = web.AppKey("config", Config)
SCHEDULER = web.AppKey("scheduler", Scheduler)
CACHE = web.AppKey("cache", AnswerCache)
# MediaPipe's bone tables, as the first worker reported them.
CONNECTIONS = web.AppKey("connections", dict[str, list[list[int]]])
SESSIONS = web.AppKey("sessions", SessionRegistry)
METRICS = web.AppKey("metrics", Metrics)
LIVE = web.AppKey("live", LiveShared)
EXPORTS = web.AppKey("exports", ExportGate)
EXPORT_POOL = web.AppKey("export_pool", ExportPool)
# Access keys and their quotas (an open server without --access-keys).
ACCESS = web.AppKey("access", Access)
VIDEOS = web.AppKey("videos", Arrivals)
# POST /predict bodies arriving, by client address.
STILLS = web.AppKey("stills", PerAddress)
# Set on a POST /api/video whose view counted it in holotrack_video_requests_total (its
# stream begun, or its upload abandoned); ops.count_requests counts every other answer.
VIDEO_COUNTED = web.RequestKey("video_counted", bool)
# The https origins a phone on the network may open (--self-signed, --tls-cert).
PHONE_ORIGINS = web.AppKey("phone_origins", tuple[str, ...])
