"""What an upload's declared Content-Type may be: one of its own kind, or one that says
nothing about the content (the bytes themselves then decide); and a multipart body that
does not parse, said as such."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp.http_exceptions import BadHttpMessage

from webapp.errors import BadRequestError, UnsupportedTypeError

NEUTRAL_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
# HEIF's major brands (ISO/IEC 23008-12): an iPhone's photos are HEIC unless set otherwise.
HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
)


def check_declared(content_type: str, accepted: frozenset[str], send: str) -> None:
    """UnsupportedTypeError (415) unless the type, its parameters and case aside, is neutral
    or `accepted`; `send` says what to send instead."""
    declared = content_type.split(";")[0].strip().lower()
    if declared in NEUTRAL_TYPES or declared in accepted:
        return
    raise UnsupportedTypeError(f"content type {declared!r} is not supported; send {send}")


@contextmanager
def multipart_parsing() -> Iterator[None]:
    """BadRequestError (400) for a multipart body aiohttp cannot parse: a missing or wrong
    boundary, a part cut short, a part's header that is not a header. aiohttp's reader
    says some of these with an assert."""
    try:
        yield
    except (ValueError, AssertionError, BadHttpMessage) as exc:
        what = exc.message if isinstance(exc, BadHttpMessage) else str(exc)
        if "boundary missed" in what:
            # Most often a fetch() given a FormData body and a Content-Type set by hand:
            # the browser's own header would have named the boundary it wrote.
            what = NO_BOUNDARY
        raise BadRequestError(f"the multipart body is malformed: {what}") from None


NO_BOUNDARY = (
    "its Content-Type multipart/form-data names no boundary; let the client write that "
    "header (curl -F, or fetch with a FormData body and no Content-Type of your own)"
)
