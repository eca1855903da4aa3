"""The page, and the skeleton tables it draws with."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from webapp.keys import CONFIG, CONNECTIONS


@aiohttp_jinja2.template("index.html")
async def index(request: web.Request) -> dict[str, Any]:
    config = request.app[CONFIG]
    return {"max_upload_bytes": config.max_upload_bytes}


async def skeleton(request: web.Request) -> web.Response:
    return web.json_response(request.app[CONNECTIONS])
