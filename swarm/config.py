"""Every setting of the swarm: one frozen dataclass, built from CLI flags with env-var twins."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from webapp import flags as settings
from webapp.defaults import default_workers

ENV_PREFIX = "HOLOTRACK_SWARM_"
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VIDEO = "asl_signer_intel_640x480_30fps.mp4"
# Refuse absurd runs outright: the swarm must stay bounded in time and count.
MAX_STEP_SESSIONS = 5000
MAX_STEPS = 100
MODES = ("paced", "firehose")
TRACKS = ("holistic", "pose")
# Hello fields with flags of their own.
OWN_HELLO_FIELDS = ("type", "version", "track", "fps")
# Longest wait for the stats message that closes the books on a session, whatever
# stats_interval the server announces.
FINAL_STATS_WAIT = 5.0


def media_dir() -> Path:
    """The test media that ships in the repository's media/, or $HOLOTRACK_MEDIA."""
    return Path(os.environ.get("HOLOTRACK_MEDIA", str(ROOT / "media")))


def default_source() -> str:
    return str(media_dir() / DEFAULT_VIDEO)


@dataclass(frozen=True)
class SwarmConfig:
    url: str = field(
        default="ws://127.0.0.1:8080/ws", metadata={"help": "the /ws endpoint to load (only here)"}
    )
    sessions: str = field(
        default="1,2,4,8", metadata={"help": "comma-separated session counts, one step each"}
    )
    ramp: str = field(
        default="", metadata={"help": "START:STOP:STEP session counts; replaces --sessions"}
    )
    fps: float = field(default=15.0, metadata={"help": "target frames/s per session"})
    track: str = field(
        default="holistic", metadata={"help": "what each session asks for", "choices": TRACKS}
    )
    hello_options: str = field(
        default="",
        metadata={
            "help": "a JSON object added to every hello, as a page sends it: "
            '\'{"rig": true, "blendshapes": true}\' sizes the server for VTubers, '
            '\'{"exercise": "squat"}\' for workouts (docs/protocol.md)'
        },
    )
    mode: str = field(
        default="paced",
        metadata={
            "help": "paced: like the page (a frame on each turn, else the granted rate; "
            "bounded in flight); firehose: the target rate whatever comes back",
            "choices": MODES,
        },
    )
    source: str = field(
        default_factory=default_source,
        metadata={"help": "video file or folder of images to cut frames from"},
    )
    width: int = field(default=480, metadata={"help": "frame width sent, like the page"})
    quality: int = field(default=70, metadata={"help": "JPEG quality sent, like the page"})
    max_frames: int = field(default=300, metadata={"help": "frames taken from the source"})
    in_flight: int = field(
        default=2, metadata={"help": "paced mode: frames sent without a result yet, at most"}
    )
    ignore_turns: bool = field(
        default=False,
        metadata={
            "help": "paced mode: keep to the granted rate and ignore the server's turn "
            "messages, as clients did before turns (for comparison)"
        },
    )
    warmup: float = field(default=3.0, metadata={"help": "seconds of each step not measured"})
    hold: float = field(default=10.0, metadata={"help": "seconds of each step measured"})
    drain: float = field(
        default=2.0, metadata={"help": "seconds to wait for outstanding results after a step"}
    )
    connect_timeout: float = field(
        default=10.0, metadata={"help": "seconds for a session to connect and get ready"}
    )
    spawn_rate: float = field(
        default=100.0, metadata={"help": "sessions opened per second at the start of a step"}
    )
    max_duration: float = field(
        default=900.0, metadata={"help": "seconds the whole run may take; it stops there"}
    )
    stop_after: int = field(
        default=2, metadata={"help": "stop after this many failing steps in a row"}
    )
    slo_fps_ratio: float = field(
        default=0.9, metadata={"help": "SLO: a session is served at this fraction of --fps"}
    )
    slo_session_share: float = field(
        default=0.95, metadata={"help": "SLO: fraction of sessions that must be served"}
    )
    slo_p95_ms: float = field(
        default=250.0, metadata={"help": "SLO: p95 latency, capture to result, in ms"}
    )
    slo_max_errors: int = field(default=0, metadata={"help": "SLO: errors allowed in a step"})
    calibrate: bool = field(
        default=False, metadata={"help": "first measure the model in-process (raw frames/s)"}
    )
    calibrate_seconds: float = field(
        default=8.0, metadata={"help": "seconds each calibration process runs the model"}
    )
    calibrate_workers: int = field(
        default=0,
        metadata={
            "help": "calibration processes, at most one per core it may run on (0: one per core)"
        },
    )
    origin: str = field(default="", metadata={"help": "Origin header to send, if any"})
    metrics_url: str = field(
        default="",
        metadata={
            "help": "the server's /metrics, read at the start and end of each hold for its "
            "CPU, memory and busy share; several replicas comma-separated (they add up); "
            "empty: /metrics on --url's host; none: do not read it"
        },
    )
    out: str = field(default="out/swarm", metadata={"help": "folder for the report"})

    @property
    def steps(self) -> tuple[int, ...]:
        return parse_steps(self.sessions, self.ramp)

    def step_seconds(self, sessions: int) -> float:
        """The longest a step of `sessions` takes once its sessions have had their first answer."""
        return sessions / self.spawn_rate + self.warmup + self.hold + self.drain + FINAL_STATS_WAIT

    @functools.cached_property
    def extra_hello(self) -> dict[str, Any]:
        """--hello-options parsed, once for all sessions."""
        return parse_hello_options(self.hello_options)


def parse_hello_options(text: str) -> dict[str, Any]:
    """--hello-options as a dict; ValueError says what is wrong."""
    if not text.strip():
        return {}
    try:
        options = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"--hello-options is not JSON: {exc}") from None
    if not isinstance(options, dict):
        raise ValueError("--hello-options must be a JSON object")
    own = sorted(set(options) & set(OWN_HELLO_FIELDS))
    if own:
        raise ValueError(f"--hello-options may not set {', '.join(own)}: they have flags")
    return options


def parse_steps(sessions: str, ramp: str) -> tuple[int, ...]:
    if ramp.strip():
        parts = ramp.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"--ramp wants START:STOP:STEP, got {ramp!r}")
        try:
            start, stop = int(parts[0]), int(parts[1])
            step = int(parts[2]) if len(parts) == 3 else 1
        except ValueError:
            # int()'s own words ("invalid literal for int() with base 10") named neither
            # the flag nor what it takes.
            raise ValueError(f"--ramp wants whole numbers START:STOP:STEP, got {ramp!r}") from None
        if step < 1 or stop < start:
            raise ValueError(f"--ramp {ramp!r} does not count upwards")
        counts = range(start, stop + 1, step)
        # Bounded while still a range: a STOP with a few zeros too many (1:1000000000)
        # filled memory as a tuple before validate() could count its steps.
        if start < 1 or stop > MAX_STEP_SESSIONS:
            raise ValueError(f"every step must have 1 to {MAX_STEP_SESSIONS} sessions")
        if len(counts) > MAX_STEPS:
            raise ValueError(f"at most {MAX_STEPS} steps")
        return tuple(counts)
    try:
        return tuple(int(p) for p in sessions.split(",") if p.strip())
    except ValueError:
        raise ValueError(
            f"--sessions wants whole numbers of sessions, comma-separated, got {sessions!r}"
        ) from None


DESCRIPTION = (
    "Plays many simulated browsers against a Holotrack server and finds how many sessions\n"
    "it holds at a given quality. Every flag has an environment twin, shown in brackets."
)


def env_name(name: str) -> str:
    return settings.env_name(ENV_PREFIX, name)


def build_parser() -> argparse.ArgumentParser:
    return settings.build_parser(SwarmConfig, ENV_PREFIX, "python -m swarm", DESCRIPTION)


def load_config(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> SwarmConfig:
    """Flags win over environment variables, which win over the defaults."""
    env = dict(os.environ if environ is None else environ)
    given = vars(build_parser().parse_args(argv))
    # --ramp replaces --sessions: left in, an exported HOLOTRACK_SWARM_RAMP outranked a
    # --sessions typed on the command line.
    if given["sessions"] is not None and given["ramp"] is None:
        env.pop(env_name("ramp"), None)
    return settings.load(
        SwarmConfig,
        prefix=ENV_PREFIX,
        prog="python -m swarm",
        description=DESCRIPTION,
        validate=validate,
        argv=argv,
        environ=env,
    )


def validate(config: SwarmConfig) -> list[str]:
    problems = []
    # NaN and infinity slip through every comparison below, and would run steps that
    # never fit --max-duration or write NaN into report.json.
    infinite = [
        f.name
        for f in dataclasses.fields(config)
        if f.type == "float" and not math.isfinite(getattr(config, f.name))
    ]
    for name in infinite:
        problems.append(
            f"--{name.replace('_', '-')} must be a finite number, got {getattr(config, name)}"
        )
    problems.extend(address_problems(config))
    if any((ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F for char in config.origin):
        # aiohttp refuses such a header as each session connects: a traceback per session
        # ("Task exception was never retrieved"), and a run of no errors that measured none.
        problems.append(
            f"--origin {config.origin!r} holds a control character, which no header may carry"
        )
    try:
        steps = config.steps
    except ValueError as exc:
        problems.append(str(exc))
    else:
        if not steps:
            problems.append("no steps: give --sessions or --ramp")
        elif min(steps) < 1 or max(steps) > MAX_STEP_SESSIONS:
            problems.append(f"every step must have 1 to {MAX_STEP_SESSIONS} sessions")
        elif len(steps) > MAX_STEPS:
            problems.append(f"at most {MAX_STEPS} steps")
    try:
        parse_hello_options(config.hello_options)
    except ValueError as exc:
        problems.append(str(exc))
    for name, choices in (("mode", MODES), ("track", TRACKS)):
        if getattr(config, name) not in choices:
            problems.append(f"--{name} must be one of {', '.join(choices)}")
    if not 0.5 <= config.fps <= 60:
        problems.append("--fps must be between 0.5 and 60, as the protocol allows")
    if not 1 <= config.quality <= 100:
        problems.append("--quality must be between 1 and 100")
    for name in ("width", "max_frames", "in_flight", "stop_after"):
        if getattr(config, name) < 1:
            problems.append(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("hold", "connect_timeout", "spawn_rate", "max_duration", "calibrate_seconds"):
        if getattr(config, name) <= 0:
            problems.append(f"--{name.replace('_', '-')} must be positive")
    for name in ("warmup", "drain", "slo_max_errors", "calibrate_workers"):
        if getattr(config, name) < 0:
            problems.append(f"--{name.replace('_', '-')} must not be negative")
    for name in ("slo_fps_ratio", "slo_session_share"):
        if not 0 < getattr(config, name) <= 1:
            problems.append(f"--{name.replace('_', '-')} must be in (0, 1]")
    if config.slo_p95_ms <= 0:
        problems.append("--slo-p95-ms must be positive")
    cores = default_workers()
    if config.calibrate and config.calibrate_workers > cores:
        # Each process holds a model: --calibrate-workers 1000000 began starting a million,
        # and more than the cores share them and measure no more raw frames a second.
        problems.append(
            f"--calibrate-workers must be 0 (one per core) to {cores}, the cores this "
            "process may run on"
        )
    if not problems:
        # Otherwise the run stops before its first step and reports a verdict of nothing.
        first = config.steps[0]
        need = config.step_seconds(first)
        if need > config.max_duration:
            problems.append(
                f"--max-duration {config.max_duration:g} s cannot hold one step: {first} "
                f"sessions take {need:g} s (spawning, --warmup, --hold, --drain and up to "
                f"{FINAL_STATS_WAIT:g} s for the final stats)"
            )
    return problems


def address_problems(config: SwarmConfig) -> list[str]:
    """What is wrong with --url and every --metrics-url address."""
    problems = [address_problem("--url", config.url, ("ws", "wss"))]
    if config.metrics_url.strip().lower() != "none":
        for url in filter(None, (u.strip() for u in config.metrics_url.split(","))):
            problems.append(address_problem("--metrics-url", url, ("http", "https")))
    return [problem for problem in problems if problem]


def address_problem(flag: str, url: str, schemes: tuple[str, ...]) -> str:
    """What is wrong with `url` as an address of one of `schemes` for `flag`; "" if nothing."""
    try:
        parts = urlsplit(url)
        # Read for its check alone: it raises for a port that is not a number from 0 to
        # 65535, as urlsplit does for a malformed host ("ws://[::1/ws"). Uncaught, either
        # would end the swarm with a traceback rather than refuse the flag.
        _ = parts.port
    except ValueError as exc:
        return f"{flag} {url!r} is not a valid address: {exc}"
    if parts.scheme not in schemes or not parts.netloc:
        wanted = " or ".join(f"{scheme}://" for scheme in schemes)
        return f"{flag} wants {wanted} addresses, got {url!r}"
    if not parts.hostname:
        # "ws://:8080/ws" has a netloc but no host: the run began, every session failed to
        # connect with aiohttp's InvalidUrlClientError, and the report said exit 3.
        return f"{flag} {url!r} names no host"
    return ""


def flags(config: SwarmConfig) -> dict[str, Any]:
    """The settings as the report records them, flag names as typed on the command line."""
    return {f.name.replace("_", "-"): getattr(config, f.name) for f in dataclasses.fields(config)}
