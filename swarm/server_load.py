"""What the server spent on a step: its /metrics read at the start and end of the hold.

CPU and busy time are counters, so a step's figures are differences over its hold window;
resident memory is a gauge, read at the end. Several /metrics addresses (one per replica
behind a balancer) add up: CPU and memory sum, busy time is shared over all their workers;
a figure is unknown unless every replica gave its part.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

CPU = "holotrack_process_cpu_seconds_total"
RSS = "holotrack_process_resident_bytes"
BUSY = "holotrack_pool_busy_seconds_total"
WORKERS = "holotrack_workers"
SCRAPE_TIMEOUT = 5.0


def metrics_urls(setting: str, ws_url: str) -> tuple[str, ...]:
    """`--metrics-url`: empty derives the address from `--url`; "none" turns scraping off."""
    if setting.strip().lower() == "none":
        return ()
    if setting.strip():
        return tuple(u.strip() for u in setting.split(",") if u.strip())
    parts = urlsplit(ws_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return (urlunsplit((scheme, parts.netloc, "/metrics", "", "")),)


@dataclass(frozen=True)
class Sample:
    """One scrape of one server, on the swarm's clock."""

    at: float
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # by process label
    rss_bytes: dict[str, float] = field(default_factory=dict)
    busy_seconds: float = 0.0
    workers: int = 0


def parse(text: str, at: float) -> Sample:
    cpu: dict[str, float] = {}
    rss: dict[str, float] = {}
    busy, workers = 0.0, 0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == CPU:
                cpu[s.labels.get("process", "")] = s.value
            elif s.name == RSS:
                rss[s.labels.get("process", "")] = s.value
            elif s.name == BUSY:
                busy = s.value
            elif s.name == WORKERS:
                workers = int(s.value)
    return Sample(at, cpu, rss, busy, workers)


@dataclass(frozen=True)
class ServerLoad:
    """The server's figures for one step; None where its /metrics did not say."""

    cpu_percent: float | None  # percent of one core, as top shows it: 2 busy cores are 200
    rss_bytes: float | None
    busy_ratio: float | None
    by_process: dict[str, dict[str, float]]  # "cpu_percent" and "rss_bytes" per process


def counter_delta(start: float | None, end: float) -> float:
    """A counter's increase; one that went down restarted from zero (a new worker)."""
    if start is None or end < start:
        return end
    return end - start


@dataclass(frozen=True)
class ReplicaLoad:
    """One server's part of a step; None where its /metrics did not say."""

    cpu_percent: float | None
    rss_bytes: float | None
    busy_seconds: float | None
    worker_seconds: float | None  # workers x the span between its two scrapes
    by_process: dict[str, dict[str, float]]


def replica_load(start: Sample | None, end: Sample | None) -> ReplicaLoad | None:
    """One server's figures between two scrapes; None unless both were read."""
    if start is None or end is None or end.at <= start.at:
        return None
    wall = end.at - start.at
    cpu = {
        name: counter_delta(start.cpu_seconds.get(name), seconds) / wall * 100.0
        for name, seconds in end.cpu_seconds.items()
    }
    by_process: dict[str, dict[str, float]] = {}
    for name, share in cpu.items():
        by_process.setdefault(name, {})["cpu_percent"] = round(share, 1)
    for name, resident in end.rss_bytes.items():
        by_process.setdefault(name, {})["rss_bytes"] = resident
    return ReplicaLoad(
        cpu_percent=sum(cpu.values()) if cpu else None,
        rss_bytes=sum(end.rss_bytes.values()) if end.rss_bytes else None,
        busy_seconds=counter_delta(start.busy_seconds, end.busy_seconds) if end.workers else None,
        worker_seconds=end.workers * wall if end.workers else None,
        by_process=by_process,
    )


def whole(parts: list[float | None]) -> float | None:
    """The sum of every server's part, or None if one is missing.

    The sum of the servers that were read would pass for the whole: one replica of two
    unread would halve the CPU and memory shown, as if they were all.
    """
    if not parts or any(part is None for part in parts):
        return None
    return sum(part for part in parts if part is not None)


def server_load(starts: list[Sample | None], ends: list[Sample | None]) -> ServerLoad | None:
    """Every server's figures added up; None if none was scraped at both ends of the window.

    A total is None unless every server gave its part (whole()); the processes of those
    that did are listed all the same, prefixed with their place in the list when several.
    """
    parts = [replica_load(a, b) for a, b in zip(starts, ends, strict=True)]
    if all(part is None for part in parts):
        return None
    by_process: dict[str, dict[str, float]] = {}
    for index, part in enumerate(parts):
        if part is None:
            continue
        prefix = f"{index}/" if len(parts) > 1 else ""
        for name, figures in part.by_process.items():
            by_process[prefix + name] = figures
    cpu = whole([p.cpu_percent if p else None for p in parts])
    busy = whole([p.busy_seconds if p else None for p in parts])
    worker_seconds = whole([p.worker_seconds if p else None for p in parts])
    return ServerLoad(
        cpu_percent=None if cpu is None else round(cpu, 1),
        rss_bytes=whole([p.rss_bytes if p else None for p in parts]),
        busy_ratio=(
            round(max(0.0, min(1.0, busy / worker_seconds)), 3)
            if busy is not None and worker_seconds
            else None
        ),
        by_process=by_process,
    )


class Scraper:
    """Reads every /metrics address at once; a server that does not answer gives None."""

    def __init__(self, http: aiohttp.ClientSession, urls: tuple[str, ...]) -> None:
        self.http = http
        self.urls = urls
        self.problems: list[str] = []

    async def scrape(self, clock: Callable[[], float]) -> list[Sample | None]:
        return list(await asyncio.gather(*(self._one(url, clock) for url in self.urls)))

    async def _one(self, url: str, clock: Callable[[], float]) -> Sample | None:
        timeout = aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT)
        asked = clock()
        try:
            async with self.http.get(url, timeout=timeout) as response:
                # The server reads its counters between our request and its headers.
                at = (asked + clock()) / 2
                if response.status != 200:
                    self._note(f"{url} answered {response.status}")
                    return None
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._note(f"{url}: {exc.__class__.__name__} {exc}".strip())
            return None
        try:
            sample = parse(text, at)
        except ValueError as exc:
            self._note(f"{url}: not Prometheus text ({exc})")
            return None
        # Every Holotrack server gives its own CPU, memory and worker count. Another
        # program's /metrics (an exporter, Prometheus itself) parsed as nothing at all, and
        # left the figures blank with no word of why.
        if not (sample.cpu_seconds or sample.rss_bytes or sample.workers):
            self._note(f"{url}: no {CPU}, {RSS} or {WORKERS} (not a Holotrack server?)")
            return None
        return sample

    def _note(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)
