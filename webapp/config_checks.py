"""What `Config` refuses: every flag's bounds and the combinations that do not go together,
each as one line naming the flag (the server exits 2 with all of them)."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from yarl import URL

from webapp.access.keyfile import KeysFileError, read_keys
from webapp.defaults import parse_min_fps
from webapp.live.avatars import GLB_MAGIC
from webapp.origins import allowed_origins
from webapp.vmc.sender import parse_allow

if TYPE_CHECKING:
    from webapp.config import Config

# Past these the video limits' products overflow a float: --video-max-seconds 1e306 started
# a server whose every POST /api/video was a 500 (OverflowError), and --video-max-fps 1e308
# too. A day is far beyond any upload --video-max-bytes lets through at a sane size, and no
# camera records faster than the 1,000 samples a second an MP4's tables may list.
MAX_VIDEO_SECONDS = 86400.0
MAX_VIDEO_FPS = 1000.0
# A lost camera's watchers wait at most an hour: longer keeps a dead link for nothing.
MAX_WATCH_GRACE = 3600.0
MIN_HEARTBEAT = 1.0
MIN_STATS_INTERVAL = 0.1
# aiohttp's WebSocket reader keeps its message limit (this plus the frame header and some
# room, live/handler.py) in 32 bits: from 4 GiB on, every /ws upgrade was a 500 with an
# OverflowError traceback, on a server that had started as if nothing were wrong.
MAX_FRAME_BYTES = 2 * 1024**3


def problems(config: Config, read_files: bool = True) -> list[str]:
    """What is wrong with the settings; with `read_files` False, the files they name are
    not read (the health check's: the server refuses a file that went bad since it began)."""
    found = []
    for name in (
        "workers",
        "max_upload_bytes",
        "max_pixels",
        "max_sessions",
        "max_frame_bytes",
        "max_frame_pixels",
        "max_waiting",
        "max_export_bytes",
        "max_export_frames",
        "video_max_bytes",
        "video_max_pixels",
        "max_avatar_mb",
    ):
        if getattr(config, name) < 1:
            found.append(f"--{name.replace('_', '-')} must be at least 1")
    if config.max_frame_bytes > MAX_FRAME_BYTES:
        found.append(f"--max-frame-bytes must be 1 to {MAX_FRAME_BYTES} (2 GiB)")
    if config.allowed_origins.strip() != "*":
        _, wrong = allowed_origins(config.allowed_origins)
        if wrong:
            # A bare host name matches no browser's Origin: every page would be refused.
            found.append(
                f"--allowed-origins: {', '.join(map(repr, wrong))} "
                f"{'is not an origin' if len(wrong) == 1 else 'are not origins'} "
                "(scheme://host[:port], as https://track.example.org), or * for any"
                + ("; * stands alone, for any" if "*" in wrong else "")
                + (
                    "; a pattern matches nothing: list each origin"
                    if any("*" in entry and entry != "*" for entry in wrong)
                    else ""
                )
            )
    if config.log_format not in {"text", "json"}:
        found.append("--log-format must be text or json")
    try:
        parse_allow(config.vmc_allow)
    except ValueError as exc:
        found.append(f"--vmc-allow: {exc}")
    if bool(config.tls_cert) != bool(config.tls_key):
        found.append("--tls-cert and --tls-key go together: give both or neither")
    if config.self_signed and (config.tls_cert or config.tls_key):
        found.append("--self-signed or --tls-cert/--tls-key, not both")
    if config.self_signed and not config.state_dir.strip():
        # An empty HOLOTRACK_STATE_DIR (a compose file's unset variable) kept the private
        # key in whatever folder the server was started from.
        found.append("--state-dir must name a folder to keep the --self-signed certificate in")
    if config.local_http_port:
        if not (config.self_signed or config.tls_cert):
            found.append("--local-http-port is for HTTPS: add --self-signed or --tls-cert")
        if config.local_http_port == config.port or not 0 < config.local_http_port < 65536:
            found.append("--local-http-port must be a free port other than --port")
    if config.avatar and read_files:
        problem = avatar_problem(Path(config.avatar))
        if problem:
            found.append(f"--avatar: {problem}")
    if config.access_keys and read_files:
        try:
            read_keys(Path(config.access_keys))
        except KeysFileError as exc:
            found.append(f"--access-keys: {exc}")
    try:
        rates = parse_min_fps(config.min_session_fps).values()
        # Written so that NaN fails too; inf would refuse every session, by rate.
        if not all(0 <= rate < math.inf for rate in rates):
            found.append("--min-session-fps must be 0 or more, and finite")
    except ValueError as exc:
        found.append(f"--min-session-fps: {exc}")
    if config.avatar_memory_mb < 0:
        found.append("--avatar-memory-mb must be 0 (no uploaded avatars) or more")
    elif 0 < config.avatar_memory_mb < config.max_avatar_mb:
        # An avatar under --max-avatar-mb but over the whole budget was refused 503 "try
        # again once other links end" on an empty server, and every time after.
        found.append(
            f"--avatar-memory-mb must be 0 (no uploaded avatars) or at least --max-avatar-mb "
            f"({config.max_avatar_mb}): an avatar the server accepts must fit in it"
        )
    if config.cache_entries < 0:
        found.append("--cache-entries must be 0 (no cache, as --no-cache) or more")
    if config.max_watchers < 0:
        found.append("--max-watchers must be 0 (no watchers) or more")
    if not 0 <= config.watch_grace <= MAX_WATCH_GRACE:
        found.append(f"--watch-grace must be 0 to {MAX_WATCH_GRACE:g} seconds")
    if not 0 <= config.video_waiting_seconds < math.inf:
        found.append("--video-waiting-seconds must be 0 (no waiting lines) or more")
    if config.video_max_seconds > MAX_VIDEO_SECONDS:
        found.append(f"--video-max-seconds must be at most {MAX_VIDEO_SECONDS:g} (a day)")
    if config.video_max_fps > MAX_VIDEO_FPS:
        found.append(f"--video-max-fps must be at most {MAX_VIDEO_FPS:g}")
    if config.max_sessions_per_client < 0:
        found.append("--max-sessions-per-client must be 0 (no limit) or more")
    for name in (
        "request_timeout",
        "idle_timeout",
        "max_fps",
        "max_session_seconds",
        "send_timeout",
        "upload_timeout",
        "keepalive_timeout",
        "max_queue_seconds",
        "video_max_seconds",
        "video_max_fps",
    ):
        # Written so that NaN fails too: "nan" and "inf" parse as floats, and a NaN timeout
        # turned off the idle limit and put NaN (not JSON) in every ready message.
        if not 0 < getattr(config, name) < math.inf:
            found.append(f"--{name.replace('_', '-')} must be a positive number")
    # aiohttp takes a negative heartbeat: every session then died at once (1006). Below
    # the floors, a value meant in milliseconds (15 for 15 s written 0.015) had every
    # session pinged or sent stats hundreds of times a second, the whole server's load.
    if not MIN_HEARTBEAT <= config.heartbeat < math.inf:
        found.append(f"--heartbeat must be at least {MIN_HEARTBEAT:g} s (a number of seconds)")
    if not MIN_STATS_INTERVAL <= config.stats_interval < math.inf:
        found.append(
            f"--stats-interval must be at least {MIN_STATS_INTERVAL:g} s (a number of seconds)"
        )
    if not 0 < config.port < 65536:
        found.append("--port must be 1 to 65535")
    if config.host and not listenable(config.host):
        found.append(
            f"--host {config.host!r} is not an address or host name: give it alone, as "
            "0.0.0.0, ::1 or localhost (no scheme, port, brackets or spaces; the port is --port)"
        )
    return found


def listenable(host: str) -> bool:
    """Whether the server can name `host` in its own URL: "localhost:8080", "[::1]" or a
    trailing space passed as a host failed to bind, and naming it in that one-line reason
    (aiohttp builds the URL with yarl) was a traceback, after the workers had started."""
    try:
        URL.build(scheme="http", host=host)
    except ValueError:
        return False
    return True


# Compression three.js reads only with a decoder the avatar page does not load: the page
# refuses a chosen file using it (static/avatar/avatar.js, COMPRESSIONS), but loads the
# default avatar by its URL, unchecked, and said "not a glTF/VRM model (THREE.GLTFLoader:
# No DRACOLoader instance provided.)" to every visitor and in every OBS view.
COMPRESSIONS = {
    "KHR_draco_mesh_compression": "Draco mesh compression",
    "EXT_meshopt_compression": "meshopt compression",
    "KHR_texture_basisu": "KTX2 (Basis Universal) textures",
}
# A VRM's JSON chunk is a few hundred KB; a larger one is left to the browser to judge.
MAX_GLB_JSON_BYTES = 64 * 1024 * 1024


def avatar_problem(path: Path) -> str:
    """Why `path` cannot be the default avatar, or "": a VRM is a binary glTF (GLB), which
    opens with its magic word; anything else would fail in every visitor's browser."""
    try:
        with path.open("rb") as file:
            magic = file.read(4)
            compression = "" if magic != GLB_MAGIC else _compression(file)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    if magic != GLB_MAGIC:
        return f"{path} is not a .vrm (a binary glTF file)"
    if compression:
        return (
            f"{path} uses {compression}, which the avatar page cannot unpack: export it "
            "again without compression"
        )
    return ""


def _compression(file: BinaryIO) -> str:
    """The compression the GLB after its magic word requires, in words, or "" (none, or a
    file the browser's loader will name the fault of)."""
    header = file.read(16)  # version, length, then the JSON chunk's length and type
    if len(header) < 16:
        return ""
    length = struct.unpack_from("<I", header, 8)[0]
    if length > MAX_GLB_JSON_BYTES:
        return ""
    try:
        gltf = json.loads(file.read(length))
    except ValueError:
        return ""
    if not isinstance(gltf, dict):
        return ""
    required = gltf.get("extensionsRequired")
    used = gltf.get("extensionsUsed")
    required = required if isinstance(required, list) else []
    used = used if isinstance(used, list) else []
    # Draco stops three.js's loader wherever it is used; the others only where required.
    found = [
        f"{words} ({name})"
        for name, words in COMPRESSIONS.items()
        if name in required or (name == "KHR_draco_mesh_compression" and name in used)
    ]
    return " and ".join(found)
