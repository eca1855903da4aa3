"""PUT /api/emotion/{token}: the link's camera holds an emotion over HTTP.

The same as a camera session's `emotion` message, for who holds the link but not its
connection: the avatar page on a PC whose phone is the camera, or a stream deck's button
(one request, no WebSocket). The link keeps it; its camera's session carries it in the rig
from its next frame and tells its own page (live/analysis.py, emotion_news).
"""

from __future__ import annotations

import json
import logging

from aiohttp import web

from webapp import json_text
from webapp.analysis.rig.emotion import Emotion
from webapp.camera_proof import camera_of
from webapp.errors import BadRequestError
from webapp.keys import CONFIG
from webapp.uploads import small_body

EMOTION_PATH = "/api/emotion/{token}"
# {"name": "surprised", "weight": 0.123456789} with room for spaces.
MAX_BODY_BYTES = 256
SHAPE = '{"name": "happy"}, with a "weight" from above 0 to 1 if not whole, or {"name": null}'

log = logging.getLogger(__name__)


async def put_emotion(request: web.Request) -> web.Response:
    camera = camera_of(request, "hold its emotion")
    if isinstance(camera, web.Response):
        return camera
    body = await small_body(request, MAX_BODY_BYTES, request.app[CONFIG].upload_timeout)
    held = emotion_of(body)
    camera.emotion = held
    # A button press, as many a minute as the person likes: at INFO it was a line for
    # each, where the same press on the camera's own connection logs none, and the server
    # logs no other request (--verbose shows them).
    log.debug("%s holds %s over HTTP", camera.session, held.name or "no emotion")
    return web.json_response(held.to_json(), dumps=json_text.as_text)


def emotion_of(body: bytes) -> Emotion:
    """The emotion a body names, or 400 saying what is wrong with it."""
    try:
        message = json.loads(body)
    # RecursionError: arrays nested deeper than the parser's stack fit in a small body.
    except (ValueError, RecursionError):
        raise BadRequestError(f"the body must be JSON: {SHAPE}") from None
    if not isinstance(message, dict):
        raise BadRequestError(f"the body must be {SHAPE}")
    try:
        return Emotion.from_json(message)
    except ValueError as exc:
        raise BadRequestError(str(exc)) from None
