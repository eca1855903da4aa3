"""Whether an HTTP request comes from a watch link's camera: for what only the camera may
do to its link over HTTP (give it an avatar, hold an emotion), never its watchers.

The proof is the resume string of the camera session's last ready, sent as the
Holotrack-Resume header, or the key a kept link is made of, as Holotrack-Link-Key (the
avatar page on a PC whose phone is the camera holds the key, not the phone's resume
string): a watcher knows only the token. Under --access-keys the request also needs the
key the camera's session was opened with (access/http.py checks a key; WatchTokens.camera
that it is the session's).
"""

from __future__ import annotations

from aiohttp import web

from webapp.access.http import key_of
from webapp.http_errors import json_error
from webapp.keys import LIVE
from webapp.live.audience import Audience
from webapp.live.options import is_link_key

PROOF_HEADER = "Holotrack-Resume"
LINK_KEY_HEADER = "Holotrack-Link-Key"


def camera_of(request: web.Request, may: str) -> Audience | web.Response:
    """The audience of the link in the path ({token}) when the request comes from its
    camera, else the refusal, which says that only the camera `may` ("set its avatar")."""
    tokens = request.app[LIVE].tokens
    token = request.match_info["token"]
    if tokens.find(token) is None:
        return json_error(
            "unknown_link", "this watch link names no live session (it ended, or never was)", 404
        )
    link_key = request.headers.get(LINK_KEY_HEADER)
    if link_key is not None and not is_link_key(link_key):
        return json_error(
            "not_the_camera",
            f"{LINK_KEY_HEADER} is not a link key: 22 to 64 characters of A-Z, a-z, 0-9, - and _",
            403,
        )
    proof = request.headers.get(PROOF_HEADER, "")
    audience = tokens.camera(token, proof, key_of(request), link_key or "")
    if audience is None:
        return json_error(
            "not_the_camera",
            f"only the link's camera may {may}: send the resume string of its session's last"
            f" ready as {PROOF_HEADER}, or the link's key as {LINK_KEY_HEADER}",
            403,
        )
    return audience
