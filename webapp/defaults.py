"""The defaults that depend on the machine (memory, cores, home) or need parsing: what
`Config` starts from before flags and environment twins apply."""

from __future__ import annotations

import os

from webapp.protocol import Track

# A live Holistic graph holds about 200-300 MB once it has run; keep half the
# machine's memory for them by default.
GRAPH_BYTES = 300 * 1024 * 1024


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 4 * 1024**3


def default_workers() -> int:
    """One per core the process may run on. os.cpu_count() counts the whole machine: under
    taskset, a cpuset container or Kubernetes' static CPU policy it started a worker for
    every core of the host, each holding its graphs, on the few cores it was given."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity to ask for (macOS)
        usable = os.cpu_count() or 1
    return max(1, usable)


def default_max_sessions() -> int:
    return max(1, min(256, _memory_bytes() // 2 // GRAPH_BYTES))


# Below these rates a session is not worth admitting: an avatar's face and hands step
# visibly under 10 fps even smoothed, and a fast rep (a jumping jack) needs about 15 frames
# a second to show its turning points.
MIN_SESSION_FPS = "holistic=10,pose=15"


def parse_min_fps(text: str) -> dict[Track, float]:
    """`--min-session-fps`: one rate for every track, or TRACK=FPS pairs, comma-separated
    (a track left out keeps its default, and an empty setting both; a pair needs its
    rate); 0 admits at any rate."""
    rates = {Track(name): float(value) for name, value in _pairs(MIN_SESSION_FPS)}
    if text.strip() and "=" not in text:
        return dict.fromkeys(Track, _rate(text))
    for name, value in _pairs(text):
        if name not in set(Track):
            raise ValueError(f"{name!r} is not a track (holistic or pose)")
        rates[Track(name)] = _rate(value)
    return rates


def _rate(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a frame rate") from None


def _pairs(text: str) -> list[tuple[str, str]]:
    pairs = [item.partition("=") for item in text.split(",") if item.strip()]
    return [(name.strip(), value.strip()) for name, _, value in pairs]


def default_state_dir() -> str:
    """$XDG_STATE_HOME/holotrack, else ~/.local/state/holotrack: kept across starts and
    across working folders, outside the checkout."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(base, "holotrack")
