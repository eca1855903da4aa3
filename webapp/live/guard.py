"""Who may open a live session: allowed origins and sessions per client address."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from aiohttp import web

from webapp.config import Config
from webapp.origins import allowed_origins, origin_key


def peer_address(request: web.Request, config: Config) -> str:
    """Who a request is from, as the logs name it: the proxy's word with --trust-proxy."""
    if config.trust_proxy:
        # The proxy appends the address it saw; earlier entries are the client's to forge,
        # and so is an earlier header line: a proxy that adds a line of its own (HAProxy's
        # option forwardfor) leaves the client's first, and the first was read.
        forwarded = ",".join(request.headers.getall("X-Forwarded-For", []))
        last = forwarded.split(",")[-1].strip()
        if last:
            return last
    return request.remote or "-"


def client_address(request: web.Request, config: Config) -> str:
    """Who a request is from, as per-client limits count it (counted_as)."""
    return counted_as(peer_address(request, config))


# A NAT64 translator's prefix (RFC 6052): behind it, every IPv4 client has an address in
# it, its own IPv4 address in the last 32 bits.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def counted_as(address: str) -> str:
    """One host's share of IPv6 is a /64 (RFC 6177), 2^64 addresses its own to pick
    from: counted by address, a client with one would never meet a per-client limit. An
    IPv4 address reached as IPv6 (mapped, or through NAT64) is counted as that IPv4 one."""
    text = address.strip()
    if text.startswith("["):  # "[2001:db8::1]" or "[2001:db8::1]:443", as some proxies write
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        # "192.0.2.1:51234", as Azure's Application Gateway writes: counted with its port,
        # each connection of one client was a client of its own.
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return address  # a unix socket's peer, a proxy's odd header: counted as it reads
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        if ip in NAT64:
            return str(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def origin_refusal(request: web.Request, config: Config) -> str | None:
    """Why this Origin may not open a session, or None when it may."""
    origin = request.headers.get("Origin")
    if origin is None or config.allowed_origins.strip() == "*":
        return None
    allowed, _ = allowed_origins(config.allowed_origins)
    if allowed:
        # As keys: an operator's https://Track.example.org:443 is the origin a browser
        # sends as https://track.example.org, and refused every browser as written.
        if origin_key(origin) in allowed:
            return None
        return f"origin {origin!r} is not allowed"
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:  # "http://[x": any client may send it, and it must not end the handler
        return f"origin {origin!r} is not an origin"
    if netloc.lower() == request.host.lower():
        return None
    return f"origin {origin!r} is not this server ({request.host}); another site's page is refused"
