"""POST /api/export?format=bvh|csv: a JSON-lines recording in, the file out.

Nothing is kept: the body is read (bounded by --max-export-bytes), parsed and converted in
a process of its own at a low priority, and answered as an attachment. In a thread the
conversion took the event loop's GIL: a 32 MB CSV export made live round trips 1.6 times
slower (bench/export.py); in its own niced process the loop and the workers come first.

Errors go through http_errors.py: 400 bad format or recording (the detail names the
line), 408 slow upload, 413 too big (bytes or frames), 415 wrong type, 500 when the
conversion's process died (the next export gets a new one), 503 while others upload or
convert, or when the server shuts down mid-conversion.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from webapp.errors import (
    BadRecordingError,
    BadRequestError,
    CapacityError,
    EmptyInputError,
    TooLargeError,
    UnsupportedTypeError,
    WorkerCrashedError,
)
from webapp.export.files import export_file
from webapp.export.gate import ExportGate, Slots
from webapp.export.pool import ExportPool, ExportProcessDied
from webapp.export.recording import RecordingError, TooManyFramesError, decoded, parse_text
from webapp.http_errors import expect
from webapp.keys import CONFIG, EXPORT_POOL, EXPORTS, METRICS
from webapp.live.guard import client_address
from webapp.uploads import (
    arriving_within,
    read_limited,
    refuse_cross_site,
    refuse_declared_size,
)

log = logging.getLogger(__name__)

# Exports converting at once. A conversion takes seconds of CPU and a few hundred MB in the
# export's process (docs/recordings.md): one at a time keeps both bounded.
MAX_EXPORTS = 1
# Bodies arriving at once, each up to --max-export-bytes in memory (4 x 32 MiB by default).
# Counted apart from the conversion so that a slow upload does not hold the conversion's
# slot; a few, so that a slow one does not hold off the next either.
MAX_UPLOADS = 4
# Of them, one client address may have this many: four sockets trickling their bodies kept
# every other client's export at 503 for the whole --upload-timeout (an audit's).
MAX_UPLOADS_PER_CLIENT = 2
# The conversion's process yields the CPU to the worker processes and the event loop.
NICENESS = 10
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
STOPPED = "the server is shutting down: the export stopped; send the recording again"
# (content type, charset, file suffix)
FORMATS = {
    "bvh": ("application/octet-stream", None, "bvh"),
    "csv": ("text/csv", "utf-8", "csv"),
}


def _convert(data: bytes, fmt: str, max_frames: int) -> bytes:
    """In the export's process: the file, encoded there, so the server unpickles one bytes
    object rather than a str it must encode again on the event loop."""
    try:
        text = decoded(data)
    except UnicodeDecodeError as exc:
        # A file that begins with UTF-16's mark was read as UTF-16: "not UTF-8" sent the
        # one who saved it so (PowerShell's `>`) looking for a fault it does not have.
        kind = "UTF-16" if exc.encoding.startswith("utf-16") else "UTF-8"
        raise BadRecordingError(
            f"the recording is not {kind} text (at byte {exc.start}): {exc.reason}"
        ) from None
    try:
        recording = parse_text(text, max_frames)
    except TooManyFramesError as exc:
        raise TooLargeError(
            f"the recording has more than {max_frames} frames (at line {exc.line}); the "
            "limit is --max-export-frames"
        ) from None
    except RecordingError as exc:
        raise BadRecordingError(str(exc)) from None
    try:
        return export_file(recording, fmt)
    except RecordingError as exc:
        raise BadRecordingError(str(exc)) from None


async def _receive(request: web.Request) -> bytes:
    config = request.app[CONFIG]
    refuse_declared_size(request, config.max_export_bytes)
    try:
        async with arriving_within(config.upload_timeout, declared=request.content_length):
            return await read_limited(request.content.read, config.max_export_bytes, "recording")
    except ConnectionResetError:
        # The client went away mid-upload (aiohttp's ClientConnectionResetError is one):
        # nothing to convert and nobody to answer, so no traceback in the log either.
        log.info("export: the client closed the connection during the upload")
        raise BadRequestError("the connection closed before the recording arrived") from None


async def export(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    # As /api/video's: ?format=bvh&units=cm was answered as if units meant something.
    unknown = sorted(set(request.query) - {"format"})
    if unknown:
        raise BadRequestError(f"unknown query parameter {unknown[0]!r}; the only one is format")
    if len(request.query.getall("format", [])) > 1:
        # Which one was meant is a guess either way: the first, or the last a proxy added.
        raise BadRequestError("give format once (?format=bvh or ?format=csv)")
    fmt = request.query.get("format", "")
    if fmt not in FORMATS:
        raise BadRequestError("format must be bvh or csv (?format=bvh)")
    refuse_cross_site(request, config)
    declared = request.content_type.lower() if request.headers.get("Content-Type") else ""
    if declared not in RECORDING_TYPES:
        raise UnsupportedTypeError(
            f"content type {declared!r} is not supported; send the recording as "
            "application/x-ndjson (JSON lines)"
        )
    gate = request.app[EXPORTS]
    client = client_address(request, config)
    if not gate.uploads.enter(client):
        raise CapacityError(_uploads_full(gate.uploads, client))
    try:
        data = await _receive(request)
    finally:
        gate.uploads.leave(client)
    # isspace, not strip: no 32 MB copy to find out.
    if not data or data.isspace():
        raise EmptyInputError("the request body is empty; send a JSON-lines recording")
    if not gate.conversions.enter():
        raise CapacityError(
            f"{gate.conversions.limit} exports are converting; try again in a moment"
        )
    conversion = asyncio.ensure_future(
        request.app[EXPORT_POOL].run(_convert, data, fmt, config.max_export_frames)
    )
    # A process cannot be stopped mid-conversion: a client that leaves (its handler
    # cancelled) leaves it running, so the slot is freed when the conversion ends, not
    # when the handler does; otherwise clients that leave could queue conversions behind
    # one another without a 503 (a review found a 1-line export waiting 21 s after 5).
    conversion.add_done_callback(lambda done: _converted(gate.conversions, done))
    # Not cancelled with the handler: the conversion runs on (see above).
    stopping = asyncio.ensure_future(gate.stopping.wait())
    try:
        await asyncio.wait((conversion, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not conversion.done():
        # aiohttp cut the connection 3 s into the shutdown with no answer, and the exit
        # waited for the conversion's end.
        raise CapacityError(STOPPED)
    try:
        body = conversion.result()
    except ExportProcessDied:
        log.error("export: the conversion's process died (killed, out of memory?); replaced")
        raise WorkerCrashedError(
            "the export's process died during the conversion (killed, perhaps out of "
            "memory); it has been restarted, so the next export can run"
        ) from None
    content_type, charset, suffix = FORMATS[fmt]
    return web.Response(
        body=body,
        content_type=content_type,
        charset=charset,
        headers={"Content-Disposition": f'attachment; filename="holotrack-recording.{suffix}"'},
    )


def _converted(slots: Slots, conversion: asyncio.Future[bytes]) -> None:
    slots.leave()
    if not conversion.cancelled():
        conversion.exception()  # retrieved: the client that would have read it may be gone


async def _stop_exports(app: web.Application) -> None:
    app[EXPORTS].stopping.set()


async def export_pool_ctx(app: web.Application) -> AsyncIterator[None]:
    pool = ExportPool(MAX_EXPORTS, NICENESS)
    app[EXPORT_POOL] = pool
    if METRICS in app:
        # Unseen, it held 80-130 MB of the pod's memory limit that the memory alert missed.
        app[METRICS].others = pool.processes
    yield
    await asyncio.to_thread(pool.shutdown)


def _uploads_full(uploads: Slots, client: str) -> str:
    if uploads.running < uploads.limit:
        return (
            f"this address has {uploads.by_client.held(client)} exports uploading, the most one "
            "may; try again when one is in"
        )
    return f"{uploads.limit} exports are uploading; try again in a moment"


def setup_export_routes(app: web.Application) -> None:
    app[EXPORTS] = ExportGate(MAX_UPLOADS, MAX_EXPORTS, MAX_UPLOADS_PER_CLIENT)
    app.cleanup_ctx.append(export_pool_ctx)
    app.on_shutdown.append(_stop_exports)
    app.router.add_post("/api/export", export, name="export", expect_handler=expect)
