"""POST /api/export?format=bvh|csv: a JSON-lines recording in, the file out.

Nothing is kept: the body is read (bounded by --max-export-bytes), parsed and converted in
a process of its own at a low priority, and answered as an attachment. In a thread the
conversion took the event loop's GIL: a 32 MB CSV export made live round trips 1.6 times
slower (bench/export.py); in its own niced process the loop and the workers come first.

Errors go through still/http_errors.py: 400 bad format or recording (the detail names the
line), 408 slow upload, 413 too big, 415 wrong type, 503 while another export converts.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor

from aiohttp import web

from webapp.errors import (
    BadRecordingError,
    BadRequestError,
    CapacityError,
    EmptyInputError,
    TooLargeError,
    UnsupportedTypeError,
    UploadTimeoutError,
)
from webapp.export.bvh import to_bvh
from webapp.export.gate import ExportGate
from webapp.export.recording import RecordingError, parse_text
from webapp.export.table import to_csv
from webapp.keys import CONFIG, EXPORT_POOL, EXPORTS

# Exports converting at once. A conversion runs in this process beside the event loop that
# serves every live session, and a 32 MB recording holds about 240 MB while it is parsed
# and takes seconds of CPU (docs/recordings.md): one at a time keeps both bounded.
MAX_EXPORTS = 1
# The conversion's process yields the CPU to the worker processes and the event loop.
NICENESS = 10
CHUNK = 64 * 1024
# Types a JSON-lines file goes by; "" and octet-stream say nothing, so the content decides.
RECORDING_TYPES = frozenset(
    {
        "",
        "application/x-ndjson",
        "application/jsonl",
        "application/json-lines",
        "application/x-jsonlines",
        "application/json",
        "text/plain",
        "application/octet-stream",
    }
)
FORMATS = {
    "bvh": ("application/octet-stream", "bvh"),
    "csv": ("text/csv", "csv"),
}


def _convert(text: str, fmt: str) -> str:
    try:
        recording = parse_text(text)
    except RecordingError as exc:
        raise BadRecordingError(str(exc)) from None
    return to_bvh(recording) if fmt == "bvh" else to_csv(recording)


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise TooLargeError(f"the body is {request.content_length} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise TooLargeError(f"the recording is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def export(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    fmt = request.query.get("format", "")
    if fmt not in FORMATS:
        raise BadRequestError("format must be bvh or csv (?format=bvh)")
    declared = request.content_type.lower() if request.headers.get("Content-Type") else ""
    if declared not in RECORDING_TYPES:
        raise UnsupportedTypeError(
            f"content type {declared!r} is not supported; send the recording as "
            "application/x-ndjson (JSON lines)"
        )
    gate = request.app[EXPORTS]
    if not gate.enter():
        raise CapacityError(f"{gate.limit} exports are running; try again in a moment")
    try:
        try:
            async with asyncio.timeout(config.upload_timeout):
                data = await _read_body(request, config.max_export_bytes)
        except TimeoutError:
            raise UploadTimeoutError(
                f"the upload did not arrive within {config.upload_timeout:g} s"
            ) from None
        if not data.strip():
            raise EmptyInputError("the request body is empty; send a JSON-lines recording")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRecordingError("the recording is not UTF-8 text") from None
        loop = asyncio.get_running_loop()
        body = await loop.run_in_executor(request.app[EXPORT_POOL], _convert, text, fmt)
    finally:
        gate.leave()
    content_type, suffix = FORMATS[fmt]
    return web.Response(
        text=body,
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="holotrack-recording.{suffix}"'},
    )


async def export_pool_ctx(app: web.Application) -> AsyncIterator[None]:
    # spawn: a fork would copy this process's threads and sockets; the process starts on
    # the first export and then stays, so later exports do not pay its imports again.
    pool = ProcessPoolExecutor(
        max_workers=MAX_EXPORTS,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=os.nice,
        initargs=(NICENESS,),
    )
    app[EXPORT_POOL] = pool
    yield
    await asyncio.to_thread(pool.shutdown, cancel_futures=True)


def setup_export_routes(app: web.Application) -> None:
    app[EXPORTS] = ExportGate(MAX_EXPORTS)
    app.cleanup_ctx.append(export_pool_ctx)
    app.router.add_post("/api/export", export, name="export")
