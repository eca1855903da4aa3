"""Prometheus metrics, one registry per application, scraped at GET /metrics."""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Callable, Iterable, Mapping

from aiohttp import WSCloseCode
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from webapp.engine.snapshot import PoolSnapshot
from webapp.protocol import Close, FrameOutcome
from webapp.usage import UsageCollector

# Frame timings sit between a few and a few hundred milliseconds.
BUCKETS = (0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
BUSY_WINDOW_SECONDS = 10.0
# What the access layer answers POST /predict and POST /api/video with (access/http.py).
ACCESS_STATUSES = (401, 403, 429)
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
# How the session a camera's next one took the link of had ended: the codes after which a
# link waits for its camera (live/session.py RESUMABLE), or still connected.
RESUMED_AFTER = ("1006", "1011", "4000", "4002", "4004", "open")


# Closes aiohttp makes itself: a connection dropped with no close frame (1006), framing or
# UTF-8 its reader refused (1002, 1007).
AIOHTTP_CLOSES = (
    WSCloseCode.PROTOCOL_ERROR,
    WSCloseCode.ABNORMAL_CLOSURE,
    WSCloseCode.INVALID_TEXT,
)


class _PoolCollector(Collector):
    """Values read from the engine's snapshot and the worker processes at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[GaugeMetricFamily]:
        if self.metrics.snapshot is None:
            return
        pool = self.metrics.snapshot()
        yield GaugeMetricFamily(
            "holotrack_pool_busy_ratio",
            f"Share of worker time spent running the model over the last "
            f"{BUSY_WINDOW_SECONDS:g} s (0 to 1)",
            value=self.metrics.busy_ratio(),
        )
        yield GaugeMetricFamily(
            "holotrack_graphs",
            "MediaPipe graphs held by the workers",
            value=sum(w.graphs for w in pool.workers if w.alive),
        )
        yield GaugeMetricFamily(
            "holotrack_workers_alive",
            "Inference worker processes running",
            value=pool.workers_alive,
        )
        yield GaugeMetricFamily(
            "holotrack_session_room",
            "1 when one more live session would be admitted",
            value=1.0 if pool.room else 0.0,
        )
        grant = GaugeMetricFamily(
            "holotrack_grant_factor",
            "Share of each worker's second its sessions' granted fps add up to, steered by "
            "its measured busy ratio (1: the measured cost of a frame, no headroom)",
            labels=["worker"],
        )
        for worker in pool.workers:
            grant.add_metric([str(worker.index)], worker.grant_factor)
        yield grant
        memory = GaugeMetricFamily(
            "holotrack_process_resident_bytes",
            "Resident memory per process",
            labels=["process"],
        )
        memory.add_metric(["server"], _resident_bytes(os.getpid()))
        for name, pid in self.metrics.others().items():
            memory.add_metric([name], _resident_bytes(pid))
        for worker in pool.workers:
            if worker.alive:
                memory.add_metric([f"worker{worker.index}"], _resident_bytes(worker.pid))
        yield memory


def _resident_bytes(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return float(int(statm.read().split()[1]) * PAGE_SIZE)
    except (OSError, IndexError, ValueError):
        return 0.0


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # Set once the engine runs: how the collector and the busy sampler read it.
        self.snapshot: Callable[[], PoolSnapshot] | None = None
        # The server's processes besides its workers, by label: set once the export's pool
        # exists. Its memory counts toward the pod's limit as much as a worker's does.
        self.others: Callable[[], Mapping[str, int]] = dict
        r = self.registry
        self.sessions_live = Gauge("holotrack_sessions_live", "Live WebSocket sessions", registry=r)
        self.sessions_opened = Counter("holotrack_sessions_opened", "Sessions admitted", registry=r)
        self.sessions_refused = Counter(
            "holotrack_sessions_refused",
            "Sessions refused for want of room (1013 or, before the upgrade, 503: full "
            "or shutting down; not a key's quota)",
            registry=r,
        )
        self.sessions_closed = Counter(
            "holotrack_sessions_closed", "Sessions ended, by close code", ["code"], registry=r
        )
        self.sessions_resumed = Counter(
            "holotrack_sessions_resumed",
            "Camera sessions that took over their last session's watch link, watchers and "
            "workout, by how that session had ended (after: 1006 its connection was lost, "
            "4002 it paused, 4004 it reached --max-session-seconds, 1011 its worker died, "
            "4000 idle; open: still connected, a second tab or a connection not yet found "
            "dead)",
            ["after"],
            registry=r,
        )
        # A pause and Resume on the page is no network trouble: told apart, a dashboard
        # reading these as drops was not misled by every person pausing.
        for after in RESUMED_AFTER:
            self.sessions_resumed.labels(after)
        # Set once the live sessions' shared state exists: it counts them at scrape time.
        self.watchers_live = Gauge(
            "holotrack_watchers_live",
            "Watcher connections (an OBS view, a coach, the VMC relay), those waiting for "
            "their camera to reconnect included",
            registry=r,
        )
        # Set with watchers_live: the store of the links' avatars reports it at scrape time.
        self.link_avatar_bytes = Gauge(
            "holotrack_link_avatar_bytes",
            "Bytes of the avatars cameras gave their watch links for the OBS view, held in "
            "memory while each link lives (--avatar-memory-mb bounds them)",
            registry=r,
        )
        # Set with watchers_live: the pairing codes' store counts them at scrape time.
        self.pairing_codes_live = Gauge(
            "holotrack_pairing_codes_live",
            "Pairing codes offered and not yet claimed, withdrawn or over",
            registry=r,
        )
        # Many unknown or refused claims are someone guessing codes.
        self.pairing_claims = Counter(
            "holotrack_pairing_claims",
            "Claims of pairing codes by outcome (handed: the code was alive; unknown: no "
            "such code; refused: the address made too many offers and wrong claims; "
            "redirected: typed in lower case or with a space, not held here, sent on in "
            "capitals and counted where it goes; key_removed: alive, but offered with an "
            "access key a reload has removed since)",
            ["outcome"],
            registry=r,
        )
        for outcome in ("handed", "unknown", "refused", "redirected", "key_removed"):
            self.pairing_claims.labels(outcome)
        self.frames = Counter(
            "holotrack_frames",
            "Live frames by outcome (received, processed, dropped, errors)",
            ["outcome"],
            registry=r,
        )
        self.wait = Histogram(
            "holotrack_frame_wait_seconds",
            "Time a frame waited for a worker",
            ["track"],
            buckets=BUCKETS,
            registry=r,
        )
        self.inference = Histogram(
            "holotrack_inference_seconds",
            "Model time per image (decode excluded)",
            ["kind"],
            buckets=BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "holotrack_frame_latency_seconds",
            "From a frame's arrival to its result being written (the client adds its "
            "capture, encode and network time)",
            ["track"],
            buckets=BUCKETS,
            registry=r,
        )
        self.predict_requests = Counter(
            "holotrack_predict_requests",
            "POST /predict answers by status",
            ["status"],
            registry=r,
        )
        # A labelled series appears at its first increment, which rate() and increase()
        # cannot see: every label the server can give starts at zero, so the first crash
        # close, frame error or 503 shows on the dashboard.
        # aiohttp's own too: without 1006, a replica's first lost connection was unseen.
        for code in (*Close, *AIOHTTP_CLOSES):
            self.sessions_closed.labels(str(int(code)))
        for outcome in FrameOutcome:
            self.frames.labels(outcome)
        for status in (200, 400, 408, 413, 415, 500, 503, 504):
            self.predict_requests.labels(str(status))
        # --access-keys: no or wrong key, over quota, a quota of 0 (no wait would help)
        for status in ACCESS_STATUSES:
            self.predict_requests.labels(str(status))
        self.video_requests = Counter(
            "holotrack_video_requests",
            "POST /api/video answers by status (200: the stream started)",
            ["status"],
            registry=r,
        )
        self.video_frames = Counter(
            "holotrack_video_frames",
            "Frames of uploaded videos by outcome (processed, skipped to keep to "
            "--video-max-fps, error)",
            ["outcome"],
            registry=r,
        )
        self.videos_ended = Counter(
            "holotrack_videos_ended",
            "Video streams by how they ended (complete, failed, disconnected; stopped: a shutdown)",
            ["outcome"],
            registry=r,
        )
        self.video_waiting_lines = Counter(
            "holotrack_video_waiting_lines",
            "Waiting lines sent by video streams whose frame's answer was slow to come "
            "(--video-waiting-seconds): mostly first frames waiting for their graph",
            registry=r,
        )
        for status in (200, 400, 408, 413, 415, 499, 500, 503, *ACCESS_STATUSES):
            self.video_requests.labels(str(status))
        for outcome in ("processed", "skipped", "error"):
            self.video_frames.labels(outcome)
        for outcome in ("complete", "failed", "stopped", "disconnected"):
            self.videos_ended.labels(outcome)
        self._busy_samples: collections.deque[tuple[float, float]] = collections.deque()
        r.register(_PoolCollector(self))
        r.register(
            UsageCollector(
                lambda: self.snapshot() if self.snapshot else None, lambda: self.others()
            )
        )

    def sample_busy(self) -> None:
        if self.snapshot is None:
            return
        now = time.monotonic()
        self._busy_samples.append((now, self.snapshot().busy_seconds))
        while self._busy_samples and now - self._busy_samples[0][0] > BUSY_WINDOW_SECONDS:
            self._busy_samples.popleft()

    def busy_ratio(self) -> float:
        self.sample_busy()
        if self.snapshot is None or len(self._busy_samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = self._busy_samples[0], self._busy_samples[-1]
        workers = max(1, len(self.snapshot().workers))
        return max(0.0, min(1.0, (b1 - b0) / max(1e-9, t1 - t0) / workers))
