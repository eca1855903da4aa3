"""The one place where domain errors become HTTP statuses with a JSON reason."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from webapp import errors, json_text

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
}
RETRY_AFTER_SECONDS = 1


def error_response(exc: errors.HolotrackError) -> web.Response:
    status = STATUS.get(type(exc), 500)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None
    return web.json_response(
        {"error": exc.code, "detail": exc.detail},
        status=status,
        headers=headers,
        dumps=json_text.as_text,
    )


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.HolotrackError as exc:
        return error_response(exc)
