"""Spooling an uploaded video to a bounded temporary file: multipart field `file`, or a raw
body with a video Content-Type. The decoder reads from that file, never from memory."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

from aiohttp import web

from webapp.content_types import multipart_parsing
from webapp.errors import EmptyInputError
from webapp.uploads import (
    ENVELOPE_BYTES,
    FIELD,
    arriving_within,
    copy_limited,
    file_part,
    refuse_declared_size,
)
from webapp.video.container import check_container, check_declared_type

# The writes go to the page cache in pieces this size, short enough to stay on the loop.
CHUNK = 256 * 1024


class UploadAbandoned(Exception):
    """The client closed the connection before its whole upload arrived."""


@contextlib.asynccontextmanager
async def spooled_video(
    request: web.Request, limit: int, upload_seconds: float, options: frozenset[str] = frozenset()
) -> AsyncIterator[Path]:
    """The file, checked to be MP4/MOV or Matroska, for the duration of the block; it is
    always removed. A multipart field named as one of the query's `options` is refused."""
    refuse_declared_size(request, limit, ENVELOPE_BYTES)
    with tempfile.NamedTemporaryFile(prefix="holotrack-video-", suffix=".bin") as file:
        try:
            async with arriving_within(upload_seconds, declared=request.content_length):
                size = await _receive(request, file, limit, options)
        except ConnectionResetError:
            raise UploadAbandoned() from None
        file.flush()
        # Off the event loop: a file of a million boxes takes most of a second to walk.
        await asyncio.to_thread(check_container, file, size)
        yield Path(file.name)


async def _receive(
    request: web.Request, file: IO[bytes], limit: int, options: frozenset[str]
) -> int:
    if not request.content_type.startswith("multipart/"):
        check_declared_type(request.content_type)
        size = await copy_limited(request.content.read, file.write, limit, "video", CHUNK)
        if not size:
            raise EmptyInputError("the request body is empty; send a video")
        return size
    with multipart_parsing():
        return await _receive_multipart(request, file, limit, options)


async def _receive_multipart(
    request: web.Request, file: IO[bytes], limit: int, options: frozenset[str]
) -> int:
    video = await file_part(request, FIELD, ENVELOPE_BYTES, options, limit)
    if video is None:
        raise EmptyInputError(f"no multipart field named {FIELD!r}; send the video as {FIELD!r}")
    check_declared_type(video.part.headers.get("Content-Type", ""))
    size = await copy_limited(video.read_chunk, file.write, limit, "video", CHUNK)
    if not size:
        raise EmptyInputError(f"the multipart field {FIELD!r} is empty")
    await video.refuse_another()
    return size
