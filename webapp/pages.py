"""The page, and the skeleton tables it draws with."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from webapp.keys import CONFIG, CONNECTIONS

MIB = 1024 * 1024


def size_words(size: int) -> str:
    """`size` bytes in the words static/format.js's formatBytes says them, so the page's
    hint names the limit its refusal names: rounded to a tenth of a MB, a limit under 52 KB
    was hinted as "up to 0.0 MB"."""
    if size >= MIB:
        tenths = Decimal(size) / MIB
        places = Decimal("0.1") if size % MIB else Decimal("1")
        return f"{tenths.quantize(places, rounding=ROUND_HALF_UP)} MB"
    if size >= 1024:
        kilobytes = (Decimal(size) / 1024).quantize(Decimal("1"), rounding=ROUND_HALF_UP)
        return f"{kilobytes} KB"
    return f"{size} bytes"


@aiohttp_jinja2.template("index.html")
async def index(request: web.Request) -> dict[str, Any]:
    config = request.app[CONFIG]
    return {
        "max_upload_bytes": config.max_upload_bytes,
        "max_upload": size_words(config.max_upload_bytes),
    }


async def skeleton(request: web.Request) -> web.Response:
    return web.json_response(request.app[CONNECTIONS])
