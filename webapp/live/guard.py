"""Who may open a live session: allowed origins and sessions per client address."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from webapp.config import Config


def client_address(request: web.Request, config: Config) -> str:
    if config.trust_proxy:
        forwarded = request.headers.get("X-Forwarded-For", "")
        # The proxy appends the address it saw; earlier entries are the client's to forge.
        last = forwarded.split(",")[-1].strip()
        if last:
            return last
    return request.remote or "-"


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
