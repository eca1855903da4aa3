"""What a hello may ask for beyond track and fps: smoothing, a rig, mirroring, blendshapes,
VMC out, an exercise and its last session's watchers. Each bad value ends the session with
a close code and a reason in words."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from webapp.analysis import AvatarOptions
from webapp.analysis.fitness import MAX_TARGET, Exercise, UnknownExercise
from webapp.errors import shown
from webapp.live.errors import SessionClosed
from webapp.protocol import Close, Track
from webapp.vmc.sender import Target, allowed

# A hello may name several VMC receivers (VSeeFace and VNyan on one machine, say), each in
# --vmc-allow; more than this is no setup anyone runs.
MAX_VMC_TARGETS = 8
MAX_HOST_CHARS = 255  # a DNS name's longest
_HOST_CHARS = frozenset(string.ascii_letters + string.digits + ".-:_%[]")
MAX_PORT = 65535
MAX_RESUME_CHARS = 64  # the server's are 22
# A link key is the client's own secret: long enough that nobody guesses it (22 characters
# of base64url are 128 bits), short enough for a hello.
LINK_KEY_CHARS = (22, 64)
LINK_KEY_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_")
VMC_SHAPE = (
    f'vmc must be {{"host": "<ip>", "port": <int>}} or a list of 1 to {MAX_VMC_TARGETS} of them'
)


@dataclass(frozen=True)
class SessionOptions:
    avatar: AvatarOptions = field(default_factory=AvatarOptions)
    vmc: tuple[Target, ...] = ()
    exercise: str | None = None
    target: int | None = None  # the first set's rep target
    # The resume string of the ready this camera's last session got: take its watchers over.
    resume: str | None = None
    # The page's own secret for a watch link that stays the same across its sessions and
    # the server's restarts (an OBS source set up once); with it, resume is not needed.
    link_key: str | None = None

    @property
    def wants_rig(self) -> bool:
        """VMC receivers move an avatar, so VMC out needs the rig even if results omit it."""
        return self.avatar.rig or bool(self.vmc)


def parse_options(
    message: Mapping[str, Any],
    vmc_allow: frozenset[Target],
    exercises: Mapping[str, Exercise],
    track: Track = Track.HOLISTIC,
) -> SessionOptions:
    try:
        avatar = AvatarOptions.from_hello(message)
    except (ValueError, TypeError) as exc:
        raise SessionClosed(Close.PROTOCOL, str(exc)) from None
    if avatar.blendshapes and track is not Track.HOLISTIC:
        raise SessionClosed(
            Close.PROTOCOL, 'blendshapes are read from the face: they need "track": "holistic"'
        )
    return SessionOptions(
        avatar=avatar,
        vmc=_vmc_targets(message.get("vmc"), vmc_allow),
        exercise=exercise_name(message.get("exercise"), exercises),
        target=_hello_target(message),
        resume=_resume(message.get("resume")),
        link_key=_link_key(message.get("link_key")),
    )


def _resume(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_RESUME_CHARS:
        raise SessionClosed(
            Close.PROTOCOL, "resume must be the resume string of an earlier session's ready"
        )
    return value


def is_link_key(value: object) -> TypeGuard[str]:
    """Whether `value` has a link key's form (a hello's link_key, a Holotrack-Link-Key)."""
    shortest, longest = LINK_KEY_CHARS
    return (
        isinstance(value, str)
        and shortest <= len(value) <= longest
        and LINK_KEY_ALPHABET.issuperset(value)
    )


def _link_key(value: object) -> str | None:
    if value is None:
        return None
    shortest, longest = LINK_KEY_CHARS
    if not is_link_key(value):
        raise SessionClosed(
            Close.PROTOCOL,
            f"link_key must be {shortest} to {longest} characters of A-Z, a-z, 0-9, - and _ "
            "(a random secret the client keeps)",
        )
    return value


def _hello_target(message: Mapping[str, Any]) -> int | None:
    target = rep_target(message.get("target"), "target")
    if target is not None and message.get("exercise") is None:
        raise SessionClosed(Close.PROTOCOL, "a target is a set's reps: it needs an exercise")
    return target


def rep_target(value: object, what: str) -> int | None:
    """A set's rep target: a whole number from 1 to MAX_TARGET, or None for none."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer() and 1 <= value <= MAX_TARGET:
        return int(value)  # 12.0, as some JSON encoders write 12
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TARGET:
        raise SessionClosed(
            Close.PROTOCOL, f"{what} must be a whole number of reps from 1 to {MAX_TARGET}, or null"
        )
    return value


def exercise_name(name: object, exercises: Mapping[str, Exercise]) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str) or name not in exercises:
        raise SessionClosed(Close.PROTOCOL, UnknownExercise(name, tuple(exercises)).reason)
    return name


def _vmc_targets(value: object, allow: frozenset[Target]) -> tuple[Target, ...]:
    """The receivers a hello's "vmc" names, one or a list, each once."""
    if value is None:
        return ()
    items: list[object] = value if isinstance(value, list) else [value]
    if not 0 < len(items) <= MAX_VMC_TARGETS:
        raise SessionClosed(Close.PROTOCOL, VMC_SHAPE)
    targets: dict[Target, None] = {}
    for item in items:
        host, port = _vmc_address(item)
        target = allowed(allow, host, port)
        if target is None:
            # The only way to make the server send UDP anywhere is the operator's own list.
            raise SessionClosed(
                Close.POLICY,
                f"VMC to {_address(host, port)} is not allowed; "
                "the server's operator lists receivers in --vmc-allow",
            )
        targets[target] = None
    return tuple(targets)


def _address(host: str, port: int) -> str:
    """host:port as the operator would write it in --vmc-allow; quoted only when the host
    holds what no host name or address does, so a reason never carries a client's raw text."""
    if not set(host) <= _HOST_CHARS:
        return f"{shown(host)}:{port}"
    bare = host.strip("[]")
    return f"[{bare}]:{port}" if ":" in bare else f"{bare}:{port}"


def _vmc_address(item: object) -> tuple[str, int]:
    """One target's host and port, well formed (4001 if not) before the allow-list judges
    it (1008), so a malformed value is never reported as a refused address."""
    if not isinstance(item, dict):
        raise SessionClosed(Close.PROTOCOL, VMC_SHAPE)
    host, port = item.get("host"), item.get("port")
    if not isinstance(host, str) or not 0 < len(host) <= MAX_HOST_CHARS:
        raise SessionClosed(
            Close.PROTOCOL, f"vmc host must be a name or IP address; got {shown(host)}"
        )
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= MAX_PORT:
        raise SessionClosed(
            Close.PROTOCOL, f"vmc port must be an integer 1-{MAX_PORT}; got {shown(port)}"
        )
    return host, port
