"""Every route of the server, in one place."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from webapp import metrics, session, views

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/", views.index, name="index")
    app.router.add_get("/api/skeleton", views.skeleton, name="skeleton")
    app.router.add_post("/predict", views.predict, name="predict")
    app.router.add_get("/ws", session.websocket, name="ws")
    app.router.add_get("/healthz", views.healthz, name="healthz")
    app.router.add_get("/readyz", views.readyz, name="readyz")
    app.router.add_get("/metrics", metrics.metrics_view, name="metrics")
    app.router.add_static("/static", STATIC_DIR, name="static")
