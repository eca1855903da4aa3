"""Reading an upload within a size and a time limit: how every endpoint that takes a file
(a photo, a video, a recording) or a small JSON body reads it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiohttp import BodyPartReader, MultipartReader, StreamReader, hdrs, web
from aiohttp.typedefs import Handler

from webapp.config import Config
from webapp.errors import (
    BadOptionError,
    BadRequestError,
    CrossSiteError,
    EmptyInputError,
    TooLargeError,
    UploadTimeoutError,
    plain_seconds,
    shown,
)
from webapp.live.guard import origin_refusal

CHUNK = 64 * 1024
# The multipart field a photo or a video comes in, and room for the headers and boundaries
# around it.
FIELD = "file"
ENVELOPE_BYTES = 64 * 1024
# The slowest uplink an upload is waited for, besides --upload-timeout: 2 Mbit/s.
UPLINK_BYTES_PER_S = 250_000
# The least a read asks for: aiohttp's multipart reader refuses a read shorter than its
# boundary + 2 ("Chunk size must be greater or equal than boundary length + 2"), which a
# read sized to what is left of a limit could be. RFC 2046 boundaries are at most 70.
MIN_READ = 1024
CUT_SHORT = (
    "the multipart body ends without its closing boundary: it was cut short, or its sender "
    "did not finish it"
)


@web.middleware
async def close_after_unread_compressed_body(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """An answer given before a compressed body was read to its end closes its connection,
    and the rest of the body is never inflated. Kept open, aiohttp read the rest to drop
    it, inflating it on the event loop: 2 MB of gzip (2 GB of zeros) sent to any path, a
    404 or a 413 as well, held every session and request 2-4 s. A plain body's rest is
    only read, and keeps its connection open."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _close_if_unread(request, exc)
        raise
    _close_if_unread(request, response)
    return response


def _close_if_unread(request: web.Request, response: web.StreamResponse) -> None:
    if hdrs.CONTENT_ENCODING in request.headers and not request.content.is_eof():
        # As for a body that does not decode (http_errors.unreadable_body): marked as
        # ended, aiohttp does not read on; closed, what follows is not a next request.
        request.content.feed_eof()
        response.force_close()


def _named(setting: str) -> str:
    return f" ({setting})" if setting else ""


def refuse_cross_site(request: web.Request, config: Config) -> None:
    """As /ws and pairing claims refuse one: a multipart or text/plain POST is one a page of
    any site may send from its visitor's browser without asking (no CORS preflight), with
    the visitor's network position. Its page could not read the answer, but the server ran
    it all the same: a photo's inference, a video's upload and session, a conversion."""
    refusal = origin_refusal(request, config)
    if refusal is not None:
        raise CrossSiteError(f"{refusal}; send uploads from this server's pages or a script")


def refuse_declared_size(
    request: web.Request, limit: int, envelope: int = 0, setting: str = ""
) -> None:
    """413 before a byte is read when the Content-Length alone is over `limit` (plus the
    multipart `envelope` around the file); `setting` names the flag that sets the limit."""
    if request.content_length is not None and request.content_length > limit + envelope:
        raise TooLargeError(
            f"the body is {request.content_length} bytes; the limit is {limit}{_named(setting)}"
        )


async def copy_limited(
    read: Callable[[int], Awaitable[bytes]],
    write: Callable[[bytes], object],
    limit: int,
    what: str,
    chunk: int = CHUNK,
    setting: str = "",
) -> int:
    """Copies at most `limit` bytes and fails on the first byte past it, never having read
    more than MIN_READ bytes past it: a body of any size costs at most `limit` + MIN_READ."""
    size = 0
    while piece := await read(max(MIN_READ, min(chunk, limit + 1 - size))):
        size += len(piece)
        if size > limit:
            raise TooLargeError(f"the {what} is over the {limit}-byte limit{_named(setting)}")
        write(piece)
    return size


async def read_limited(
    read: Callable[[int], Awaitable[bytes]], limit: int, what: str, setting: str = ""
) -> bytes:
    chunks: list[bytes] = []
    await copy_limited(read, chunks.append, limit, what, setting=setting)
    return b"".join(chunks)


@dataclass(frozen=True)
class FilePart:
    """The part a file came in, and the body it came in, for what follows it."""

    part: BodyPartReader
    body: MultipartReader
    stream: StreamReader
    others_left: int  # of the allowance for the other parts, what those before it left
    query_names: frozenset[str] = frozenset()  # the endpoint's query parameters

    async def read_chunk(self, size: int) -> bytes:
        """The file's next bytes."""
        return await _read_chunk(self.part, self.stream, size)

    async def refuse_another(self) -> None:
        """Once the file is read: the parts after it are read and dropped (within what is
        left of the other parts' allowance), and a second part under the file's name is
        400. Unread, it was ignored, and `curl -F file=@a.mp4 -F file=@b.mp4` gave a's
        results alone as if they were all that was asked."""
        field = self.part.name or FIELD
        left = self.others_left
        while (item := await self._next()) is not None:
            part = _plain(item, field)
            if part.name == field:
                raise BadRequestError(
                    f"the body has more than one part named {field!r}; send one file per request"
                )
            _refuse_query_name(part, self.query_names)
            left -= await _drain(part, self.stream, left, field)

    async def _next(self) -> BodyPartReader | MultipartReader | None:
        return await _next_part(self.body, self.stream)


async def file_part(
    request: web.Request,
    field: str,
    others_limit: int,
    query_names: frozenset[str] = frozenset(),
    file_limit: int = 0,
) -> FilePart | None:
    """The multipart part named `field`, or None. The parts before it are read and dropped,
    at most `others_limit` bytes of them in all: skipped by `async for`, aiohttp drains a
    part to its end, so a 3 GB part named otherwise was read whole (--max-upload-bytes
    bounded only the file's own part). A part named as one of `query_names`, before the
    file or after it, is a 400 bad_option. A file under another name over `others_limit`
    is read on and dropped, within `file_limit` bytes, to learn whether `field` follows."""
    left = others_limit
    misnamed: str | None = None
    body = await request.multipart()
    # Not _next_part: a body without its opening boundary is malformed, not cut short.
    item = await body.next()
    while item is not None:
        part = _plain(item, field)
        if part.name == field:
            return FilePart(part, body, request.content, left, query_names)
        _refuse_query_name(part, query_names)
        try:
            left -= await _drain(part, request.content, left, field)
        except TooLargeError:
            if part.filename is None or await _comes_later(
                body, part, request.content, field, file_limit
            ):
                raise
            # A file under another name (curl -F image=@photo.jpg) is the file meant: it
            # was drained against the small allowance of the other fields and called too
            # large, which sent people looking at its size. Unless the file follows it: a
            # form's second file before the photo was told to send the photo as `field`,
            # which it had.
            raise EmptyInputError(_misnamed(part.name, field)) from None
        if part.filename is not None and misnamed is None:
            misnamed = part.name  # a small file beside the one meant is fine, if it comes
        item = await _next_part(body, request.content)
    if misnamed is not None:
        raise EmptyInputError(_misnamed(misnamed, field))
    return None


async def _comes_later(
    body: MultipartReader, part: BodyPartReader, stream: StreamReader, field: str, budget: int
) -> bool:
    """Whether a part named `field` follows `part`, which is read on and dropped, as are the
    parts between, within `budget` bytes: past it, the answer is no."""
    what = f"multipart body besides the field {field!r}"
    try:
        budget -= await copy_limited(partial(_read_chunk, part, stream), _drop, budget, what)
        while (item := await _next_part(body, stream)) is not None:
            later = _plain(item, field)
            if later.name == field:
                return True
            read = partial(_read_chunk, later, stream)
            budget -= await copy_limited(read, _drop, budget, what)
    except TooLargeError:
        return False
    return False


def _plain(part: BodyPartReader | MultipartReader | None, field: str) -> BodyPartReader:
    if not isinstance(part, BodyPartReader):
        raise BadRequestError(
            f"a multipart body inside a part is not taken; send the file as {field!r}"
        )
    return part


def _refuse_query_name(part: BodyPartReader, names: frozenset[str]) -> None:
    # Dropped with the other fields, `curl -F file=@a.mp4 -F rig=1` had its answer without
    # the rig it asked for, and nothing said why.
    if part.name in names:
        raise BadOptionError(
            f"{part.name} is a query parameter, not a form field: put it in the URL "
            f"(?{part.name}=...)"
        )


async def _drain(part: BodyPartReader, stream: StreamReader, left: int, field: str) -> int:
    """Reads and drops a part besides the file's (`field`), within `left` bytes: its size."""
    return await copy_limited(
        partial(_read_chunk, part, stream),
        _drop,
        left,
        f"multipart body besides the field {field!r}",
    )


async def _next_part(
    body: MultipartReader, stream: StreamReader
) -> BodyPartReader | MultipartReader | None:
    try:
        return await body.next()
    except ValueError:
        if not stream.at_eof():
            raise
        # A part read to the body's end is its bytes and the line break before the
        # boundary that never came: a truncated video, it said, of a whole one.
        raise BadRequestError(CUT_SHORT) from None


async def _read_chunk(part: BodyPartReader, stream: StreamReader, size: int) -> bytes:
    """`part`'s next bytes. A body that ends in a part, without the boundary after it, was
    "the multipart body is malformed: Reading after EOF" (aiohttp's words): in the file, or
    in a file sent under another name (curl -F image=@photo.jpg), the one meant."""
    try:
        return await part.read_chunk(size)
    except ValueError:
        if not stream.at_eof():
            raise
        raise BadRequestError(CUT_SHORT) from None


def _misnamed(name: str | None, field: str) -> str:
    return (
        f"the file came as the multipart field {shown(name)}; "
        f"send it as {field!r} (curl -F {field}=@FILE)"
    )


def _drop(_: bytes) -> None:
    pass


@contextlib.asynccontextmanager
async def arriving_within(
    seconds: float, what: str = "upload", declared: int | None = None
) -> AsyncIterator[None]:
    """What the block reads must arrive within `seconds`, else 408: a client that sends
    slowly, or stops, holds nothing for longer. A body that declares its length has a
    second more for each UPLINK_BYTES_PER_S of it: 30 s alone asked a 40 MB phone video
    for 11 Mbit/s, and the 64 MiB the limit allows for 18."""
    allowed = seconds + (declared or 0) / UPLINK_BYTES_PER_S
    try:
        async with asyncio.timeout(allowed):
            yield
    except TimeoutError:
        per = UPLINK_BYTES_PER_S // 1000
        given, within = plain_seconds(seconds), plain_seconds(allowed)
        extra = f" (--upload-timeout {given} s, and 1 s for each {per} kB declared)"
        raise UploadTimeoutError(
            f"the {what} did not arrive within {within} s{extra if declared else ''}"
        ) from None


async def small_body(request: web.Request, limit: int, seconds: float) -> bytes:
    """A small body (a few fields of JSON): 413 over `limit` bytes, 408 when it does not
    arrive within `seconds`."""
    refuse_declared_size(request, limit)
    async with arriving_within(seconds, "body"):
        return await read_limited(request.content.read, limit, "body")


def json_fields(body: bytes, *names: str) -> tuple[object, ...]:
    """Fields `names` of a JSON object `body`, each None when the object has none; 400 when
    the body is no JSON, saying the object it should be (one of `names`, for more)."""
    try:
        message: Any = json.loads(body)
    # RecursionError: arrays nested deeper than the parser's stack fit in a small body.
    except (ValueError, RecursionError):
        shapes = " or ".join(f'{{"{name}": "..."}}' for name in names)
        raise BadRequestError(f"the body must be JSON: {shapes}") from None
    if not isinstance(message, dict):
        return (None,) * len(names)
    return tuple(message.get(name) for name in names)
