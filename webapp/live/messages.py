"""Protocol v1 both ways: parsing what a client sends on /ws (every rejection is a close code
with a reason), and encoding what the server sends back."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from webapp import json_text
from webapp.analysis.rig.emotion import Emotion
from webapp.analysis.rig.face import Gaze
from webapp.analysis.rig.quat import Quat
from webapp.analysis.rig.straight_ahead import Rest
from webapp.config import Config
from webapp.engine.jobs import Frame
from webapp.engine.wire import FrameResult
from webapp.errors import shown
from webapp.live.errors import SessionClosed
from webapp.live.options import rep_target
from webapp.protocol import FRAME_HEADER, VERSION, ClientType, Close, ServerType, Track

MIN_FPS, MAX_WANTED_FPS = 0.5, 60.0
# Frames must be one of the encodings a browser canvas produces: JPEG and PNG by their
# first bytes, WebP by its RIFF header's form type (bytes 4-8 are the file's size).
MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")
# The end of a signed 64-bit clock in microseconds (about 292,000 years): no real clock
# gets there, and past ~1.8e305 ms the worker's microseconds would overflow a float.
MAX_CAPTURE_MS = 2**63 / 1000.0


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        # RecursionError: arrays or objects nested deeper than the parser's stack.
        raise SessionClosed(Close.PROTOCOL, f"{what} is not valid JSON") from None


@dataclass(frozen=True)
class Hello:
    track: Track
    fps: float
    # The whole message, for the options the session reads with its own settings.
    message: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Control:
    """A text message after hello: switch exercise (name, and the new set's target), set
    the set's rep target, ask for the workout so far, calibrate straight ahead (to the last
    frame's when rest is None, to `rest`, or clear it), or hold an emotion."""

    type: ClientType
    name: str | None = None
    target: int | None = None
    rest: Rest | None = None
    clear: bool = False
    emotion: Emotion | None = None


def first_message(text: str) -> dict[str, Any]:
    """The first message as an object: a hello, a watch or an end."""
    message = _loads(text, "the first message")
    if not isinstance(message, dict):
        raise SessionClosed(Close.PROTOCOL, 'the first message must be {"type": "hello", ...}')
    return message


def check_version(message: Mapping[str, Any]) -> None:
    """A hello's or a watch's `version`: 1, and not `true` (which equals 1 in Python)."""
    version = message.get("version")
    if isinstance(version, bool) or version != VERSION:
        raise SessionClosed(
            Close.PROTOCOL, f"protocol version {shown(version)} is not supported; use {VERSION}"
        )


def parse_hello(message: Mapping[str, Any]) -> Hello:
    """The first message (`first_message`), which must be a hello."""
    if message.get("type") != ClientType.HELLO:
        raise SessionClosed(Close.PROTOCOL, 'the first message must be {"type": "hello", ...}')
    check_version(message)
    # null is a field left out: clients in typed languages (Go, Java, C#) write it for
    # "not set", and some fields took it so while others refused it.
    message = {name: value for name, value in message.items() if value is not None}
    try:
        track = Track(message.get("track", Track.HOLISTIC))
    except ValueError:
        raise SessionClosed(Close.PROTOCOL, 'track must be "holistic" or "pose"') from None
    fps = message.get("fps", 15)
    if (
        isinstance(fps, bool)
        or not isinstance(fps, int | float)
        or (isinstance(fps, float) and not math.isfinite(fps))
    ):
        raise SessionClosed(Close.PROTOCOL, "fps must be a number")
    if not MIN_FPS <= fps <= MAX_WANTED_FPS:
        raise SessionClosed(Close.PROTOCOL, f"fps must be between {MIN_FPS} and {MAX_WANTED_FPS}")
    return Hello(track, float(fps), message)


def parse_end(message: Mapping[str, Any]) -> str:
    """The first message (`first_message`), an end: the resume string it names."""
    check_version(message)
    resume = message.get("resume")
    if not isinstance(resume, str) or not resume:
        raise SessionClosed(
            Close.PROTOCOL, "an end needs the resume string of the paused session's last ready"
        )
    return resume


def parse_frame(data: bytes, max_frame_bytes: int) -> Frame:
    if len(data) < FRAME_HEADER.size:
        raise SessionClosed(
            Close.PROTOCOL, f"a frame needs a {FRAME_HEADER.size}-byte header; got {len(data)}"
        )
    seq, capture_ms = FRAME_HEADER.unpack_from(data)
    image = data[FRAME_HEADER.size :]
    if len(image) > max_frame_bytes:
        raise SessionClosed(
            Close.TOO_BIG, f"frame of {len(image)} bytes; the limit is {max_frame_bytes}"
        )
    if not math.isfinite(capture_ms):
        raise SessionClosed(Close.PROTOCOL, "capture_ms must be a finite number")
    if abs(capture_ms) >= MAX_CAPTURE_MS:
        raise SessionClosed(
            Close.PROTOCOL,
            f"capture_ms must lie strictly between -{MAX_CAPTURE_MS:.4g} and {MAX_CAPTURE_MS:.4g}",
        )
    if image and not (image.startswith(MAGIC) or (image[:4] == b"RIFF" and image[8:12] == b"WEBP")):
        raise SessionClosed(Close.UNSUPPORTED_DATA, "frames must be JPEG, WebP or PNG images")
    return Frame(seq, capture_ms, image)


def parse_control(text: str) -> Control:
    """After hello a client may switch exercise, set its rep target, ask for its workout,
    calibrate straight ahead, or hold an emotion; nothing else."""
    message = _loads(text, "a text message")
    kind = message.get("type") if isinstance(message, dict) else None
    if kind == ClientType.HELLO:
        raise SessionClosed(Close.PROTOCOL, "hello was already received")
    if kind == ClientType.SUMMARY:
        return Control(ClientType.SUMMARY)
    if kind == ClientType.EXERCISE:
        name = message.get("name")
        if not isinstance(name, str):
            raise SessionClosed(Close.PROTOCOL, "an exercise message needs a name")
        return Control(ClientType.EXERCISE, name, rep_target(message.get("target"), "target"))
    if kind == ClientType.TARGET:
        if "reps" not in message:
            raise SessionClosed(Close.PROTOCOL, 'a target message needs "reps" (a number or null)')
        return Control(ClientType.TARGET, target=rep_target(message["reps"], "reps"))
    if kind == ClientType.CALIBRATE:
        return _calibrate(message)
    if kind == ClientType.EMOTION:
        try:
            return Control(ClientType.EMOTION, emotion=Emotion.from_json(message))
        except ValueError as exc:
            raise SessionClosed(Close.PROTOCOL, str(exc)) from None
    if not isinstance(message, dict):
        raise SessionClosed(Close.PROTOCOL, 'a text message must be an object: {"type": ...}')
    raise SessionClosed(Close.PROTOCOL, f"unknown message type {shown(kind)}")


def _calibrate(message: Mapping[str, Any]) -> Control:
    """{"type": "calibrate"}, with "head" (and "gaze") as a calibrated message gave them,
    or with "head": null."""
    if "head" not in message or message["head"] is None:
        if message.get("gaze") is not None:
            raise SessionClosed(Close.PROTOCOL, "a calibrate's gaze comes with its head")
        return Control(ClientType.CALIBRATE, clear="head" in message)
    gaze = message.get("gaze")
    rest = Rest(_unit_quaternion(message["head"]), None if gaze is None else _gaze(gaze))
    return Control(ClientType.CALIBRATE, rest=rest)


def _gaze(value: object) -> Gaze:
    """[left, up]: two numbers between -1 and 1 (the irises' offsets over the eyes' width)."""
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        and all(-1.0 <= v <= 1.0 for v in value)  # NaN and huge integers fail this too
    ):
        return float(value[0]), float(value[1])
    raise SessionClosed(Close.PROTOCOL, "gaze must be [left, up], two numbers from -1 to 1")


def _unit_quaternion(value: object) -> Quat:
    """[x, y, z, w] of length 1 (within rounding: a calibrated message's, sent back)."""
    wrong = SessionClosed(
        Close.PROTOCOL, "head must be a unit quaternion [x, y, z, w], or null to clear it"
    )
    if not isinstance(value, list) or len(value) != 4:
        raise wrong
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise wrong
    try:
        x, y, z, w = (float(v) for v in value)
    except OverflowError:  # an integer with hundreds of digits
        raise wrong from None
    length = math.hypot(x, y, z, w)
    if not 0.99 <= length <= 1.01:  # NaN and infinity fail this too
        raise wrong
    return (x / length, y / length, z / length, w / length)


# -- what the server sends -----------------------------------------------------------------
TURN = json_text.as_text({"type": ServerType.TURN})


def ready(
    session: str,
    hello: Hello,
    fps: float,
    config: Config,
    watch: str,
    resume: str,
    avatar: str | None = None,
    resumed: bool = False,
) -> dict[str, Any]:
    # "avatar" only when the link has one: the camera page then need not send it again.
    own = {} if avatar is None else {"avatar": avatar}
    return {
        "type": ServerType.READY,
        "version": VERSION,
        "session": session,
        "track": hello.track,
        "fps": fps,
        "max_frame_bytes": config.max_frame_bytes,
        "idle_timeout": config.idle_timeout,
        "stats_interval": config.stats_interval,
        "watch": watch,
        "resume": resume,
        "watch_grace": config.watch_grace,
        # 0: the server takes no watchers, so the pages offer no watch link to share.
        "max_watchers": config.max_watchers,
        # The link, its watchers and a workout come from an earlier session of this camera;
        # false for a new link, or a kept link opened again with nothing carried over.
        "resumed": resumed,
        **own,
    }


def result(
    frame: Frame,
    result: FrameResult,
    landmarks: Mapping[str, Any],
    extra: Mapping[str, Any],
    analysis_ms: float,
) -> str:
    """`landmarks` as the session's analysis left them (smoothed or not); `extra` holds
    what the hello asked for beyond them ("rig", "fitness")."""
    return json_text.as_text(
        {
            "type": ServerType.RESULT,
            "seq": frame.seq,
            "capture_ms": frame.capture_ms,
            "image": {"width": result.width, "height": result.height},
            "landmarks": landmarks,
            **extra,
            "timing_ms": {
                "wait": round((frame.started - frame.received) * 1000.0, 2),
                "decode": round(result.decode_ms, 2),
                "inference": round(result.inference_ms, 2),
                "analysis": round(analysis_ms, 2),
            },
        }
    )


def watching(session: str, avatar: str | None = None) -> str:
    # "avatar" only when the link has one, so a link without stays as it always was.
    own = {} if avatar is None else {"avatar": avatar}
    return json_text.as_text({"type": ServerType.WATCHING, "session": session, **own})


def avatar(url: str | None) -> str:
    return json_text.as_text({"type": ServerType.AVATAR, "url": url})


def calibrated(rest: Rest | None) -> str:
    head = None if rest is None else [round(v, 6) for v in rest.head]
    gaze = None if rest is None or rest.gaze is None else [round(v, 6) for v in rest.gaze]
    return json_text.as_text({"type": ServerType.CALIBRATED, "head": head, "gaze": gaze})


def paired(code: str) -> str:
    return json_text.as_text({"type": ServerType.PAIRED, "code": code})


def emotion(held: Emotion) -> str:
    return json_text.as_text({"type": ServerType.EMOTION, **held.to_json()})


def workout(summary: Mapping[str, Any]) -> str:
    return json_text.as_text({"type": ServerType.WORKOUT, **summary})


def error(code: str, message: str, seq: int | None) -> str:
    """An error the session survives; seq is the frame's, None when no frame caused it."""
    return json_text.as_text(
        {"type": ServerType.ERROR, "code": code, "message": message, "seq": seq}
    )


def stats(
    received: int, processed: int, dropped: int, errors: int, fps: float, reps: int | None
) -> str:
    fields: dict[str, Any] = {
        "type": ServerType.STATS,
        "received": received,
        "processed": processed,
        "dropped": dropped,
        "errors": errors,
        "pending": received - processed - dropped - errors,
        "fps": fps,
    }
    if reps is not None:
        fields["reps"] = reps
    return json_text.as_text(fields)
