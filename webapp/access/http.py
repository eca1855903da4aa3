"""Keys over HTTP: every route needs `Authorization: Bearer KEY` except an explicit public
list, so routes added later (POST /api/video, /api/export) are covered without a word.

GET /ws is checked at its first message instead (access/socket.py): a browser cannot set
headers on a WebSocket, and an HTTP 401 on an upgrade reaches a page only as "1006".
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from webapp.access.credentials import bearer
from webapp.access.errors import AccessDenied, QuotaExceeded
from webapp.access.quotas import HOUR, MINUTE
from webapp.access.service import Hold, VideoSeconds
from webapp.keys import ACCESS

# Routes by the canonical path of the resource the router matched, so what decides is the
# handler that will run, never how a client spelled or escaped the path. Public: the pages,
# their files and what they read before any session, and what operators and balancers
# poll; none of them runs the model or shows anyone's data. /api/skeleton and
# /api/exercises are constant tables that watch links (OBS, a coach) read without a key.
PUBLIC_ROUTES = frozenset(
    {
        "/",
        "/avatar",
        "/avatar/default.vrm",
        # A watch link's own avatar: its OBS view has the link and no key, like a watcher.
        "/avatar/link/{token}.vrm",
        "/fitness",
        "/coach",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/access",
        "/api/skeleton",
        "/api/exercises",
        # A paused session's end: its resume string is the proof, as for the socket's end.
        "/api/end",
        # A pairing code's claim: the device has no key yet; the code is the proof, and it
        # hands on the key of the page that offered it (pairing_view.py).
        "/api/pair/{code}/claim",
        "/static/{name}",
        "/vendor/{name}",
    }
)
SOCKET_ROUTES = frozenset({"/ws"})
# Each POST to these counts toward the key's predict_per_minute, cache hits included.
METERED_ROUTES = frozenset({"/predict", "/api/video"})
REALM = 'Bearer realm="holotrack"'
KEY_NAME = web.RequestKey("access_key_name", str)


def route_of(request: web.Request) -> str | None:
    """The canonical path of the matched resource; None when nothing matched (404, 405)."""
    resource = request.match_info.route.resource
    return None if resource is None else resource.canonical


def key_of(request: web.Request) -> str | None:
    """The name of the key this request came with; None on an open server."""
    return request.get(KEY_NAME)


def video_seconds_left(request: web.Request) -> float | None:
    """The video seconds the request's key may still use this hour; None: no limit."""
    return request.app[ACCESS].video_seconds_left(key_of(request))


def charge_video_seconds(request: web.Request, seconds: float) -> VideoSeconds:
    """For POST /api/video: charge `seconds` to the request's key, all or nothing, to be
    settled when the video ends. Raises QuotaExceeded, which raised before the response
    is prepared becomes 429 + Retry-After; or TooLargeError (413) for more seconds than
    the key's whole hour holds."""
    return request.app[ACCESS].charge_video_seconds(key_of(request), seconds)


def hold_session(request: web.Request) -> Hold:
    """For POST /api/video, before its upload: one of the key's max_sessions until
    released, as the video runs in one of the server's sessions (videos took none, and a
    key allowed no sessions filled the server with them). Raises QuotaExceeded: 429 at
    the limit, 403 for a key that may post no video at all (a limit of 0), whose upload
    would be read for nothing."""
    name = key_of(request)
    access = request.app[ACCESS]
    # Through the access layer, so the 403 is counted in holotrack_key_refusals_total.
    access.check_video_allowed(name)
    return access.open_session(name)


def unauthorized(exc: AccessDenied) -> web.Response:
    challenge = REALM if exc.reason == "missing_key" else f'{REALM}, error="invalid_token"'
    return web.json_response(
        {
            "error": exc.code,
            "reason": exc.reason,
            "detail": f"{exc.detail}: send it as Authorization: Bearer KEY",
        },
        status=401,
        headers={"WWW-Authenticate": challenge},
    )


def too_many(exc: QuotaExceeded) -> web.Response:
    if exc.never:
        # Retry-After on a limit of 0 had a client that obeys it ask every minute for ever.
        return web.json_response(
            {"error": exc.code, "quota": exc.quota, "detail": exc.detail, "retry_after": None},
            status=403,
        )
    seconds = exc.retry_after_seconds
    return web.json_response(
        {"error": exc.code, "quota": exc.quota, "detail": exc.detail, "retry_after": seconds},
        status=429,
        headers={"Retry-After": str(seconds)},
    )


@web.middleware
async def require_key(request: web.Request, handler: Handler) -> web.StreamResponse:
    access = request.app[ACCESS]
    route = route_of(request)
    if not access.required or route in PUBLIC_ROUTES or route in SOCKET_ROUTES:
        return await handler(request)
    try:
        name = access.identify(bearer(request.headers.get("Authorization")))
        if route in METERED_ROUTES and request.method == "POST":
            access.charge_request(name)
    except AccessDenied as exc:
        return unauthorized(exc)
    except QuotaExceeded as exc:
        return too_many(exc)
    if name is not None:
        request[KEY_NAME] = name
    try:
        return await handler(request)
    except QuotaExceeded as exc:
        # From a handler that charges as it goes (video seconds), before it answered.
        return too_many(exc)


async def access_view(request: web.Request) -> web.Response:
    """GET /api/access, public: whether this server needs a key and, for the key in the
    Authorization header if any, whether it is accepted, its limits and what it used."""
    access = request.app[ACCESS]
    body: dict[str, Any] = {"keys_required": access.required}
    presented = bearer(request.headers.get("Authorization"))
    if access.required and presented is not None:
        try:
            name = access.identify(presented)
        except AccessDenied as exc:
            body["key"] = None
            body["refused"] = exc.reason
        else:
            body["key"] = _usage(request, name)
    return web.json_response(body)


def _usage(request: web.Request, name: str | None) -> dict[str, Any]:
    access = request.app[ACCESS]
    if name is None:
        return {}
    limits = access.limits(name)
    return {
        "name": name,
        "max_sessions": limits.max_sessions,
        "predict_per_minute": limits.predict_per_minute,
        "video_seconds_per_hour": limits.video_seconds_per_hour,
        "sessions": access.quotas.sessions(name),
        "requests_last_minute": access.quotas.requests(name),
        # Sums of settled charges: 23.799999999999997 read as a fault.
        "video_seconds_last_hour": round(access.quotas.video_seconds(name), 3),
        "windows_seconds": {"requests": MINUTE, "video": HOUR},
    }
