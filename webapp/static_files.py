"""GET /static/{name}: the pages' scripts and stylesheets, from static/.

aiohttp's own static route answered a missing file with an empty, untyped 404 (its
FileResponse sets the status after every middleware has run) and a name longer than the
filesystem takes with a 500 and a traceback. Here every refusal is the router's 404,
which the error middleware turns into JSON like any other, and a range the file cannot
give is a 416 raised the same way (FileResponse's own is an empty body); FileResponse
still does the rest (content type, ETag, Last-Modified, ranges). Every file is
Cache-Control: no-cache, so a returning browser checks its copy (ETag) before using it.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

# With any of these FileResponse may answer 304 or 412 before it looks at the range: the
# range is then its to judge.
CONDITIONS = (
    hdrs.IF_MATCH,
    hdrs.IF_NONE_MATCH,
    hdrs.IF_MODIFIED_SINCE,
    hdrs.IF_UNMODIFIED_SINCE,
)


def unsatisfiable(request: web.Request, size: int, mtime: float) -> bool:
    """Whether FileResponse would answer the request's Range with 416, as it decides."""
    if any(name in request.headers for name in CONDITIONS):
        return False
    # If-Range drops the range (the whole file, 200) only as a date the file changed after;
    # as an ETag, which a browser resuming a download sends, FileResponse reads it as no
    # date and judges the range: its 416 was an empty body again.
    since = request.if_range
    if since is not None and mtime > since.timestamp():
        return False
    try:
        wanted = request.http_range
    except ValueError:  # not bytes=first-last, or last before first
        return True
    if wanted.start is None:
        return False
    start: int = wanted.start
    if start < 0 and wanted.stop is None:  # the last -start bytes
        start = max(0, start + size)
    return start >= size


def file_response(
    request: web.Request, path: Path, headers: dict[str, str] | None = None
) -> web.FileResponse:
    """FileResponse for `path`, or a 416 raised for the error middleware to put in JSON."""
    stat = path.stat()
    size = stat.st_size
    if unsatisfiable(request, size, stat.st_mtime):
        raise web.HTTPRequestRangeNotSatisfiable(
            text=f"{request.headers[hdrs.RANGE]!r} is not a range of this file's {size} bytes",
            headers={hdrs.CONTENT_RANGE: f"bytes */{size}"},
        )
    # Without it a browser may run its copy without asking for a tenth of the file's age
    # (Last-Modified's heuristic): a script changed by an upgrade stayed the old one for
    # days, beside new modules and a new server. A copy still current costs a 304.
    return web.FileResponse(path, headers={"Cache-Control": "no-cache", **(headers or {})})


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
        return file_response(request, path)

    return handler
