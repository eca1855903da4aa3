"""GET /static/{name}: the pages' scripts and stylesheets, from static/.

aiohttp's own static route answered a missing file with an empty, untyped 404 (its
FileResponse sets the status after every middleware has run) and a name longer than the
filesystem takes with a 500 and a traceback. Here every refusal is the router's 404,
which the error middleware turns into JSON like any other; FileResponse still does the
rest (content type, ETag, Last-Modified, ranges).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler


def static_files(root: Path) -> Handler:
    root = root.resolve()

    async def handler(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        try:
            path = (root / name).resolve(strict=True)
            path.relative_to(root)
            if not path.is_file():
                raise FileNotFoundError(name)
        except (OSError, ValueError, RuntimeError):
            # Missing, outside static/, a directory, a symlink loop, or a name the
            # filesystem refuses: all the same to a client.
            raise web.HTTPNotFound() from None
        return web.FileResponse(path)

    return handler
