"""Every route of the server, in one place."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from webapp import ops, pages
from webapp.access.http import setup_access_routes
from webapp.avatar_link import setup_avatar_link_routes
from webapp.avatar_page import setup_avatar_routes
from webapp.emotion_view import setup_emotion_route
from webapp.export_view import setup_export_routes
from webapp.fitness_page import setup_fitness_routes
from webapp.live import handler
from webapp.live.end_view import setup_end_route
from webapp.pairing_view import setup_pairing_routes
from webapp.static_files import static_files
from webapp.still import views
from webapp.video import views as video_views

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/", pages.index, name="index")
    app.router.add_get("/api/skeleton", pages.skeleton, name="skeleton")
    app.router.add_post("/predict", views.predict, name="predict")
    app.router.add_get("/ws", handler.websocket, name="ws")
    app.router.add_post("/api/video", video_views.video, name="video")
    app.router.add_get("/healthz", ops.healthz, name="healthz")
    app.router.add_get("/readyz", ops.readyz, name="readyz")
    app.router.add_get("/metrics", ops.metrics_view, name="metrics")
    app.router.add_get("/static/{name:.+}", static_files(STATIC_DIR), name="static")
    setup_avatar_routes(app)
    setup_avatar_link_routes(app)
    setup_end_route(app)
    setup_emotion_route(app)
    setup_fitness_routes(app)
    setup_export_routes(app)
    setup_access_routes(app)
    setup_pairing_routes(app)
