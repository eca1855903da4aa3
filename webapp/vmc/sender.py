"""Sending a session's rig as VMC over UDP, only to receivers the operator allowed."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from webapp.analysis.rig.idle import UNSEEN_SECONDS, idle_rig
from webapp.vmc.encode import encode_frame
from webapp.vmc.settle import Settle

log = logging.getLogger(__name__)
# How often a sender looks at the wall clock for frames that stopped coming.
UNSEEN_TICK_S = 0.25


@dataclass(frozen=True)
class Target:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _host(text: str) -> str:
    text = text.strip().strip("[]")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text.lower()


# What a host name may hold (letters, digits, dots, hyphens; underscores, as container
# names have them). "a b" or "host\n" was taken at start and could never match a hello.
HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")


def parse_target(text: str) -> Target:
    """`HOST:PORT` or `[IPv6]:PORT` -> Target; ValueError says what is wrong."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r} is not HOST:PORT")
    # isdigit() holds for "²", which int() refuses: "3953²" (a typo's superscript) was
    # "invalid literal for int() with base 10", Python's words, not which entry was wrong.
    if ":" in host and not host.strip().startswith("["):
        # Unbracketed, the last colon was taken for the port: "fe80::1:2" (an address) was
        # fe80::1 at port 2, and "::1" alone was refused as "':' is no IP address". One in
        # brackets with no port ("[::1]") is told of its port below, not of its brackets.
        raise ValueError(f"{text!r}: an IPv6 address goes in brackets, as [::1]:39539")
    if not port.isdecimal() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} has no port between 1 and 65535")
    name = _host(host)
    if not HOST_NAME.fullmatch(name):
        try:
            ipaddress.ip_address(name)
        except ValueError:
            raise ValueError(f"{text!r}: {host.strip()!r} is no IP address or host name") from None
    return Target(name, int(port))


def parse_targets(text: str) -> tuple[Target, ...]:
    """Comma-separated HOST:PORT, in their order and each once; empty for none."""
    return tuple(dict.fromkeys(parse_target(item) for item in text.split(",") if item.strip()))


def parse_allow(text: str) -> frozenset[Target]:
    """The operator's `--vmc-allow` list: comma-separated HOST:PORT, empty for none."""
    return frozenset(parse_targets(text))


def allowed(allow: frozenset[Target], host: object, port: object) -> Target | None:
    """The target a hello asks for, if the operator allowed exactly that host and port."""
    if not isinstance(host, str) or isinstance(port, bool) or not isinstance(port, int):
        return None
    if len(host) > 255:
        return None
    wanted = Target(_host(host), port)
    return wanted if wanted in allow else None


class _Quiet(asyncio.DatagramProtocol):
    def error_received(self, exc: Exception) -> None:
        # A receiver that is not running answers with ICMP "port unreachable"; VMC apps
        # come and go, so this is normal and must not end the session.
        log.debug("VMC receiver unreachable: %s", exc)


class VmcSender:
    """A UDP socket towards each of one or more receivers (several VMC apps on one machine,
    say); each frame is encoded once and sent to all of them. A receiver holds the last
    pose it was sent: when nobody has been seen for a while, and when its session ends
    (rest()), it is sent the rest pose (webapp/analysis/rig/idle.py) instead of a frozen
    gesture. Opened with open(), it watches the wall clock too (quiet()): frames that stop
    coming tell it nothing."""

    def __init__(self, transports: Mapping[Target, asyncio.DatagramTransport]) -> None:
        self._transports = dict(transports)
        self.sent = 0  # frames of a rig
        self.rested = 0  # frames of the rest pose
        self._first: float | None = None
        # On the frames' own clock (send()'s `seconds`), as time.monotonic() is below: the
        # last rig, from which unseen() times the rest pose, and the newest frame, whose
        # time a rest pose sent with none of its own is given.
        self._last_rig: float | None = None
        self._latest = -math.inf
        self._idle: dict[str, Any] | None = None  # the rest pose, once built
        # Every blendshape and expression name ever sent: a receiver keeps each value until
        # told otherwise, so the rest pose zeroes them all (a face lost before the person
        # left took its blendshapes out of the rig, not out of the receiver).
        self._blendshapes: set[str] = set()
        self._expressions: set[str] = set()
        # What a frame leaves out that an earlier one sent, eased to rest as the page does.
        self._settle = Settle()
        # Called once, at the first rig: the receivers are this sender's from then on.
        self.on_first_rig: Callable[[], None] | None = None
        # time.monotonic() at the last rig and at the newest frame, for quiet().
        self._last_rig_wall: float | None = None
        self._latest_wall = 0.0
        self._clock: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, *targets: Target) -> VmcSender:
        loop = asyncio.get_running_loop()
        transports: dict[Target, asyncio.DatagramTransport] = {}
        try:
            for target in targets:
                transport, _ = await loop.create_datagram_endpoint(
                    _Quiet, remote_addr=(target.host, target.port)
                )
                transports[target] = transport
        except BaseException:
            # However it stops: a client that hangs up just after its hello cancels its
            # handler here, and each receiver's socket already open stayed open, read by the
            # loop, for good (100 such hellos with 8 receivers left 66 sockets open).
            for transport in transports.values():
                transport.close()
            raise
        sender = cls(transports)
        sender._clock = asyncio.create_task(sender._keep_time())
        return sender

    @property
    def targets(self) -> frozenset[Target]:
        """The receivers it still sends to."""
        return frozenset(
            t for t, transport in self._transports.items() if not transport.is_closing()
        )

    def drop(self, target: Target) -> None:
        """Sends `target` nothing more (another sender has it now)."""
        transport = self._transports.get(target)
        if transport is not None:
            transport.close()

    def send(self, rig: Mapping[str, Any], seconds: float) -> None:
        """One frame to every receiver; `seconds` on any clock (a capture time, say): the
        receivers are sent the time since the first frame this sender sent."""
        if not self._send(self._settle.fill(rig, seconds), seconds):
            return
        self.sent += 1
        self._last_rig = seconds
        self._last_rig_wall = self._latest_wall
        if self.sent == 1 and self.on_first_rig is not None:
            self.on_first_rig()
        # Key views compare as sets without copying: a frame's names are nearly always
        # ones already sent, and then nothing is built.
        for known, sent in (
            (self._blendshapes, rig.get("blendshapes") or {}),
            (self._expressions, rig.get("expressions") or {}),
        ):
            if not sent.keys() <= known:
                known.update(sent)
                self._idle = None

    def inherit(self, older: VmcSender) -> None:
        """Takes on what `older` sent the receivers this sender took from it: each name
        is eased to rest if this one's frames leave it out, and zeroed by its rest pose."""
        self._blendshapes |= older._blendshapes
        self._expressions |= older._expressions
        self._idle = None
        self._settle.inherit(older._settle)

    def unseen(self, seconds: float) -> None:
        """A frame without a rig (nobody in the picture), or a moment without any: once no
        rig has come for UNSEEN_SECONDS, the rest pose, each time (UDP may lose one)."""
        if self._last_rig is not None and seconds - self._last_rig >= UNSEEN_SECONDS:
            self.rest(seconds)

    def quiet(self, now: float) -> None:
        """unseen() by the wall clock (`now`, time.monotonic()): no frame at all has come
        for a while (the camera's network gone, a stalled connection the server has not
        yet given up on), so no unseen() either; timed as though the frames' clock ran on."""
        wall = self._last_rig_wall
        # Frames still coming say it themselves (send(), unseen()).
        if wall is None or now - self._latest_wall < UNSEEN_TICK_S:
            return
        if now - wall >= UNSEEN_SECONDS:
            self.rest(self._latest + (now - self._latest_wall))

    async def _keep_time(self) -> None:
        while True:
            await asyncio.sleep(UNSEEN_TICK_S)
            self.quiet(time.monotonic())

    def rest(self, seconds: float | None = None) -> None:
        """The rest pose, now (at `seconds`, or just after the last frame): the session
        feeding the receivers is over, or nobody is in its picture. Only after a rig: a
        receiver never sent one has nothing to undo."""
        if self._last_rig is None:
            return
        if self._idle is None:
            self._idle = idle_rig(sorted(self._blendshapes), sorted(self._expressions))
        if self._send(self._idle, self._latest if seconds is None else seconds):
            self.rested += 1
            self._settle = Settle()  # all of it at rest, or on its way there

    def close(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
        for transport in self._transports.values():
            transport.close()

    def _send(self, rig: Mapping[str, Any], seconds: float) -> bool:
        open_ = [t for t in self._transports.values() if not t.is_closing()]
        if not open_:
            return False
        if self._first is None:
            self._first = seconds
        self._latest = max(self._latest, seconds)
        self._latest_wall = time.monotonic()
        # The protocol's time is relative and a 32-bit float: a clock's absolute value (a
        # day of uptime is 8.6e7 ms) would cost it its precision, or overflow it.
        datagrams = encode_frame(rig, seconds - self._first)
        for transport in open_:
            for datagram in datagrams:
                transport.sendto(datagram)
        return True
