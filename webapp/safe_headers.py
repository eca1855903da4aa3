"""Headers every answer carries, so that what the server hands out is only ever what it
says it is."""

from __future__ import annotations

from aiohttp import web

SAFE_HEADERS = {
    # A link's avatar is a camera's upload: sniffed, its bytes ran as a script from another
    # site's <script src> (a security review's glTF=1;...). Nothing is sniffed now.
    "X-Content-Type-Options": "nosniff",
    # The pages' addresses carry watch tokens (/avatar?watch=...) and a link's avatar its
    # token; none of them leaves with a request the page makes.
    "Referrer-Policy": "no-referrer",
}


async def add_safe_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SAFE_HEADERS.items():
        response.headers.setdefault(name, value)
