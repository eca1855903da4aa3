"""Where a phone on the network reaches this server, for the pages' QR codes."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from webapp.keys import PHONE_ORIGINS


def phone_origins(request: web.Request) -> list[str]:
    """The https origins a phone opens this server at, for a page opened on the server's own
    machine (whose QR code leads a phone there). A page opened at any other address is
    reached by a phone at that same address, and is not told the machine's others."""
    if not _loopback(request.host) or PHONE_ORIGINS not in request.app:
        return []
    origins: tuple[str, ...] = request.app[PHONE_ORIGINS]
    return list(origins)


def _loopback(host: str) -> bool:
    """Whether a Host header names this machine's loopback. Read from the header as sent:
    request.url raises on a port out of range or an unbracketed IPv6 address, and a page
    must not fail on what any client may send."""
    if host.startswith("["):
        name = host[1:].partition("]")[0]
    else:
        name = host.rpartition(":")[0] if host.count(":") == 1 else host
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
