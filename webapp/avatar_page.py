"""GET /avatar: the VRM avatar page and its OBS view, and the few npm files it imports.

three.js and three-vrm come from the npm registry (package.json, package-lock.json) and are
installed into node_modules/ by `make run` and `make test`. Only the files the page imports
are served, each named below: node_modules/ as a whole is never exposed. Without them the
page answers in words what is missing, and every other route works as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from webapp.engine.blendshapes import NAMES as ARKIT_NAMES
from webapp.http_errors import expect
from webapp.keys import CONFIG
from webapp.live.avatars import MB
from webapp.reach import phone_origins
from webapp.static_files import file_response

ROOT = Path(__file__).resolve().parent.parent
VENDOR_PREFIX = "/vendor/"
DEFAULT_AVATAR_URL = "/avatar/default.vrm"

# URL under /vendor/ -> file under node_modules/. three.module.js imports three.core.js;
# GLTFLoader imports BufferGeometryUtils and SkeletonUtils; three-vrm imports only "three".
VENDOR_FILES: dict[str, str] = {
    "three/build/three.module.js": "three/build/three.module.js",
    "three/build/three.core.js": "three/build/three.core.js",
    "three/examples/jsm/loaders/GLTFLoader.js": "three/examples/jsm/loaders/GLTFLoader.js",
    "three/examples/jsm/utils/BufferGeometryUtils.js": (
        "three/examples/jsm/utils/BufferGeometryUtils.js"
    ),
    "three/examples/jsm/utils/SkeletonUtils.js": "three/examples/jsm/utils/SkeletonUtils.js",
    "three-vrm/lib/three-vrm.module.js": "@pixiv/three-vrm/lib/three-vrm.module.js",
    # The QR codes: the avatar page's link to a phone, the fitness page's coach link (qr.js).
    "qrcode-generator/dist/qrcode.mjs": "qrcode-generator/dist/qrcode.mjs",
}

# The page's bare imports, resolved to the files above (the template's <script type=importmap>).
QR_IMPORTS = {"qrcode-generator": VENDOR_PREFIX + "qrcode-generator/dist/qrcode.mjs"}
IMPORT_MAP: dict[str, dict[str, str]] = {
    "imports": {
        "three": VENDOR_PREFIX + "three/build/three.module.js",
        "three/addons/": VENDOR_PREFIX + "three/examples/jsm/",
        "@pixiv/three-vrm": VENDOR_PREFIX + "three-vrm/lib/three-vrm.module.js",
        **QR_IMPORTS,
    }
}
# The fitness page draws only the coach link's QR code.
QR_IMPORT_MAP: dict[str, dict[str, str]] = {"imports": QR_IMPORTS}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class AvatarPaths:
    """Where the page's files live; tests point these elsewhere."""

    node_modules: Path = field(default_factory=lambda: ROOT / "node_modules")
    default_avatar: Path = field(default_factory=lambda: ROOT / "media" / "godette_avatar.vrm")


def missing_files(paths: AvatarPaths) -> list[str]:
    """The vendored files and the default avatar that are not on disk, as readable paths."""
    missing = [
        f"node_modules/{name}"
        for name in VENDOR_FILES.values()
        if not (paths.node_modules / name).is_file()
    ]
    if not paths.default_avatar.is_file():
        missing.append(str(paths.default_avatar))
    return missing


def avatar_page(paths: AvatarPaths) -> Handler:
    """GET /avatar (the page) and GET /avatar?watch=TOKEN (the avatar alone, for OBS)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        # Checked on every request, so `npm ci` run beside a live server takes effect at once.
        missing = missing_files(paths)
        uploads = request.app[CONFIG].avatar_memory_mb
        context: dict[str, Any] = {
            "missing": missing,
            "import_map": IMPORT_MAP,
            "default_avatar": DEFAULT_AVATAR_URL,
            # The page tells whether a chosen avatar has expressions these can drive.
            "arkit_names": " ".join(ARKIT_NAMES),
            # A field for VMC receivers only where the operator allows some; which ones is
            # the operator's to tell, not the page's.
            "vmc": bool(request.app[CONFIG].vmc_allow.strip()),
            "watch": "watch" in request.query,
            # "Show it in OBS too" only where the server keeps avatars for watch links.
            "avatar_uploads": uploads > 0,
            "max_avatar_bytes": request.app[CONFIG].max_avatar_mb * MB if uploads else 0,
            # Where the QR code of "Use a phone or another computer as the camera" may lead.
            "phone_origins": phone_origins(request),
            # This page follows the phone's session as a watcher: none allowed, no phone.
            "max_watchers": request.app[CONFIG].max_watchers,
        }
        response = aiohttp_jinja2.render_template("avatar.html", request, context)
        if missing:
            response.set_status(503)
        # The OBS view is fetched by a browser source that may sit on another machine; the
        # page itself is not worth caching, its modules are.
        response.headers["Cache-Control"] = "no-cache"
        return response

    return handler


def vendor_file(paths: AvatarPaths) -> Handler:
    """GET /vendor/{name}: one of VENDOR_FILES from node_modules, nothing else."""

    async def handler(request: web.Request) -> web.StreamResponse:
        name = VENDOR_FILES.get(request.match_info["name"])
        if name is None:
            raise web.HTTPNotFound(text="not a file the avatar page uses\n")
        path = paths.node_modules / name
        if not path.is_file():
            raise web.HTTPNotFound(text=f"node_modules/{name} is missing: run make run or npm ci\n")
        return file_response(request, path, headers={"Content-Type": "text/javascript"})

    return handler


def default_avatar(paths: AvatarPaths) -> Handler:
    """GET /avatar/default.vrm: the avatar that ships in media/ (credited in PROVENANCE.md)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if not paths.default_avatar.is_file():
            raise web.HTTPNotFound(text=f"{paths.default_avatar} is missing\n")
        return file_response(
            request, paths.default_avatar, headers={"Content-Type": "model/gltf-binary"}
        )

    return handler


def setup_avatar_routes(app: web.Application, paths: AvatarPaths | None = None) -> None:
    """Adds GET /avatar, /avatar/default.vrm (the operator's --avatar, if set) and
    /vendor/{name}. The page's own modules and stylesheet are under /static/avatar/, served
    by the existing /static route."""
    if paths is None:
        chosen = app[CONFIG].avatar
        paths = AvatarPaths(default_avatar=Path(chosen)) if chosen else AvatarPaths()
    app.router.add_get("/avatar", avatar_page(paths), name="avatar", expect_handler=expect)
    app.router.add_get(
        DEFAULT_AVATAR_URL, default_avatar(paths), name="avatar_default", expect_handler=expect
    )
    app.router.add_get(
        VENDOR_PREFIX + "{name:.+}", vendor_file(paths), name="vendor", expect_handler=expect
    )
