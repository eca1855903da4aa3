"""The one place where errors become HTTP statuses with a JSON reason: the domain's own,
aiohttp's (no such path, a method not allowed), and any the server did not expect."""

from __future__ import annotations

import logging

from aiohttp import HttpVersion11, hdrs, web
from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.typedefs import Handler

from webapp import errors, json_text
from webapp.errors import shown

STATUS: dict[type[errors.HolotrackError], int] = {
    errors.EmptyInputError: 400,
    errors.NotAnImageError: 400,
    errors.NotAVideoError: 400,
    errors.BadOptionError: 400,
    errors.UnsupportedTypeError: 415,
    errors.TooLargeError: 413,
    errors.TooManyPixelsError: 413,
    errors.UploadTimeoutError: 408,
    errors.CapacityError: 503,
    errors.DeadlineError: 504,
    errors.WorkerCrashedError: 500,
    errors.ModelError: 500,
    errors.BadRecordingError: 400,
    errors.BadRequestError: 400,
    errors.CrossSiteError: 403,
    errors.UnreadableBodyError: 400,
}
RETRY_AFTER_SECONDS = 1

log = logging.getLogger(__name__)


def json_error(
    code: str, detail: str, status: int, headers: dict[str, str] | None = None
) -> web.Response:
    """For a handler that answers a refusal of its own rather than raising one."""
    # A detail quoting a client's text may hold a lone surrogate, which JSON cannot carry.
    detail = detail.encode("utf-8", "backslashreplace").decode("utf-8")
    return web.json_response(
        {"error": code, "detail": detail}, status=status, headers=headers, dumps=json_text.as_text
    )


def error_response(exc: errors.HolotrackError) -> web.Response:
    status = STATUS.get(type(exc), 500)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None
    response = json_error(exc.code, exc.detail, status, headers)
    if isinstance(exc, errors.UnreadableBodyError):
        response.force_close()  # the rest of its body cannot be told from a next request
    return response


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own refusals (the router's 404 and 405, a static file's 403) in JSON."""
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        detail = f"{request.method} is not allowed on {request.path}; use {allowed}"
    elif isinstance(exc, web.HTTPNotFound) and exc.text == f"{exc.status}: {exc.reason}":
        detail = f"nothing is served at {request.path}"
    else:
        detail = (exc.text or exc.reason).strip()
    code = exc.reason.lower().replace(" ", "_")
    headers = {k: v for k, v in exc.headers.items() if k != hdrs.CONTENT_TYPE}
    return json_error(code, detail, exc.status, headers)


async def expect(request: web.Request) -> web.Response | None:
    """Every route's answer to an Expect header (aiohttp calls it before any middleware):
    aiohttp's own refused a value it does not know in text/plain, and one that was not
    UTF-8 with its plain 500, as it could not encode the value into its own refusal."""
    said = request.headers.get(hdrs.EXPECT, "")
    if request.version != HttpVersion11:
        return None  # an HTTP/1.0 client cannot have meant it (RFC 9110 10.1.1)
    if said.lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        # The 100 is no part of the answer: _answered must not take it for one under way.
        request.writer.output_size = 0
        return None
    detail = (
        f"Expect {shown(said)} is not an expectation this server meets: send none, or "
        '"100-continue" before a body'
    )
    return json_error("expectation_failed", detail, 417)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.HolotrackError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        return _http_error(request, exc)
    except web.RequestPayloadError as exc:
        return error_response(unreadable_body(request, exc))
    except Exception:
        if _answered(request):
            raise
        # Read from the routes' modules, which import this one: imported once one has failed.
        from webapp.request_secrets import without_secrets

        # As the client sent it, its secrets cut out: the decoded path was a link's token
        # in clear (/api/emotion/TOKEN), and an escaped newline (%0A) a second, forged line.
        log.exception("%s %s failed", request.method, without_secrets(request.raw_path))
        return json_error("internal", "the server failed on this request; it has been logged", 500)


def unreadable_body(
    request: web.Request, exc: web.RequestPayloadError
) -> errors.UnreadableBodyError:
    """A body that is not what its headers say (a Content-Encoding that does not decode, a
    chunk that does not parse) is the client's error, whichever handler was reading it. Its
    connection closes after the answer (error_response), and the body is marked as ended:
    aiohttp would otherwise read on to keep the connection open, hit the same error and log
    it as a server fault."""
    request.content.feed_eof()
    cause = exc.__cause__
    what = cause.message if isinstance(cause, BadHttpMessage) else str(exc)
    return errors.UnreadableBodyError(f"the request body could not be read: {what}")


def _answered(request: web.Request) -> bool:
    """Whether the request already has its answer under way, which a status cannot follow:
    a WebSocket (its own close codes) or a response whose first bytes are sent."""
    upgraded = request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"
    return upgraded or request.writer.output_size > 0
