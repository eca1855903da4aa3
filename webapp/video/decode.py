"""Decoding a video file frame by frame with OpenCV's FFmpeg build, one JPEG per frame kept.

OpenCV's wheel (opencv-python-headless, already pinned) carries FFmpeg, so MP4, MOV, MKV and
WebM decode with no new dependency; it reads from a file, which is why uploads are spooled
to a bounded temporary file first. Every call here blocks: the server runs them on a thread,
and only one decoded frame is held at once.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
from cv2.typing import MatLike

from webapp.engine.imaging import MAX_SIDE, VIDEO_WORK_PIXELS
from webapp.errors import (
    NotAVideoError,
    TooLargeError,
    TooManyPixelsError,
    UnsupportedTypeError,
)
from webapp.video.container import (
    Mirror,
    frames_before_edit,
    lists_frames,
    mirroring,
    video_track,
)
from webapp.video.sample_tables import check_sample_tables, most_samples

# Frames go to the worker as JPEG, as a camera's do. The model sees at most 256 px a side
# of the body and crops face and hands from the frame, so a larger frame costs encode and
# decode time for nothing: bigger frames are scaled down to about 720p (VIDEO_WORK_PIXELS).
JPEG_QUALITY = 90
# A decode that ends more than this short of the frames the container lists is reported
# (a Matroska container's count is an estimate from its duration, off by a frame or so).
SHORT_FRAMES = 2
SHORT_SHARE = 0.01
# Times that differ by float error only (100.00000000000001 and 99.99999999999999 ms) fall
# in one slot.
SLOT_EPSILON = 1e-6
# A container's average rate is worked out from its times: 29.97 or 30.0002 for a 30.
FPS_TOLERANCE = 0.001
# What OpenCV says of a Matroska stream that states no rate (a browser's MediaRecorder
# writes no DefaultDuration): one over its time base, 1 ms. No camera films at this rate.
UNSTATED_FPS = 1000.0

OPENCV_ERRORS = 2  # OpenCV's cv::utils::logging::LOG_LEVEL_ERROR: errors, not warnings

# FFmpeg writes every damaged macroblock of a corrupt file to fd 2, past the server's log
# format (45,923 lines for one 1.4 MB upload); what went wrong reaches the client in the
# summary instead. OpenCV reads this once, when it first opens its FFmpeg backend, so it is
# set here, before any capture exists; an operator's own setting wins. -8 is AV_LOG_QUIET.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
# OpenCV's own warnings go to fd 2 as well: a sound-only MP4 printed "backend is generally
# available but can't be used to capture by name" among the log's records, JSON ones too.
# Its errors still show; so does any level an operator sets.
if "OPENCV_LOG_LEVEL" not in os.environ:
    cv2.setLogLevel(OPENCV_ERRORS)
# The wheel's FFmpeg has only its own AV1 decoder, which needs hardware acceleration: an
# AV1 video (a browser's or YouTube's) opens, with its size and rate, and no frame decodes.
UNDECODABLE = {b"AV01": "AV1"}


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float  # as the container states it; 0.0 when it does not
    frames: int | None  # as the container lists them (Matroska, fragmented MP4: never)
    duration_ms: float | None  # from the first frame to the end
    rotation: int = 0  # degrees a player turns the stored frames (clockwise) to show them
    start_ms: float = 0.0  # the container's clock at the first frame (to the nearest frame)
    mirrored: bool = False  # flipped left to right before the rotation
    # False when `fps` is OpenCV's guess from the time base, not the container's word.
    fps_stated: bool = True

    def as_json(self) -> dict[str, object]:
        return {
            "width": self.width,
            "height": self.height,
            "fps": round(self.fps, 3) if self.fps_stated else None,
            "frames": self.frames,
            "duration_ms": None if self.duration_ms is None else round(self.duration_ms, 1),
            "rotation": self.rotation,
            "mirrored": self.mirrored,
            "start_ms": round(self.start_ms, 1),
        }


@dataclass(frozen=True)
class VideoFrame:
    decoded: int  # its index among every decoded frame, kept or not
    time_ms: float  # its presentation time, from the first frame's (FFmpeg's own count)
    jpeg: bytes


def encode(bgr: MatLike) -> bytes:
    """The JPEG the worker gets for one decoded frame, scaled down to VIDEO_WORK_PIXELS."""
    height, width = bgr.shape[:2]
    if width * height > VIDEO_WORK_PIXELS:
        scale = math.sqrt(VIDEO_WORK_PIXELS / (width * height))
        size = (max(1, int(width * scale)), max(1, int(height * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise NotAVideoError("a decoded frame could not be encoded as JPEG")
    return bytes(jpeg.tobytes())


def _stretch(capture: cv2.VideoCapture, *, sideways: bool) -> tuple[float, float]:
    """(across, along): the factors that make an upright frame's pixels square. The stored
    frames' pixels are SAR wide for 1 tall (FFmpeg gives 0/1 when unknown: square); the
    narrower side is stretched, so no detail is lost, and a frame turned upright from its side
    is stretched along its height."""
    num, den = capture.get(cv2.CAP_PROP_SAR_NUM), capture.get(cv2.CAP_PROP_SAR_DEN)
    sar = num / den if num > 0 and den > 0 and math.isfinite(num / den) else 1.0
    stored = (sar, 1.0) if sar >= 1.0 else (1.0, 1.0 / sar)
    return (stored[1], stored[0]) if sideways else stored


def _as_shown(bgr: MatLike, m: Mirror) -> MatLike:
    """The stored frame as its mirroring matrix shows it: pixel (x, y) at (a*x + c*y,
    b*x + d*y), moved back into the frame."""
    if m.sideways:  # x' = c*y, y' = b*x: the transpose, then each axis the matrix negates
        bgr = cv2.transpose(bgr)
        flip_x, flip_y = m.c < 0, m.b < 0
    else:
        flip_x, flip_y = m.a < 0, m.d < 0
    if flip_x and flip_y:
        return cv2.flip(bgr, -1)
    if flip_x or flip_y:
        return cv2.flip(bgr, 1 if flip_x else 0)
    return bgr


class VideoReader:
    """The frames of one file in order, decimated to at most `max_fps` a second."""

    def __init__(self, path: Path, *, max_seconds: float, max_pixels: int, max_fps: float) -> None:
        self.max_ms = max_seconds * 1000.0
        self.max_pixels = max_pixels
        self.max_fps = max_fps
        self.decoded = 0
        self.skipped = 0  # decimated to keep to max_fps, or out of order
        self.backwards = 0  # frames stamped before a frame decoded earlier: left out
        self.cut = False  # decoding stopped at the duration limit
        self.limited_by = "video_max_seconds"  # the setting behind that limit
        self.last_ms: float | None = None  # the time of the last frame decoded
        self.unkeyed = 0  # frames listed before the first the decoder could start from
        self._previous_ms: float | None = None
        self._across = self._along = 1.0  # the stretch that squares the pixels (_stretch)
        self._first_ms: float | None = None
        self._last_slot = -1
        # A client that leaves cancels the handler while a decode runs on its thread, and
        # the handler's cleanup then closes the reader: FFmpeg aborted the whole server when
        # its capture was released under a running grab(). close() waits for the frame.
        self._lock = threading.Lock()
        self._closed = False
        with path.open("rb") as file:
            # FFmpeg indexes every sample a file lists as it opens it, before any limit here
            # is looked at: 1.2 KB claiming 89 million samples took 2.2 GB.
            check_sample_tables(file, most_samples(max_seconds))
            self._listed = lists_frames(file)
            track = video_track(file)
            self._hidden = frames_before_edit(track)
            self._mirror = mirroring(track)
        self._capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        # A phone stores a portrait video sideways with a rotation for players to apply;
        # this wheel's FFmpeg backend leaves it unapplied unless asked, and the model then
        # saw a person lying on their side. Sizes read after this are the upright ones. A
        # mirroring matrix it would take for a rotation alone is applied here instead.
        self._capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0 if self._mirror else 1)
        try:
            self.info = self._probe()
        except Exception:
            self._capture.release()
            raise
        # Slots start half a frame early, so each keeps the frame nearest its start (ties to
        # the earlier), and a frame whose time is rounded (Matroska's whole milliseconds)
        # stays in its own slot.
        frame_ms = 1000.0 / self.info.fps if self.info.fps else 0.0
        self._lead_ms = min(frame_ms, 1000.0 / max_fps) / 2.0
        # No faster than the limit on average, a video keeps every frame: a phone's 30 fps
        # is 28 to 39 ms between frames, and slotted, two fell in one slot now and then (4
        # of 50 frames lost). The rate is the container's word, which a file may bend (a
        # Matroska file of 3000 frames in 3 s said 1 fps), so a frame beyond its slot is
        # kept only within max_fps a second since the first, and a second's worth more.
        # A file that states no rate is bounded the same way: a browser's 30 fps WebM said
        # 1000 fps, was slotted, and lost a frame wherever two of its uneven gaps met.
        self._every = not self.info.fps_stated or (
            0.0 < self.info.fps <= max_fps * (1.0 + FPS_TOLERANCE)
        )
        self._kept = 0

    def _probe(self) -> VideoInfo:
        """The container's own figures, checked against the limits before any frame runs."""
        capture = self._capture
        if not capture.isOpened():
            # FFmpeg says no more than this; a sound file in a video container (an .m4a,
            # an Opus WebM) fails here too, and should not send anyone looking for damage.
            raise NotAVideoError(
                "the file could not be opened as a video: it may be corrupt, or hold "
                "no video track (sound only)"
            )
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width <= 0 or height <= 0:
            raise NotAVideoError("the file has no video stream")
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        fps = fps if math.isfinite(fps) and fps > 0 else 0.0
        # Frames a cut's edit list starts after are decoded but never shown (container.py).
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) - self._hidden
        duration = count * 1000.0 / fps if count > 0 and fps else None
        # Matroska and fragmented MP4 list no frame count: FFmpeg's is their duration times
        # a rate guessed from the first frames, twice the real count for a phone's video
        # that slows in the dark.
        frames = count if count > 0 and self._listed else None
        mirror = self._mirror
        if mirror is None:
            rotation = int(capture.get(cv2.CAP_PROP_ORIENTATION_META)) % 360
            sideways = rotation in (90, 270)
        else:
            rotation, sideways = mirror.rotation, mirror.sideways
            if sideways:  # the stored size, which the matrix turns
                width, height = height, width
        self._across, self._along = _stretch(capture, sideways=sideways)
        width, height = self._shown_size(width, height, "the video")
        stated = self._listed or fps < UNSTATED_FPS
        return VideoInfo(
            width, height, fps, frames, duration, rotation, mirrored=bool(mirror), fps_stated=stated
        )

    def _shown_size(self, width: int, height: int, what: str) -> tuple[int, int]:
        """The upright width x height of `what`, stretched as a player shows it, refused over
        the limits before any frame is stretched to it: a pixel aspect of 1000:1 made each
        320x240 frame 320000x240, which no limit had looked at, and the main process grew
        by 250 MB (1 GB at 4000:1) while every frame was stretched, encoded and refused."""
        shown = round(width * self._across), round(height * self._along)
        size = f"{width}x{height}"
        if shown != (width, height):
            size += f", shown {shown[0]}x{shown[1]} for its pixel aspect"
        pixels = shown[0] * shown[1]
        if pixels > self.max_pixels:
            high = self._fitting_height(width, height, shown)
            raise TooManyPixelsError(
                f"{what} is {size} ({pixels} pixels a frame); the limit is {self.max_pixels}: "
                "scale it down first (frames are tracked at about 1280x720 anyway; ffmpeg "
                f"-i IN -vf scale=-2:{high} OUT.mp4)"
            )
        # Nor a side longer than a still image may have, whatever its pixel count: the
        # model's worker aborts on a side of 32767 px (imaging.MAX_SIDE).
        if max(shown) > MAX_SIDE:
            raise TooManyPixelsError(f"{what} is {size}; the longest side may be {MAX_SIDE} px")
        return shown

    def _fitting_height(self, width: int, height: int, shown: tuple[int, int]) -> int:
        """The height the 413's `scale=-2:H` names: even, at most 1080, and small enough that
        the frame it makes (its width as ffmpeg's -2 rounds it, stretched as shown) is within
        the limits. A fixed 1080 upscaled a 640x360 video under a lowered
        --video-max-pixels, and a very wide one stayed over the limit."""
        across, along = shown[0] / width, shown[1] / height
        high = min(1080, int(height * math.sqrt(self.max_pixels / (shown[0] * shown[1]))))
        high -= high % 2
        while high > 2:
            wide = math.ceil(width * high / height / 2) * 2
            made = round(wide * across), round(high * along)
            if made[0] * made[1] <= self.max_pixels and max(made) <= MAX_SIDE:
                break
            high -= 2
        return max(2, high)

    @property
    def first_ms(self) -> float:
        """The first decoded frame's time, from the stream's start (0 before it)."""
        return self._first_ms or 0.0

    @property
    def decoded_seconds(self) -> float:
        """The length of video decoded so far: from the first frame to the end of the last
        one (its start and one frame interval), at most max_seconds. A key's video seconds
        are settled to it."""
        if self.last_ms is None or self._first_ms is None:
            return 0.0
        if self.info.fps:
            frame_ms = 1000.0 / self.info.fps
        else:
            frame_ms = 0.0 if self._previous_ms is None else self.last_ms - self._previous_ms
        return min(self.last_ms - self._first_ms + frame_ms, self.max_ms) / 1000.0

    def limit(self, seconds: float, by: str) -> None:
        """Decoding stops `seconds` from the first frame, lowered by the setting `by`."""
        with self._lock:
            if seconds * 1000.0 < self.max_ms:
                self.max_ms, self.limited_by = seconds * 1000.0, by

    def next(self) -> VideoFrame | None:
        """The next frame to process, or None at the end (or at the duration limit, or once
        closed)."""
        with self._lock:
            return None if self._closed else self._next()

    def _next(self) -> VideoFrame | None:
        while self._capture.grab():
            if self.decoded == 0:
                self._start()
            time_ms = float(self._capture.get(cv2.CAP_PROP_POS_MSEC))
            index = self.decoded
            self.decoded += 1
            if self.last_ms is not None and time_ms < self.last_ms:
                # A clock that goes back (files joined, a glitched muxer): kept, the answer
                # was a recording /api/export refused, and smoothing ran backwards in time.
                # The furthest time reached stays the video's end and what it used: a tail
                # stamped from 0 again made it "truncated", and its key's charge 2 s of 7.
                self.backwards += 1
                self.skipped += 1
                continue
            self._previous_ms, self.last_ms = self.last_ms, time_ms
            if time_ms >= self.max_ms and not self._listed_within(index, time_ms):
                # The container understated its length: stop where the limit is (a frame
                # at 600.0 s begins the 601st second).
                self.cut = True
                return None
            slot = self._slot(time_ms)
            if slot <= self._last_slot and not self._within_rate(time_ms):
                self.skipped += 1
                continue
            # The first frame always: under one frame's worth in all (--video-max-fps 0.001,
            # or a key's last 20 ms of its hour) every frame was skipped, an answer of none.
            most = max(1, math.floor(self.max_ms * self.max_fps / 1000.0 + SLOT_EPSILON))
            if self._kept >= most:
                # No more than the limits' frames in all (a video a hair over max_fps keeps
                # a frame more now and then): any answer is a recording POST /api/export
                # takes (its --max-export-frames is 600 s at 30 fps; it refused 18,001).
                # Decimated like any frame past the rate: the video is within the time.
                self.skipped += 1
                continue
            try:
                ok, bgr = self._capture.retrieve()
            except cv2.error:  # a container whose stated size is not its frames'
                ok = False
            if not ok:
                raise NotAVideoError(f"frame {index} could not be decoded")
            if self._mirror is not None:
                bgr = _as_shown(bgr, self._mirror)
            height, width = bgr.shape[:2]
            # A container's stated size need not be its frames': each is checked as well.
            shown = self._shown_size(width, height, f"frame {index}")
            self._last_slot = slot
            self._kept += 1
            return VideoFrame(index, time_ms, encode(self._shown(bgr, shown)))
        if self.decoded == 0:
            raise self._undecodable()
        self._check_whole()
        return None

    def _listed_within(self, index: int, time_ms: float) -> bool:
        """Whether frame `index`, stamped at or past the limit, is still one of the frames
        the container lists in a length already held to the limit (_start). OpenCV's clock
        can put the last of them a frame late: a stream copy cut from a B-frame, 2.0 s and
        60 frames, stamps its last at 2000 ms, and at --video-max-seconds 2 that frame was
        lost and the whole video said to be cut."""
        frames, duration = self.info.frames, self.info.duration_ms
        if frames is None or duration is None or not self.info.fps:
            return False
        late_ms = 1000.0 / self.info.fps
        return index < frames and duration <= self.max_ms and time_ms < self.max_ms + late_ms

    def _undecodable(self) -> NotAVideoError | UnsupportedTypeError:
        """Why no frame decoded: a codec this FFmpeg cannot decode is named, not taken for
        damage."""
        tag = int(self._capture.get(cv2.CAP_PROP_FOURCC)) & 0xFFFFFFFF  # any double fits
        fourcc = tag.to_bytes(4, "little")
        codec = UNDECODABLE.get(fourcc.upper())
        if codec is not None:
            return UnsupportedTypeError(
                f"the video is {codec}, which this server's decoder (the FFmpeg inside "
                "OpenCV) cannot decode; send H.264, HEVC, VP8 or VP9 (ffmpeg -i IN -c:v "
                "libx264 OUT.mp4 re-encodes it)"
            )
        return NotAVideoError("no frame of the video could be decoded; it may be corrupt")

    def _start(self) -> None:
        """At the first frame: where the container's clock starts, and so how long the
        video lasts. A file cut with FFmpeg's -copyts, or written with -output_ts_offset,
        stamps its first frame late (5000 ms), and a Matroska file then states its duration
        up to its end on that clock (7000 ms for 2 s): taken as the length, a whole video
        was 'truncated or corrupt', and one cut from ten minutes in was too long. FFmpeg
        already counts each frame's time from the stream's start."""
        info = self.info
        # The first frame's time on the container's clock, in frames at info.fps: the one
        # figure of it OpenCV gives.
        frames = float(self._capture.get(cv2.CAP_PROP_PTS))
        clock_ms = frames * 1000.0 / info.fps if info.fps and math.isfinite(frames) else 0.0
        # A cut that copies the stream can start between keyframes: the decoder has nothing
        # to build the first frames on and begins at the next keyframe, seconds in, where
        # FFmpeg's count, from the stream's start, says it is. Taken for damage, a whole
        # cut was 'truncated or corrupt'; it is a warning instead.
        first_ms = float(self._capture.get(cv2.CAP_PROP_POS_MSEC))
        first_ms = max(0.0, first_ms) if math.isfinite(first_ms) else 0.0
        unkeyed = round(first_ms * info.fps / 1000.0)
        self.unkeyed = unkeyed if unkeyed > SHORT_FRAMES else 0
        # Where the stream starts on the container's clock: each line's time counts from it.
        start_ms = max(0.0, clock_ms - first_ms)
        duration = info.duration_ms
        if not self._listed and duration is not None:
            # Where the frames are listed, the duration comes from them: a length already.
            # Else it runs on the container's clock, from where a -copyts file starts it.
            duration = max(0.0, duration - start_ms)
        self.info = replace(info, duration_ms=duration, start_ms=start_ms)
        if duration is not None and duration > self.max_ms:
            raise TooLargeError(
                f"the video lasts {duration / 1000.0:.1f} s; the limit is "
                f"{self.max_ms / 1000.0:g} s"
            )

    def _shown(self, bgr: MatLike, size: tuple[int, int]) -> MatLike:
        """The frame in the shape a player shows it (`size`, from _shown_size): pixels that
        are not square (a sample aspect ratio other than 1) stretched along the axis they
        are wide or tall in."""
        height, width = bgr.shape[:2]
        if (width, height) == size:
            return bgr
        return cv2.resize(bgr, size, interpolation=cv2.INTER_LINEAR)

    def _slot(self, time_ms: float) -> int:
        """The 1/max_fps s slot a frame falls in, counted from the first frame. The first
        frame of each slot is kept: at most max_fps a second, as near every 1/max_fps s as
        the video's own frames allow."""
        if self._first_ms is None:
            self._first_ms = time_ms
        since = time_ms - self._first_ms + self._lead_ms
        return math.floor(since * self.max_fps / 1000.0 + SLOT_EPSILON)

    def _within_rate(self, time_ms: float) -> bool:
        """Whether a frame that shares a slot may be kept: in a video no faster than
        max_fps, while the frames kept stay within max_fps a second and one second more."""
        if not self._every or self._first_ms is None:
            return False
        since_s = max(0.0, time_ms - self._first_ms) / 1000.0
        return self._kept < self.max_fps * (since_s + 1.0)

    def _check_whole(self) -> None:
        """FFmpeg ends a damaged or truncated file early without an error of its own; a
        decode well short of the frames the container lists is one, not a complete video.
        A Matroska file or a fragmented MP4 lists no frames, so there the last frame's time
        must reach near the duration it states."""
        if not self._listed:
            self._check_reached_end()
            return
        stated = self.info.frames
        short = max(SHORT_FRAMES, stated * SHORT_SHARE) if stated is not None else 0.0
        if stated is None or self.decoded >= stated - short:
            return
        if self.decoded + self.unkeyed >= stated - short:
            # Counted by the clock, one shown among them may not be in the file at all (a
            # B-frame the cut left out); counted by the list, they are exact.
            self.unkeyed = min(self.unkeyed, max(0, stated - self.decoded))
            return
        where = "" if self.last_ms is None else f", the last at {self.last_ms:.0f} ms"
        of = "" if self.info.duration_ms is None else f" of {self.info.duration_ms:.0f} ms"
        raise NotAVideoError(
            f"decoding ended after {self.decoded} of the {stated} frames the container "
            f"lists{where}{of}; the file is truncated or corrupt (or its edit list hides "
            "frames)"
        )

    def _check_reached_end(self) -> None:
        duration, last = self.info.duration_ms, self.last_ms
        if duration is None or last is None:
            return
        # The last frame starts up to one of its own intervals before the end, and the
        # stated duration is rounded to the guessed rate's frames.
        stated_ms = 1000.0 / self.info.fps if self.info.fps else 0.0
        own_ms = 0.0 if self._previous_ms is None else last - self._previous_ms
        allowed = max(SHORT_FRAMES * max(stated_ms, own_ms), SHORT_SHARE * duration)
        if duration - last <= allowed:
            return
        raise NotAVideoError(
            f"decoding ended after {self.decoded} frames, the last at {last:.0f} ms of the "
            f"{duration:.0f} ms the container states; the file is truncated or corrupt"
        )

    def close(self) -> None:
        """Releases the decoder once no frame is being decoded; next() then returns None."""
        with self._lock:
            self._closed = True
            self._capture.release()
