"""POST /api/video: check the options and the room, spool the upload, probe it (every
refusal is an HTTP status with a JSON reason, before the first line), then stream."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from pathlib import Path

from aiohttp import web
from multidict import MultiMapping

from webapp import json_text
from webapp.access.http import charge_video_seconds, hold_session, video_seconds_left
from webapp.access.service import Hold, VideoSeconds
from webapp.analysis import AvatarOptions
from webapp.analysis.fitness import Exercise, UnknownExercise
from webapp.config import Config
from webapp.errors import BadOptionError, NotAVideoError
from webapp.keys import CONFIG, LIVE, METRICS, SCHEDULER, VIDEO_COUNTED, VIDEOS
from webapp.live.analysis import SessionAnalysis
from webapp.live.guard import client_address, peer_address
from webapp.live.options import SessionOptions
from webapp.uploads import refuse_cross_site
from webapp.video import lines
from webapp.video.decode import VideoFrame, VideoReader
from webapp.video.run import VideoRun
from webapp.video.stream import VideoStream
from webapp.video.upload import UploadAbandoned, spooled_video

log = logging.getLogger(__name__)
OPTIONS = frozenset({"rig", "blendshapes", "exercise", "smoothing"})
# nginx's status for a request whose client closed the connection first; only counted and
# logged, as the client is not there to read it.
CLIENT_CLOSED = 499
SHUT_DOWN = 503  # what a client would have been told, had the connection stayed to tell it
SWITCHES = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
# As docs/api.md gives them: "1 or 0" alone sent one who wrote rig=on to the docs for the rest.
SWITCH_WORDS = "1 or 0 (true or false, yes or no)"
# A video of unstated length is cut at what its key has left of the hour, but not shorter.
MIN_UNSTATED_SECONDS = 1.0


async def video(request: web.Request) -> web.StreamResponse:
    # Its answers are counted by status where /predict's are (ops.count_requests), as
    # json_errors and the access layer give them; here only those no answer carries: the
    # stream's 200 as it starts (it may end hours later) and an upload abandoned.
    try:
        return await _video(request)
    except UploadAbandoned:
        _abandoned(request)
        return web.Response(status=CLIENT_CLOSED)


def _count(request: web.Request, status: int) -> None:
    request[VIDEO_COUNTED] = True
    request.app[METRICS].video_requests.labels(str(status)).inc()


def _abandoned(request: web.Request) -> None:
    # No one is left to answer, and it is no server error: counted, one line at INFO.
    peer = peer_address(request, request.app[CONFIG])
    if request.app[SCHEDULER].draining:
        # The server's shutdown cancels the uploads it did not wait for, which read as the
        # client's leaving: an operator looking for lost uploads was told the clients left.
        log.info("video upload from %s cut short: the server is shutting down", peer)
        _count(request, SHUT_DOWN)
        return
    log.info("video upload from %s abandoned: the client closed the connection", peer)
    _count(request, CLIENT_CLOSED)


async def _video(request: web.Request) -> web.StreamResponse:
    started = time.perf_counter()
    config = request.app[CONFIG]
    scheduler = request.app[SCHEDULER]
    options = parse_query(request.query, request.app[LIVE].exercises)
    refuse_cross_site(request, config)
    # A full server refuses before the body is read, so a refused client wastes no upload.
    client = client_address(request, config)
    arrival = request.app[VIDEOS].admit(scheduler, client, options.avatar.blendshapes)
    run = VideoRun(scheduler, config.request_timeout)
    hold: Hold | None = None
    answering = False
    try:
        # Held from before the upload, so a key at its limit sends no body for nothing.
        hold = hold_session(request)
        async with spooled_video(
            request, config.video_max_bytes, config.upload_timeout, OPTIONS
        ) as path:
            reader = await asyncio.to_thread(open_reader, path, config)
            charge: VideoSeconds | None = None
            try:
                # The first frame is decoded before the answer starts, so a file that opens
                # but does not decode still gets its 400.
                first = await asyncio.to_thread(reader.next)
                if first is None:
                    raise NotAVideoError("the video has no frame within --video-max-seconds")
                # A live session may have taken the last slot during the upload: the 503
                # comes before any charge. Nothing is awaited between the two, so the slot
                # is still this video's when the key is charged (or refused, and it closes).
                slot = run.open(blendshapes=options.avatar.blendshapes)
                # A key's video_seconds_per_hour is charged whole before the first line; a
                # container that does not say its length is charged the longest allowed,
                # or what its key has left of the hour, and is cut there.
                # Settled to the seconds decoded when the video ends (stream.py), or here
                # when it ends otherwise (a client gone, a failure).
                seconds = _seconds(request, reader, config)
                if seconds < config.video_max_seconds and reader.info.duration_ms is None:
                    reader.limit(seconds, "video_seconds_per_hour")
                charge = charge_video_seconds(request, seconds)
                arrival.arrived()
                info = reader.info.as_json()
                peer = peer_address(request, config)
                log.info(
                    "%s: video %s from %s",
                    slot.id,
                    json_text.as_text(info),
                    peer,
                    extra={"session": slot.id, "event": "video_start", "peer": peer, **info},
                )
                answering = True
                return await _stream(request, run, reader, options, first, started, charge)
            finally:
                try:
                    await asyncio.to_thread(reader.close)
                finally:
                    if charge is not None:
                        charge.settle(reader.decoded_seconds)
    except asyncio.CancelledError:
        # python -m webapp cancels the handler of a client that left (handler_cancellation):
        # before the answer began, that is an upload abandoned, as a reset one is; after,
        # _stream counts a video that ended disconnected.
        if not answering:
            _abandoned(request)
        raise
    finally:
        arrival.release()
        run.close()
        if hold is not None:
            hold.release()


async def _stream(
    request: web.Request,
    run: VideoRun,
    reader: VideoReader,
    options: SessionOptions,
    first: VideoFrame,
    started: float,
    charge: VideoSeconds,
) -> web.StreamResponse:
    config, metrics = request.app[CONFIG], request.app[METRICS]
    response = web.StreamResponse(
        headers={"Content-Type": lines.CONTENT_TYPE, "Cache-Control": "no-store"}
    )
    await response.prepare(request)
    _count(request, 200)
    stream = VideoStream(
        request,
        response,
        run,
        reader,
        SessionAnalysis(options, request.app[LIVE].exercises),
        send_timeout=config.send_timeout,
        waiting_seconds=config.video_waiting_seconds,
        metrics=metrics,
        charge=charge,
    )
    # A handler cancelled when its client left (aiohttp's handler_cancellation) ends here too.
    outcome = "disconnected"
    try:
        outcome = await stream.serve(first, started)
    except asyncio.CancelledError:
        # The shutdown cancels a video stuck writing to a slow reader: stopped, not left.
        if request.app[SCHEDULER].draining:
            outcome = "stopped"
        raise
    finally:
        metrics.videos_ended.labels(outcome).inc()
    return response


def _seconds(request: web.Request, reader: VideoReader, config: Config) -> float:
    """The seconds to charge the key before the first line."""
    duration_ms = reader.info.duration_ms
    if duration_ms is not None:
        return min(duration_ms / 1000.0, config.video_max_seconds)
    # Of a length nobody knows, the key's hour pays what is left of it and the video is cut
    # there: a key allowed less than --video-max-seconds could otherwise never send one.
    # Under a second left is refused (429, until a second is free), rather than cut after
    # a frame or two.
    left = video_seconds_left(request)
    if left is None or left >= config.video_max_seconds:
        return config.video_max_seconds
    return max(left, MIN_UNSTATED_SECONDS)


def open_reader(path: Path, config: Config) -> VideoReader:
    return VideoReader(
        path,
        max_seconds=config.video_max_seconds,
        max_pixels=config.video_max_pixels,
        max_fps=config.video_max_fps,
    )


def parse_query(query: MultiMapping[str], exercises: Mapping[str, Exercise]) -> SessionOptions:
    """?rig=1, ?blendshapes=1 (with the rig), ?exercise=NAME (the live names),
    ?smoothing=off; anything else is a 400."""
    unknown = sorted(set(query) - OPTIONS)
    if unknown:
        raise BadOptionError(
            f"unknown query parameter {unknown[0]!r}; use rig, blendshapes, exercise or smoothing"
        )
    # ?rig=1&rig=0 would otherwise quietly mean whichever came first.
    repeated = sorted(key for key in set(query) if len(query.getall(key)) > 1)
    if repeated:
        raise BadOptionError(f"query parameter {repeated[0]!r} is given more than once")
    rig = SWITCHES.get(query.get("rig", "0").lower())
    if rig is None:
        raise BadOptionError(f"rig must be {SWITCH_WORDS}")
    blendshapes = SWITCHES.get(query.get("blendshapes", "0").lower())
    if blendshapes is None:
        raise BadOptionError(f"blendshapes must be {SWITCH_WORDS}")
    if blendshapes and "rig" in query and not rig:
        raise BadOptionError("blendshapes come inside the rig: leave out rig=0")
    smoothing = query.get("smoothing", "on").lower()
    if smoothing not in {"on", "off"}:
        raise BadOptionError("smoothing must be on or off")
    exercise = query.get("exercise")
    if exercise is not None and exercise not in exercises:
        raise BadOptionError(UnknownExercise(exercise, tuple(exercises)).reason)
    defaults = AvatarOptions()
    avatar = AvatarOptions(
        smoothing=defaults.smoothing if smoothing == "on" else None,
        rig=rig or blendshapes,
        blendshapes=blendshapes,
    )
    return SessionOptions(avatar=avatar, exercise=exercise)
