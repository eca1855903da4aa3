"""A watch link's own avatar: PUT and DELETE /api/avatar/{token} by the link's camera, and
GET /avatar/link/{token}.vrm for its OBS view, whose browser can never have the file the
streamer chose on the avatar page.

Only the link's camera may give or take its avatar (camera_proof.py says how it proves
it). Nothing is written to disk: the avatar lives in memory as long as the link
(live/watch_tokens.py), within --avatar-memory-mb.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import hdrs, web

from webapp.camera_proof import camera_of
from webapp.errors import UnsupportedTypeError
from webapp.http_errors import json_error
from webapp.keys import CONFIG, LIVE
from webapp.live.audience import Audience
from webapp.live.avatars import (
    GLB_MAGIC,
    MB,
    AvatarMemoryFull,
    ClientShareFull,
    UploadUnderWay,
)
from webapp.live.guard import client_address
from webapp.uploads import arriving_within, read_limited, refuse_declared_size

log = logging.getLogger(__name__)

LIMIT_FLAG = "--max-avatar-mb"
UPLOAD_PATH = "/api/avatar/{token}"
CHUNK = 64 * 1024


def _refusal(status: int, code: str, detail: str) -> web.Response:
    headers = {"Retry-After": "60"} if status in (429, 503) else None
    return json_error(code, detail, status, headers)


def _camera(request: web.Request) -> Audience | web.Response:
    """The link's audience when the request comes from its camera, else the refusal."""
    if not request.app[LIVE].tokens.avatars.budget:
        return _refusal(
            403,
            "avatar_uploads_off",
            "this server keeps no avatars for watch links (--avatar-memory-mb is 0): "
            "the OBS view shows the server's default avatar",
        )
    return camera_of(request, "set its avatar")


async def put_avatar(request: web.Request) -> web.Response:
    """PUT /api/avatar/{token}: a .vrm (binary glTF) for the link's OBS view."""
    camera = _camera(request)
    if isinstance(camera, web.Response):
        return camera
    config = request.app[CONFIG]
    tokens = request.app[LIVE].tokens
    token = request.match_info["token"]
    limit = config.max_avatar_mb * MB
    refuse_declared_size(request, limit, setting=LIMIT_FLAG)
    try:
        # Before a byte is read: an upload the budget cannot hold costs the server nothing.
        # A compressed body's length says nothing of what it unpacks to: the limit, then.
        declared = request.content_length
        compressed = hdrs.CONTENT_ENCODING in request.headers
        size = limit if declared is None or compressed else declared
        tokens.avatars.reserve(token, size, client_address(request, config))
    except AvatarMemoryFull as exc:
        return _refusal(
            503,
            "avatar_memory_full",
            f"the server's memory for watch links' avatars is full ({exc.free} bytes free of "
            f"--avatar-memory-mb {config.avatar_memory_mb}): try again once other links end",
        )
    except ClientShareFull as exc:
        return _refusal(
            429,
            "avatar_share_full",
            f"the avatars this address's links hold or are uploading leave {exc.free} of "
            f"the {tokens.avatars.share} bytes one address may have (a quarter of "
            f"--avatar-memory-mb {config.avatar_memory_mb}, at least one --max-avatar-mb "
            f"avatar): end or clear one of its links first",
        )
    except UploadUnderWay:
        return _refusal(409, "upload_under_way", "an avatar is already uploading to this link")
    try:
        async with arriving_within(config.upload_timeout, "avatar", request.content_length):
            data = await read_limited(request.content.read, limit, "avatar", LIMIT_FLAG)
        if not data.startswith(GLB_MAGIC):
            raise UnsupportedTypeError("the avatar is not a .vrm (a binary glTF file)")
        avatar = tokens.give_avatar(token, data, camera)
    finally:
        tokens.avatars.cancel(token)
    if avatar is None:
        return _refusal(404, "unknown_link", "the watch link ended while its avatar arrived")
    log.info("%s: its watch link shows an avatar of its own (%d bytes)", camera.session, len(data))
    return web.json_response({"url": camera.avatar, "bytes": len(data)})


async def delete_avatar(request: web.Request) -> web.Response:
    """DELETE /api/avatar/{token}: the link's OBS view goes back to the default avatar."""
    camera = _camera(request)
    if isinstance(camera, web.Response):
        return camera
    request.app[LIVE].tokens.take_avatar(request.match_info["token"])
    return web.Response(status=204)


async def link_avatar(request: web.Request) -> web.StreamResponse:
    """GET /avatar/link/{token}.vrm: the link's own avatar, for whoever has the link."""
    tokens = request.app[LIVE].tokens
    token = request.match_info["token"]
    avatar = tokens.avatars.get(token)
    if avatar is None:
        return _refusal(
            404, "no_avatar", "this watch link has no avatar of its own: show the default one"
        )
    # Replaced or dropped at any moment, and maybe a private model: no cache keeps a copy.
    # An attachment: opened as a page, it is a download, never a document of this origin.
    response = web.StreamResponse(
        headers={"Cache-Control": "no-store", "Content-Disposition": "attachment"}
    )
    response.content_type = "model/gltf-binary"
    response.content_length = len(avatar.data)
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    # A piece at a time, each within --send-timeout: written whole, the file would wait in
    # the socket's buffer, a copy per reader that does not read, outside --avatar-memory-mb.
    # A reader of a replaced or dropped avatar is cut off too, so no reader keeps an old
    # one alive: the watchers were told where the new one is.
    send_timeout = request.app[CONFIG].send_timeout
    data = memoryview(avatar.data)
    for start in range(0, len(data), CHUNK):
        if tokens.avatars.get(token) is not avatar:
            return _cut_off(request, response)
        try:
            async with asyncio.timeout(send_timeout):
                await response.write(data[start : start + CHUNK])
        except TimeoutError:
            log.info("a watch link's avatar: its reader read nothing for %g s", send_timeout)
            return _cut_off(request, response)
        except ConnectionResetError:
            break  # the reader left: nobody to answer
    return response


def _cut_off(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Ends a download half sent: the connection closes, and its client sees a short body."""
    if request.transport is not None:
        request.transport.abort()
    return response
