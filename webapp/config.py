"""Every setting of the server: one frozen dataclass, built from CLI flags with env-var twins."""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from webapp import flags
from webapp.config_checks import problems
from webapp.defaults import (
    MIN_SESSION_FPS,
    default_max_sessions,
    default_state_dir,
    default_workers,
    parse_min_fps,
)
from webapp.protocol import Track

ENV_PREFIX = "HOLOTRACK_"
# The other commands' twins, and the names compose, the nginx image, the image build
# scripts and the tests' media read: not this server's settings, yet not mistakes either.
OTHER_PREFIXES = ("HOLOTRACK_RELAY_", "HOLOTRACK_SWARM_", "HOLOTRACK_CLUSTER_")
OTHER_NAMES = frozenset(
    {
        *("HOLOTRACK_MEDIA", "HOLOTRACK_REPLICAS"),
        *("HOLOTRACK_LISTEN", "HOLOTRACK_BACKENDS", "HOLOTRACK_LINK_BACKENDS"),
        *("HOLOTRACK_IMAGE", "HOLOTRACK_BASE_IMAGE", "HOLOTRACK_DEBIAN_MIRROR"),
    }
)


@dataclass(frozen=True)
class Config:
    host: str = field(
        default="127.0.0.1",
        metadata={"help": "address to listen on; empty: every interface, IPv4 and IPv6"},
    )
    port: int = field(default=8080, metadata={"help": "TCP port"})
    workers: int = field(
        default_factory=default_workers,
        metadata={"help": "inference worker processes (one graph runs at a time in each)"},
    )
    max_waiting: int = field(
        default=64, metadata={"help": "most POST /predict requests that may wait for a worker"}
    )
    max_queue_seconds: float = field(
        default=1.5,
        metadata={
            "help": "a POST /predict is refused (503) when the work already waiting would "
            "take longer than this to clear"
        },
    )
    request_timeout: float = field(
        default=10.0, metadata={"help": "seconds a POST /predict may take before 504"}
    )
    max_upload_bytes: int = field(
        default=10 * 1024 * 1024, metadata={"help": "largest accepted upload body, in bytes"}
    )
    max_pixels: int = field(
        default=25_000_000, metadata={"help": "largest accepted decoded image, width x height"}
    )
    no_cache: bool = field(
        default=False, metadata={"help": "do not answer repeated uploads from the cache"}
    )
    cache_entries: int = field(default=256, metadata={"help": "answers kept in the upload cache"})
    max_sessions: int = field(
        default_factory=default_max_sessions,
        metadata={"help": "live WebSocket sessions before new ones get 1013"},
    )
    max_fps: float = field(default=30.0, metadata={"help": "highest frame rate granted"})
    min_session_fps: str = field(
        default=MIN_SESSION_FPS,
        metadata={
            "help": "a new session gets 1013 when admitting it would grant any session less "
            "than this (or than it asked, if less), judged from the measured cost of a frame; "
            "one rate for every track, or TRACK=FPS pairs; 0: admit up to --max-sessions"
        },
    )
    max_frame_bytes: int = field(
        default=1024 * 1024, metadata={"help": "largest WebSocket frame, in bytes (at most 2 GiB)"}
    )
    max_frame_pixels: int = field(
        default=4_000_000,
        metadata={
            "help": "largest decoded live frame, width x height (and at most --max-pixels); "
            "past it the frame gets a too_many_pixels error"
        },
    )
    idle_timeout: float = field(
        default=30.0,
        metadata={
            "help": "seconds without a frame, while the server holds none of its frames, "
            "before a session closes (4000)"
        },
    )
    heartbeat: float = field(
        default=15.0,
        metadata={"help": "seconds between WebSocket pings that find dead peers (at least 1)"},
    )
    max_session_seconds: float = field(
        default=4 * 3600.0,
        metadata={"help": "longest a live session may last before 4004 (reconnect to go on)"},
    )
    max_sessions_per_client: int = field(
        default=16,
        metadata={
            "help": "live sessions one client address may hold, videos it may have arriving "
            "or running at once, and images (POST /predict) arriving (0: no limit)"
        },
    )
    allowed_origins: str = field(
        default="",
        metadata={
            "help": "browser Origins allowed on /ws, pairing claims and uploads, comma-separated, "
            "instead of the same origin (list this server's own origin too); "
            "empty: same origin only (clients sending no Origin, like scripts, are "
            "allowed); *: any"
        },
    )
    refuse_when_full: bool = field(
        default=False,
        metadata={
            "help": "answer a WebSocket upgrade with HTTP 503 when a session with the "
            "hello's defaults (holistic, 15 fps) could not be admitted, so a load balancer "
            "tries another replica (off: 1013 after hello, with a reason the page shows); "
            "a lighter session that would still fit is refused too (the hello is not read "
            "yet); never a watcher's (?watcher=1), which takes no room"
        },
    )
    trust_proxy: bool = field(
        default=False,
        metadata={"help": "take the client address from X-Forwarded-For (behind nginx)"},
    )
    send_timeout: float = field(
        default=10.0,
        metadata={"help": "seconds a result may wait for a client that stopped reading"},
    )
    upload_timeout: float = field(
        default=30.0,
        metadata={
            "help": "seconds an upload body may take to arrive before 408, plus 1 s for "
            "each 250 kB its Content-Length declares"
        },
    )
    keepalive_timeout: float = field(
        default=75.0,
        metadata={
            "help": "seconds an HTTP connection may stay open with no request in progress "
            "(from its opening until its first request's headers are in, and between "
            "requests) before it is closed: slow or missing headers end there"
        },
    )
    stats_interval: float = field(
        default=2.0,
        metadata={"help": "seconds between stats messages to each session (at least 0.1)"},
    )
    vmc_allow: str = field(
        default="",
        metadata={
            "help": "VMC receivers (HOST:PORT, comma-separated) a session may ask the server to "
            "send its rig to over UDP; empty: none, the server sends no UDP at all"
        },
    )
    max_watchers: int = field(
        default=4, metadata={"help": "read-only watchers (watch links) one session may have"}
    )
    watch_grace: float = field(
        default=60.0,
        metadata={
            "help": "seconds a session's watchers and watch link wait for its camera to "
            "reconnect after its connection was lost or it paused (0: they end with the session)"
        },
    )
    tls_cert: str = field(
        default="",
        metadata={
            "help": "serve HTTPS (and wss:// for /ws) with this PEM certificate chain; "
            "needs --tls-key"
        },
    )
    tls_key: str = field(default="", metadata={"help": "the PEM private key of --tls-cert"})
    self_signed: bool = field(
        default=False,
        metadata={
            "help": "serve HTTPS with a self-signed certificate for this machine's names and "
            "addresses, so a phone on the LAN may use its camera; made once, kept in "
            "--state-dir and reused until it expires or the addresses change"
        },
    )
    local_http_port: int = field(
        default=0,
        metadata={
            "help": "with HTTPS on, also serve plain HTTP on 127.0.0.1 at this port for this "
            "machine's own browsers that refuse a self-signed certificate, like OBS's Browser "
            "Source opening a watch link (0: off)"
        },
    )
    state_dir: str = field(
        default_factory=default_state_dir,
        metadata={"help": "folder for what is kept between starts (the --self-signed certificate)"},
    )
    log_format: str = field(
        default="text", metadata={"help": "log line format: text or json (one object a line)"}
    )
    verbose: bool = field(default=False, metadata={"help": "keep MediaPipe's native log output"})
    max_export_bytes: int = field(
        default=32 * 1024 * 1024,
        metadata={"help": "largest recording POST /api/export accepts, in bytes (413 beyond)"},
    )
    max_export_frames: int = field(
        default=18_000,
        metadata={
            "help": "most frames (lines) a recording POST /api/export converts (413 beyond); "
            "the pages' Record limit, and 600 s of video at 30 fps"
        },
    )
    avatar: str = field(
        default="",
        metadata={
            "help": "a .vrm file to serve as the avatar pages' default, the one the OBS view "
            "shows; empty: the bundled media/godette_avatar.vrm"
        },
    )
    max_avatar_mb: int = field(
        default=32,
        metadata={
            "help": "largest avatar a camera may give its watch link for the OBS view "
            "(PUT /api/avatar/TOKEN), in MiB (413 beyond)"
        },
    )
    avatar_memory_mb: int = field(
        default=256,
        metadata={
            "help": "memory the avatars cameras gave their watch links may hold together, "
            "in MiB (503 beyond); kept only while each link lives, never on disk; 0: the "
            "server keeps none, and the OBS view shows only the default avatar"
        },
    )
    access_keys: str = field(
        default="",
        metadata={
            "help": "require an access key on every API and WebSocket route: a file of keys, "
            'one JSON object a line ({"name", "key", "max_sessions", "predict_per_minute", '
            '"video_seconds_per_hour"}), re-read on SIGHUP; empty: open to anyone'
        },
    )
    video_max_bytes: int = field(
        default=64 * 1024 * 1024,
        metadata={"help": "largest video a POST /api/video may upload, in bytes (413)"},
    )
    video_max_seconds: float = field(
        default=600.0,
        metadata={"help": "longest video POST /api/video accepts, in seconds (413); at most a day"},
    )
    video_max_pixels: int = field(
        # DCI 4K, which action cameras and drones record, as well as UHD's 3840x2160.
        default=4096 * 2160,
        metadata={"help": "largest video frame POST /api/video accepts, width x height (413)"},
    )
    video_max_fps: float = field(
        default=30.0,
        metadata={
            "help": "frames per second of video POST /api/video processes; faster videos "
            "are decimated to this rate, not refused; at most 1000"
        },
    )
    video_waiting_seconds: float = field(
        default=10.0,
        metadata={
            "help": "while a POST /api/video answer waits longer than this for its graph or "
            "a frame's result, it sends a waiting line every this many seconds, so a proxy "
            "(nginx's proxy_read_timeout: 60 s) does not cut the silent answer; 0: none"
        },
    )
    overlap_frames: bool = field(
        default=False,
        metadata={
            "help": "let a worker serving one live session alone take that session's next "
            "frame before the previous one is out (two in its graph at once)"
        },
    )

    @property
    def min_fps(self) -> dict[Track, float]:
        return parse_min_fps(self.min_session_fps)


DESCRIPTION = "Holotrack server. Every flag has an environment twin, shown in brackets."


def env_name(name: str) -> str:
    return flags.env_name(ENV_PREFIX, name)


def build_parser() -> argparse.ArgumentParser:
    return flags.build_parser(Config, ENV_PREFIX, "python -m webapp", DESCRIPTION)


def load_config(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    read_files: bool = True,
    check: bool = True,
    on_error: Callable[[str], NoReturn] | None = None,
    prog: str = "python -m webapp",
    description: str = DESCRIPTION,
) -> Config:
    """Flags win over environment variables, which win over the defaults. `read_files`
    False checks the values but not the files they name: for asking where a running
    server listens (webapp/healthcheck.py), whose keys file may have changed since.
    `check` False leaves the values' problems to the caller (config_checks.problems);
    `on_error` says a refused flag or environment value instead of argparse."""
    return flags.load(
        Config,
        prefix=ENV_PREFIX,
        prog=prog,
        description=description,
        validate=lambda config: problems(config, read_files) if check else [],
        argv=argv,
        environ=environ,
        on_error=on_error,
    )


def unknown_twins(environ: Mapping[str, str]) -> list[str]:
    """A line for each HOLOTRACK_ variable that is no setting, with the twin it may have
    meant: HOLOTRACK_MAX_SESSION=4 in a compose file was ignored without a word, and the
    server ran with its default of 40."""
    twins = [env_name(f.name) for f in dataclasses.fields(Config)]
    lines = []
    for name in sorted(environ):
        if (
            not name.startswith(ENV_PREFIX)
            or name in twins
            or name in OTHER_NAMES
            or name.startswith(OTHER_PREFIXES)
        ):
            continue
        # Without the prefix they all share, any name came close to some twin.
        near = difflib.get_close_matches(
            name.removeprefix(ENV_PREFIX), [twin.removeprefix(ENV_PREFIX) for twin in twins], n=1
        )
        meant = f"; did you mean {ENV_PREFIX}{near[0]}?" if near else ""
        lines.append(f"{name} is no setting of the server and is ignored{meant}")
    return lines


def json_logs_asked(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> bool:
    """Whether the command asks for JSON lines, read before the settings are: a value that
    cannot be read at all (a compose file's HOLOTRACK_PORT=abc) stops the start before
    there is a Config to say how to log it."""
    early = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    early.add_argument("--log-format")
    try:
        given = early.parse_known_args(argv)[0].log_format
    except argparse.ArgumentError:
        # "--log-format" with no value: the full parser says so, as "python -m webapp"
        # with its own usage; this one's error said "__main__.py" and a one-flag usage.
        given = None
    env = os.environ if environ is None else environ
    return (given or env.get(env_name("log_format"), "")) == "json"
