"""Metrics per key name, in the application's registry. A key's name is the only label that
identifies it; the key itself never reaches a metric."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge

from webapp.protocol import FrameOutcome

# The label of refusals that name no key: none was given, or it matched none.
NO_KEY = "-"
KEY_REASONS = ("missing_key", "wrong_key")
QUOTA_REASONS = ("max_sessions", "predict_per_minute", "video_seconds_per_hour")


class AccessMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.sessions = Gauge(
            "holotrack_key_sessions",
            "Live sessions held under each key, watchers of its sessions and videos included",
            ["key"],
            registry=r,
        )
        self.frames = Counter(
            "holotrack_key_frames",
            "Live frames of each key's sessions by outcome (received, processed, dropped, errors)",
            ["key", "outcome"],
            registry=r,
        )
        self.requests = Counter(
            "holotrack_key_requests",
            "POST /predict and /api/video requests let through, per key",
            ["key"],
            registry=r,
        )
        self.video_seconds = Counter(
            "holotrack_key_video_seconds",
            "Video seconds charged to each key",
            ["key"],
            registry=r,
        )
        self.video_seconds_refunded = Counter(
            "holotrack_key_video_seconds_refunded",
            "Video seconds given back to each key when a video used fewer than it was charged "
            "up front (a container that states no length is charged --video-max-seconds)",
            ["key"],
            registry=r,
        )
        self.refusals = Counter(
            "holotrack_key_refusals",
            "Requests and sessions refused by the access layer, by key name and reason "
            '(missing_key and wrong_key under key "-"; quotas under the key\'s name)',
            ["key", "reason"],
            registry=r,
        )
        for reason in KEY_REASONS:
            self.refusals.labels(NO_KEY, reason)

    def know(self, names: Iterable[str]) -> None:
        """Every series of these names starts at zero, so rate() sees the first increment."""
        for name in names:
            self.sessions.labels(name)
            self.requests.labels(name)
            self.video_seconds.labels(name)
            self.video_seconds_refunded.labels(name)
            for outcome in FrameOutcome:
                self.frames.labels(name, outcome)
            for reason in QUOTA_REASONS:
                self.refusals.labels(name, reason)
