"""Reading an upload within a size and a time limit: how every endpoint that takes a file
(a photo, a video, a recording) or a small JSON body reads it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from webapp.errors import BadRequestError, TooLargeError, UploadTimeoutError

CHUNK = 64 * 1024


def _named(setting: str) -> str:
    return f" ({setting})" if setting else ""


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
    more than that one byte: a body of any size costs at most `limit` + 1 bytes."""
    size = 0
    while piece := await read(min(chunk, limit + 1 - size)):
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


@contextlib.asynccontextmanager
async def arriving_within(seconds: float, what: str = "upload") -> AsyncIterator[None]:
    """What the block reads must arrive within `seconds`, else 408: a client that sends
    slowly, or stops, holds nothing for longer."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise UploadTimeoutError(f"the {what} did not arrive within {seconds:g} s") from None


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
