"""Protocol v1 constants: message types, close codes, the frame header. See docs/protocol.md."""

from __future__ import annotations

import enum
import struct

VERSION = 1
# uint32 seq, float64 capture_ms, little-endian, then the image bytes.
FRAME_HEADER = struct.Struct("<Id")


class Track(enum.StrEnum):
    HOLISTIC = "holistic"
    POSE = "pose"


class ClientType(enum.StrEnum):
    HELLO = "hello"
    WATCH = "watch"  # instead of hello: a read-only watcher of another session
    END = "end"  # instead of hello: its camera ends a paused session for good (its Stop)
    EXERCISE = "exercise"  # switch exercise, starting a new set
    TARGET = "target"  # the current set's rep target, or none
    SUMMARY = "summary"  # ask for the workout so far
    CALIBRATE = "calibrate"  # the head's straight ahead: now, given, or none
    EMOTION = "emotion"  # hold one of VRM's emotion presets, or none


class ServerType(enum.StrEnum):
    READY = "ready"
    RESULT = "result"
    STATS = "stats"
    ERROR = "error"
    TURN = "turn"
    WATCHING = "watching"
    WORKOUT = "workout"
    CALIBRATED = "calibrated"
    EMOTION = "emotion"  # the emotion the rig now holds
    AVATAR = "avatar"  # to watchers: the avatar the camera gave its link, or none
    PAIRED = "paired"  # to the camera: a pairing code that hands its watch token was used


class FrameOutcome(enum.StrEnum):
    """What became of a session's frames: the counts of its stats messages, and the outcome
    label of /metrics' frame counters."""

    RECEIVED = "received"
    PROCESSED = "processed"
    DROPPED = "dropped"
    ERRORS = "errors"


class Close(enum.IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001  # server shutting down
    UNSUPPORTED_DATA = 1003
    POLICY = 1008  # frame before hello, bad origin, too many sessions from one client
    TOO_BIG = 1009
    INTERNAL = 1011  # the worker holding this session's graph died
    TRY_AGAIN_LATER = 1013  # server full
    IDLE = 4000
    PROTOCOL = 4001  # bad JSON, unknown type, truncated header, wrong version, bad option
    # The client's, not the server's: its camera stops for now and its watch link waits
    # --watch-grace seconds for the camera's next session.
    PAUSED = 4002
    UNKNOWN_WATCH = 4003  # a watch token that names no live session
    # The session reached --max-session-seconds: the client reconnects at once, and with
    # its resume string keeps its watch link, watchers and workout.
    RENEW = 4004
    UNAUTHORIZED = 4401  # --access-keys: no key, or a key the server does not know


# The 1008 reason of a server with --max-watchers 0, which a watcher's program (the relay)
# tells apart from a 1008 that reconnecting mends (a watcher too slow to read).
NO_WATCHERS_REASON = "this server allows no watchers (its --max-watchers is 0)"
