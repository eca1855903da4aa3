"""Sending a session's rig as VMC over UDP, only to receivers the operator allowed."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webapp.vmc.encode import encode_frame

log = logging.getLogger(__name__)


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


def parse_target(text: str) -> Target:
    """`HOST:PORT` or `[IPv6]:PORT` -> Target; ValueError says what is wrong."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r} is not HOST:PORT")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} has no port between 1 and 65535")
    return Target(_host(host), int(port))


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
    say); each frame is encoded once and sent to all of them."""

    def __init__(self, transports: Sequence[asyncio.DatagramTransport]) -> None:
        self._transports = tuple(transports)
        self.sent = 0
        self._first: float | None = None

    @classmethod
    async def open(cls, *targets: Target) -> VmcSender:
        loop = asyncio.get_running_loop()
        transports: list[asyncio.DatagramTransport] = []
        try:
            for target in targets:
                transport, _ = await loop.create_datagram_endpoint(
                    _Quiet, remote_addr=(target.host, target.port)
                )
                transports.append(transport)
        except OSError:
            for transport in transports:
                transport.close()
            raise
        return cls(transports)

    def send(self, rig: Mapping[str, Any], seconds: float) -> None:
        """One frame to every receiver; `seconds` on any clock (a capture time, say): the
        receivers are sent the time since the first frame this sender sent."""
        open_ = [t for t in self._transports if not t.is_closing()]
        if not open_:
            return
        if self._first is None:
            self._first = seconds
        # The protocol's time is relative and a 32-bit float: a clock's absolute value (a
        # day of uptime is 8.6e7 ms) would cost it its precision, or overflow it.
        datagrams = encode_frame(rig, seconds - self._first)
        for transport in open_:
            for datagram in datagrams:
                transport.sendto(datagram)
        self.sent += 1

    def close(self) -> None:
        for transport in self._transports:
            transport.close()
