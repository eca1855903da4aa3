"""GET /fitness (count your reps), GET /coach (watch several people's sets) and
GET /api/exercises (what both pages offer). The counting itself is the live session's
(hello "exercise"); these handlers only serve pages and the exercises' data."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from webapp.avatar_page import QR_IMPORT_MAP
from webapp.http_errors import expect
from webapp.keys import LIVE
from webapp.reach import phone_origins


async def exercises(request: web.Request) -> web.Response:
    """The exercises this server counts, as the live sessions loaded them."""
    known = request.app[LIVE].exercises
    return web.json_response({"exercises": [e.describe() for e in known.values()]})


@aiohttp_jinja2.template("fitness.html")
async def fitness_page(request: web.Request) -> dict[str, Any]:
    # The coach link's QR code: its encoder, and where another device reaches this server.
    return {"import_map": QR_IMPORT_MAP, "phone_origins": phone_origins(request)}


@aiohttp_jinja2.template("coach.html")
async def coach_page(request: web.Request) -> dict[str, Any]:
    return {}


def setup_fitness_routes(app: web.Application) -> None:
    """The pages' modules and stylesheet are under /static/fitness/ and /static/fitness.css."""
    app.router.add_get("/api/exercises", exercises, name="exercises", expect_handler=expect)
    app.router.add_get("/fitness", fitness_page, name="fitness", expect_handler=expect)
    app.router.add_get("/coach", coach_page, name="coach", expect_handler=expect)
