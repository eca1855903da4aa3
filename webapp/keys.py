"""Every piece of application state, each under its own typed key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from webapp.cache import AnswerCache
from webapp.config import Config
from webapp.scheduler import Scheduler

if TYPE_CHECKING:
    from webapp.metrics import Metrics
    from webapp.session import SessionRegistry

CONFIG = web.AppKey("config", Config)
SCHEDULER = web.AppKey("scheduler", Scheduler)
CACHE = web.AppKey("cache", AnswerCache)
CONNECTIONS = web.AppKey("connections", dict[str, Any])
SESSIONS: web.AppKey[SessionRegistry] = web.AppKey("sessions")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
