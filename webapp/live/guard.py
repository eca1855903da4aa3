"""Who may open a live session: allowed origins and sessions per client address."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from aiohttp import web

from webapp.config import Config


def client_address(request: web.Request, config: Config) -> str:
    """Who a request is from, as per-client limits count: an address, or an IPv6 /64."""
    if config.trust_proxy:
        forwarded = request.headers.get("X-Forwarded-For", "")
        # The proxy appends the address it saw; earlier entries are the client's to forge.
        last = forwarded.split(",")[-1].strip()
        if last:
            return counted_as(last)
    return counted_as(request.remote or "-")


def counted_as(address: str) -> str:
    """One host's share of IPv6 is a /64 (RFC 6177), 2^64 addresses its own to pick
    from: counted by address, a client with one would never meet a per-client limit."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return address  # a unix socket's peer, a proxy's odd header: counted as it reads
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def origin_refusal(request: web.Request, config: Config) -> str | None:
    """Why this Origin may not open a session, or None when it may."""
    origin = request.headers.get("Origin")
    if origin is None or config.allowed_origins.strip() == "*":
        return None
    allowed = {o.strip().rstrip("/") for o in config.allowed_origins.split(",") if o.strip()}
    if allowed:
        if origin.rstrip("/") in allowed:
            return None
        return f"origin {origin!r} is not allowed"
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:  # "http://[x": any client may send it, and it must not end the handler
        return f"origin {origin!r} is not an origin"
    if netloc.lower() == request.host.lower():
        return None
    return f"origin {origin!r} is not this server ({request.host}); cross-site sessions are refused"
