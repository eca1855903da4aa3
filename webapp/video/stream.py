"""One video's whole path, as one loop: decode a frame (on a thread, one ahead), run it on
the engine, analyse it as a live session would, write its line; then the summary.

Nothing piles up: one decoded frame waits while one runs, and a line is written (and its
write awaited) before the next frame is offered, so a client that reads slowly slows the
video down instead of filling memory, and one that leaves stops it at the next write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from webapp.access.service import VideoSeconds
from webapp.engine.jobs import Frame
from webapp.engine.wire import FrameResult
from webapp.errors import CapacityError, DeadlineError, HolotrackError, WorkerCrashedError
from webapp.live.analysis import SessionAnalysis
from webapp.metrics import Metrics
from webapp.video import lines
from webapp.video.decode import VideoFrame, VideoReader
from webapp.video.run import VideoRun

log = logging.getLogger(__name__)
# The kernel's share of what a client that stops reading holds: Linux lets a socket's send
# buffer grow to 4 MB (about 240 lines) on its own. 256 KB (the kernel doubles it) is 1 s
# of lines at 30 fps, and still 2.5 MB/s over a 100 ms round trip.
SEND_BUFFER_BYTES = 256 * 1024
# How often a frame slow to come looks whether the server is shutting down: well within
# its few seconds' grace before aiohttp cancels the handler.
DRAIN_CHECK_S = 0.25


class ShuttingDown(CapacityError):
    """The server is shutting down: the video ends with its summary, to be sent again."""


# Errors after which no further frame can run; any other costs one frame its landmarks.
FATAL = (WorkerCrashedError, DeadlineError, ShuttingDown)


class ClientGone(Exception):
    """The client closed the connection, or read nothing for send_timeout."""


@dataclass
class Tally:
    frames: int = 0
    with_person: int = 0  # frames whose pose was found
    errors: int = 0
    inference_ms: list[float] = field(default_factory=list)
    decode_ms: list[float] = field(default_factory=list)
    wait_ms: list[float] = field(default_factory=list)


class VideoStream:
    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        run: VideoRun,
        reader: VideoReader,
        analysis: SessionAnalysis,
        *,
        send_timeout: float,
        waiting_seconds: float,
        metrics: Metrics,
        charge: VideoSeconds,
    ) -> None:
        self.request = request
        self.response = response
        self.run = run
        self.reader = reader
        self.analysis = analysis
        self.send_timeout = send_timeout
        self.waiting_seconds = waiting_seconds
        self.metrics = metrics
        self.charge = charge
        self.tally = Tally()
        self.name = run.slot.id if run.slot is not None else "video"
        self._logged_end = False

    async def serve(self, first: VideoFrame, started: float) -> str:
        """Streams every frame and the summary; returns how it ended."""
        error: HolotrackError | None = None
        processing = time.perf_counter()
        self._bound_send_buffer()
        try:
            try:
                await self._frames(first)
            except HolotrackError as exc:
                # A shutdown's stop is no failure: every rolling update counted some.
                outcome = "stopped" if isinstance(exc, ShuttingDown) else "failed"
                self._ended(outcome, f"stopped after {self.tally.frames} frames: {exc}")
                error = exc
            # The slot is free, and the key charged what the video used, before the client
            # reads the summary, not after.
            self.run.close()
            self.charge.settle(self.reader.decoded_seconds)
            await self._write(lines.summary_line(self._summary(error, started, processing)))
            await self._write_eof()
            if error is None:
                seconds = time.perf_counter() - started
                self._ended("complete", f"complete, {self.tally.frames} frames in {seconds:.1f} s")
        except ClientGone:
            self._ended("disconnected", f"left by its client after {self.tally.frames} frames")
            return "disconnected"
        except asyncio.CancelledError:
            # How aiohttp says the client left (handler_cancellation) when no write found
            # it first, and how the server's shutdown ends a video still running.
            if self.run.scheduler.draining:
                # Its client was there: a shutdown's end, as one between frames is.
                self._ended(
                    "stopped", f"cut by the server's shutdown after {self.tally.frames} frames"
                )
            else:
                self._ended("disconnected", f"left by its client after {self.tally.frames} frames")
            raise
        finally:
            self.metrics.video_frames.labels("skipped").inc(self.reader.skipped)
        if error is None:
            return "complete"
        return "stopped" if isinstance(error, ShuttingDown) else "failed"

    def _ended(self, outcome: str, words: str) -> None:
        """The end line of the video's start line (views.py), as a live session has its
        two (logbook): words for people, fields for --log-format json. Once: a failed
        video whose summary then finds the client gone ended when it failed."""
        if self._logged_end:
            return
        self._logged_end = True
        level = logging.WARNING if outcome == "failed" else logging.INFO
        fields = {"session": self.name, "event": "video_end", "outcome": outcome}
        log.log(
            level, "%s: video %s", self.name, words, extra=fields | {"frames": self.tally.frames}
        )

    async def _frames(self, first: VideoFrame) -> None:
        index = 0
        ahead: asyncio.Future[VideoFrame | None] = asyncio.get_running_loop().create_future()
        ahead.set_result(first)
        try:
            while (decoded := await ahead) is not None:
                self._check_draining(decoded.time_ms)
                ahead = asyncio.ensure_future(asyncio.to_thread(self.reader.next))
                await self._write(await self._one(index, decoded))
                index += 1
        finally:
            # A frame still decoding ends first (its error, if any, is not the story); if
            # this is cancelled instead, the reader's close() waits for it.
            with contextlib.suppress(Exception):
                await ahead

    async def _one(self, index: int, decoded: VideoFrame) -> bytes:
        transport = self.request.transport
        if transport is None or transport.is_closing():
            raise ClientGone()
        frame = Frame(index, decoded.time_ms, decoded.jpeg)
        try:
            result = await self._result(frame)
        except FATAL:
            raise
        except HolotrackError as exc:
            self.tally.errors += 1
            self.metrics.video_frames.labels("error").inc()
            return lines.error_line(index, decoded.time_ms, exc.code, exc.detail)
        self.tally.frames += 1
        self.tally.inference_ms.append(result.inference_ms)
        self.tally.decode_ms.append(result.decode_ms)
        self.tally.wait_ms.append((frame.started - frame.received) * 1000.0)
        self.metrics.video_frames.labels("processed").inc()
        self.metrics.inference.labels("video").observe(result.inference_ms / 1000.0)
        try:
            landmarks, extra, _ = self.analysis.process(frame, result)
        except Exception:  # an odd frame costs its extras, never the video
            log.exception("%s: analysis failed on frame %d; sent without it", self.name, index)
            landmarks, extra = result.landmarks.as_json(), {}
        if landmarks.get("pose") is not None:
            self.tally.with_person += 1
        size = (result.width, result.height)
        return lines.frame_line(index, decoded.time_ms, size, landmarks, extra)

    def _check_draining(self, time_ms: float) -> None:
        """Ends the video here, with its summary, once the server is shutting down:
        cancelled later by the shutdown, the client got a stream cut short, no last word."""
        if self.run.scheduler.draining:
            raise ShuttingDown(
                f"the server is shutting down: the video stopped at {time_ms:.0f} ms; send it again"
            )

    async def _result(self, frame: Frame) -> FrameResult:
        """The engine's result for `frame`. While it is slow to come (the first frame waits
        for its graph, up to 6 x --request-timeout, behind a burst of sessions), a waiting
        line every waiting_seconds keeps the answer from looking dead to a proxy; and a
        shutdown meanwhile ends the video at once, within its grace."""
        began = time.perf_counter()
        next_line = began + self.waiting_seconds if self.waiting_seconds else math.inf
        result = asyncio.ensure_future(self.run.process(frame))
        try:
            while not (await asyncio.wait([result], timeout=DRAIN_CHECK_S))[0]:
                self._check_draining(frame.capture_ms)
                if time.perf_counter() < next_line:
                    continue
                next_line += self.waiting_seconds
                waiting_for = "frame" if self.run.built else "graph"
                waited_ms = (time.perf_counter() - began) * 1000.0
                await self._write(lines.waiting_line(waiting_for, waited_ms))
                self.metrics.video_waiting_lines.inc()
            return result.result()
        finally:
            if not result.done():  # the client left while it waited
                result.cancel()
                await asyncio.wait([result])

    async def _write(self, line: bytes) -> None:
        try:
            async with asyncio.timeout(self.send_timeout):
                await self.response.write(line)
        except TimeoutError:
            # A client that reads nothing would hold its engine slot for ever.
            if self.request.transport is not None:
                self.request.transport.abort()
            raise ClientGone() from None
        except (ConnectionError, RuntimeError):
            raise ClientGone() from None

    def _bound_send_buffer(self) -> None:
        transport = self.request.transport
        sock = None if transport is None else transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)

    async def _write_eof(self) -> None:
        try:
            await self.response.write_eof()
        except (ConnectionError, RuntimeError):
            raise ClientGone() from None

    def _summary(
        self, error: HolotrackError | None, started: float, processing: float
    ) -> dict[str, Any]:
        now = time.perf_counter()
        tally, reader = self.tally, self.reader
        seconds = now - processing
        summary: dict[str, Any] = {
            "frames": tally.frames,
            "with_person": tally.with_person,
            "errors": tally.errors,
            "decoded": reader.decoded,
            "skipped": reader.skipped,
            "reps": self.analysis.reps(),
            "elapsed_ms": round((now - started) * 1000.0, 1),
            "processing_ms": round(seconds * 1000.0, 1),
            "fps": round(tally.frames / seconds, 2) if seconds > 0 else 0.0,
            "inference_ms_mean": _mean(tally.inference_ms),
            "decode_ms_mean": _mean(tally.decode_ms),
            "wait_ms_mean": _mean(tally.wait_ms),
            "video": reader.info.as_json(),
            "cut": reader.cut,
            "cut_by": reader.limited_by if reader.cut else None,
            "complete": error is None and not reader.cut,
            "error": None if error is None else {"error": error.code, "detail": error.detail},
        }
        # As a photo's answer says it: a video of nobody was 25 frames, complete, and every
        # part null, which read as a success.
        nobody = {"code": "no_person", "message": "no person was found in any frame"}
        summary["warnings"] = [nobody] if tally.frames and not tally.with_person else []
        if reader.unkeyed:
            summary["warnings"].append(unkeyed_warning(reader))
        if reader.backwards:
            summary["warnings"].append(backwards_warning(reader.backwards))
        workout = self.analysis.summary()
        if workout is not None:
            summary["workout"] = workout
        return summary


def unkeyed_warning(reader: VideoReader) -> dict[str, str]:
    stated, first = reader.info.frames, f"{reader.first_ms:.0f} ms"
    if stated is not None:
        lost = f"the first {reader.unkeyed} of the {stated} frames the file lists (before {first})"
    else:
        lost = f"about {reader.unkeyed} frames at its {reader.info.fps:g} fps (before {first})"
    return {
        "code": "starts_between_keyframes",
        "message": (
            f"{lost} could not be decoded: the video starts between keyframes, as a cut that "
            "copies the stream without re-encoding can make, so decoding began at the first "
            "keyframe; times stay on the file's clock. Re-encode the cut to keep those "
            "frames (ffmpeg -ss START -i IN -c:v libx264 OUT.mp4)"
        ),
    }


def backwards_warning(frames: int) -> dict[str, str]:
    return {
        "code": "time_goes_back",
        "message": (
            f"{frames} {'frame is' if frames == 1 else 'frames are'} stamped earlier than a "
            "frame before (the file's "
            "clock goes back, as in files joined without re-encoding): they were left out "
            "(counted in skipped), so the times stay in order"
        ),
    }


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 2) if values else None
