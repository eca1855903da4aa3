"""Where a phone on the network reaches this server, for the pages' QR codes."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from webapp.keys import PHONE_ORIGINS


def phone_origins(request: web.Request) -> list[str]:
    """The https origins a phone opens this server at, for a page opened on the server's own
    machine (whose QR code leads a phone there). A page opened at any other address is
    reached by a phone at that same address, and is not told the machine's others."""
    host = request.url.host or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback or PHONE_ORIGINS not in request.app:
        return []
    origins: tuple[str, ...] = request.app[PHONE_ORIGINS]
    return list(origins)
