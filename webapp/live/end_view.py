"""POST /api/end: a camera ends its paused session for good over HTTP.

The same as an `end` first message on GET /ws, for a page that is going away: a page being
unloaded cannot count on a new WebSocket getting its message out, while a `fetch` with
`keepalive` is made to outlive it. The resume string is the proof that the camera asks, so
like the socket's `end` it needs no access key and no origin check: a page elsewhere cannot
know it.
"""

from __future__ import annotations

import logging

from aiohttp import web

from webapp import json_text
from webapp.errors import BadRequestError
from webapp.http_errors import json_error
from webapp.keys import CONFIG, LIVE
from webapp.live.errors import SessionClosed
from webapp.live.session import CLIENT_CLOSED
from webapp.uploads import json_fields, small_body

END_PATH = "/api/end"
# A resume string is 22 characters: room for it, the JSON around it and some spaces.
MAX_BODY_BYTES = 1024

log = logging.getLogger(__name__)


async def end_paused(request: web.Request) -> web.Response:
    """Ends the session whose last `ready` gave the body's resume string: its watchers are
    closed now rather than when --watch-grace runs out, and its workout comes back."""
    body = await small_body(request, MAX_BODY_BYTES, request.app[CONFIG].upload_timeout)
    resume = resume_of(body)
    try:
        session, workout = request.app[LIVE].tokens.end(resume, CLIENT_CLOSED)
    except SessionClosed as exc:
        return json_error("unknown_resume", exc.reason, 404)
    log.info("%s ended for good by its camera after a pause (over HTTP)", session)
    summary = None if workout is None else workout.summary()
    return web.json_response({"ended": session, "workout": summary}, dumps=json_text.as_text)


def resume_of(body: bytes) -> str:
    """The resume string an end's body names, or 400 saying what the body should be."""
    (resume,) = json_fields(body, "resume")
    if not isinstance(resume, str) or not resume:
        raise BadRequestError(
            "the body needs the resume string of the paused session's last ready"
            ' ({"resume": "..."})'
        )
    return resume
