"""Where a client puts its key: the Authorization header, or (GET /ws from a browser, which
cannot set headers on a WebSocket) the `key` query parameter."""

from __future__ import annotations

from aiohttp import web


def bearer(header: str | None) -> str | None:
    """The key of `Authorization: Bearer KEY` (scheme in any case), else None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def presented_key(request: web.Request) -> str | None:
    """The key given with a WebSocket upgrade, if any (the hello may carry it instead)."""
    return bearer(request.headers.get("Authorization")) or request.query.get("key") or None
