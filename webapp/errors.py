"""Domain errors, raised inside and mapped to HTTP statuses and close codes at the edge."""

from __future__ import annotations

import json
import reprlib

SHOWN_CHARS = 40


def shown(value: object) -> str:
    """A client's value quoted in an error as JSON, the client's own notation (null, true,
    "1"; not Python's None, True, '1'): short and ASCII, so it is valid UTF-8 whatever it
    held (a lone surrogate), and cutting a close reason to the close frame's size never
    splits a character."""
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = reprlib.repr(value).encode("ascii", "backslashreplace").decode("ascii")
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


class HolotrackError(Exception):
    """An error a client can be told about: a stable code and a human sentence."""

    code = "internal"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class EmptyInputError(HolotrackError):
    code = "empty"


class NotAnImageError(HolotrackError):
    code = "not_an_image"


class UnsupportedTypeError(HolotrackError):
    code = "unsupported_type"


class TooLargeError(HolotrackError):
    code = "too_large"


class TooManyPixelsError(HolotrackError):
    code = "too_many_pixels"


class NotAVideoError(HolotrackError):
    code = "not_a_video"


class BadOptionError(HolotrackError):
    code = "bad_option"


class UploadTimeoutError(HolotrackError):
    code = "upload_timeout"


class CapacityError(HolotrackError):
    code = "busy"


class DeadlineError(HolotrackError):
    code = "timeout"


class WorkerCrashedError(HolotrackError):
    code = "worker_crashed"


class ModelError(HolotrackError):
    code = "model_error"


# Errors that a worker may report back by code; the main process rebuilds them.
BY_CODE: dict[str, type[HolotrackError]] = {
    cls.code: cls
    for cls in (
        EmptyInputError,
        NotAnImageError,
        UnsupportedTypeError,
        TooLargeError,
        TooManyPixelsError,
        ModelError,
    )
}


class BadRecordingError(HolotrackError):
    """A recording POST /api/export cannot read; the detail names the line."""

    code = "bad_recording"


class BadRequestError(HolotrackError):
    code = "bad_request"


class CrossSiteError(HolotrackError):
    """An upload a page of another site sent from its visitor's browser."""

    code = "cross_site"


class UnreadableBodyError(BadRequestError):
    """A body that is not what its headers say; its connection cannot carry another request."""


def plain_seconds(value: float) -> str:
    """Seconds as a person reads them in a reason, to a tenth: the g format wrote a 1000 s
    timeout as "1e+03" and 30 days as "2.592e+06", which read as a fault."""
    return f"{value:.1f}".rstrip("0").rstrip(".")
