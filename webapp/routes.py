"""Every route of the server, in one place."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from aiohttp import web

from webapp import avatar_link, emotion_view, ops, pages, pairing_view
from webapp.access.http import access_view
from webapp.avatar_page import setup_avatar_routes
from webapp.export_view import setup_export_routes
from webapp.fitness_page import setup_fitness_routes
from webapp.http_errors import expect
from webapp.live import end_view, handler
from webapp.live.avatars import LINK_AVATAR_PATH
from webapp.static_files import static_files
from webapp.still import views
from webapp.video import views as video_views

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def setup_routes(app: web.Application) -> None:
    # Each route's Expect is answered in JSON: aiohttp's own answer comes before any
    # middleware (http_errors.expect says why).
    get = partial(app.router.add_get, expect_handler=expect)
    post = partial(app.router.add_post, expect_handler=expect)
    put = partial(app.router.add_put, expect_handler=expect)
    get("/", pages.index, name="index")
    get("/api/skeleton", pages.skeleton, name="skeleton")
    post("/predict", views.predict, name="predict")
    get("/ws", handler.websocket, name="ws")
    post("/api/video", video_views.video, name="video")
    get("/healthz", ops.healthz, name="healthz")
    get("/readyz", ops.readyz, name="readyz")
    get("/metrics", ops.metrics_view, name="metrics")
    get("/static/{name:.+}", static_files(STATIC_DIR), name="static")
    get("/api/access", access_view, name="access")
    post(end_view.END_PATH, end_view.end_paused, name="end")
    put(emotion_view.EMOTION_PATH, emotion_view.put_emotion, name="emotion")
    put(avatar_link.UPLOAD_PATH, avatar_link.put_avatar, name="avatar_upload")
    app.router.add_delete(
        avatar_link.UPLOAD_PATH,
        avatar_link.delete_avatar,
        name="avatar_forget",
        expect_handler=expect,
    )
    get(LINK_AVATAR_PATH, avatar_link.link_avatar, name="avatar_link")
    pair = app.router.add_resource(pairing_view.OFFER_PATH, name="pair")
    pair.add_route("PUT", pairing_view.offer, expect_handler=expect)
    pair.add_route("DELETE", pairing_view.withdraw, expect_handler=expect)
    post(pairing_view.CLAIM_PATH, pairing_view.claim, name="pair_claim")
    # Tests build apps of these alone; the avatar's and the export's also set up what
    # their routes need (the avatar's files, the export pool).
    setup_avatar_routes(app)
    setup_fitness_routes(app)
    setup_export_routes(app)
