"""The access layer as the rest of the server sees it: who a key is, and what it may still do.

A key is known by its name from the moment it is accepted: quotas, logs and metrics hold
the name, never the key. `None` as a name means the server is open (no --access-keys):
every check passes and nothing is counted, so callers need no branch of their own.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from webapp.access.errors import AccessDenied, QuotaExceeded
from webapp.access.keyfile import KeysFileError, Limits, read_keys
from webapp.access.metrics import NO_KEY, AccessMetrics
from webapp.access.quotas import Clock, Quotas
from webapp.access.store import KeyStore
from webapp.errors import TooLargeError

log = logging.getLogger(__name__)
UNLIMITED = Limits()
T = TypeVar("T")


class Hold:
    """One live session (or watcher) counted against a key until released."""

    def __init__(self, name: str | None, release: Callable[[], None]) -> None:
        self.name = name
        self._release: Callable[[], None] | None = release

    def release(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None


class VideoSeconds:
    """One video's seconds charged to a key before its first line, settled once when it
    ends to the seconds it really used."""

    def __init__(self, settle: Callable[[float], None] | None = None) -> None:
        self._settle = settle

    def settle(self, used: float) -> None:
        if self._settle is not None:
            self._settle(used)
            self._settle = None


class Access:
    def __init__(
        self,
        path: Path | None,
        metrics: AccessMetrics,
        store: KeyStore | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.path = path
        self.metrics = metrics
        self.quotas = Quotas(clock)
        self._store = store
        if store is not None:
            metrics.know(store.names)

    @classmethod
    def load(
        cls, path: Path | None, metrics: AccessMetrics, clock: Clock = time.monotonic
    ) -> Access:
        """Raises KeysFileError, naming the line, when the file cannot be used."""
        store = None if path is None else KeyStore(read_keys(path))
        return cls(path, metrics, store, clock)

    @property
    def required(self) -> bool:
        return self._store is not None

    @property
    def names(self) -> tuple[str, ...]:
        return () if self._store is None else self._store.names

    def reload(self) -> bool:
        """Re-reads the keys file. Live sessions keep their key's name, so they carry on and
        the new limits apply to what they do next; a bad file keeps the old keys."""
        if self.path is None:
            return False
        try:
            store = KeyStore(read_keys(self.path))
        except KeysFileError as exc:
            log.error("access keys: reload refused, the old keys stay in force: %s", exc)
            return False
        self._store = store
        self.metrics.know(store.names)
        log.info(
            "access keys: reloaded %d keys from %s: %s",
            len(store.names),
            self.path,
            ", ".join(store.names),
        )
        return True

    def identify(self, presented: object) -> str | None:
        """The name of the presented key; raises AccessDenied when keys are required and it
        is missing or unknown (a hello's "key" may be any JSON value)."""
        if self._store is None:
            return None
        if presented is None or presented == "":
            self.metrics.refusals.labels(NO_KEY, "missing_key").inc()
            raise AccessDenied("missing_key", "this server needs an access key")
        entry = self._store.find(presented) if isinstance(presented, str) else None
        if entry is None:
            self.metrics.refusals.labels(NO_KEY, "wrong_key").inc()
            raise AccessDenied("wrong_key", "the access key was not accepted")
        return entry.name

    def accepts(self, key: str) -> bool:
        """Whether `key` is among the keys in force now, counting no refusal: a key handed on
        by the server (a pairing code's) is no client's guess."""
        return self._store is None or self._store.find(key) is not None

    def limits(self, name: str) -> Limits:
        """A name removed by a reload keeps no limits for the sessions it still holds."""
        found = None if self._store is None else self._store.limits(name)
        return found or UNLIMITED

    def check_video_allowed(self, name: str | None) -> None:
        """Raises QuotaExceeded (403: no wait helps) for a key whose video_seconds_per_hour
        is 0, counted as every other refusal of a quota is."""
        if name is not None and self.limits(name).video_seconds_per_hour == 0:
            self._guard(name, lambda: _no_video(name))

    def open_session(self, name: str | None, replacing: bool = False) -> Hold:
        """A live session or a watcher under `name`; raises QuotaExceeded at max_sessions
        (one over, when it takes over one of the key's own sessions)."""
        if name is None:
            return Hold(None, lambda: None)
        self._guard(name, lambda: self.quotas.open_session(name, self.limits(name), replacing))
        self.metrics.sessions.labels(name).inc()

        def release() -> None:
            self.quotas.close_session(name)
            self.metrics.sessions.labels(name).dec()

        return Hold(name, release)

    def video_seconds_left(self, name: str | None) -> float | None:
        """Video seconds `name` may still charge this hour; None: unlimited (or no key)."""
        return None if name is None else self.quotas.video_seconds_left(name, self.limits(name))

    def charge_request(self, name: str | None) -> None:
        """One POST /predict or /api/video; raises QuotaExceeded past predict_per_minute."""
        if name is None:
            return
        self._guard(name, lambda: self.quotas.charge_request(name, self.limits(name)))
        self.metrics.requests.labels(name).inc()

    def charge_video_seconds(self, name: str | None, seconds: float) -> VideoSeconds:
        """Raises QuotaExceeded (nothing charged) when `seconds` do not fit in the hour, or
        TooLargeError when no hour of the key's would hold them."""
        if name is None:
            return VideoSeconds()
        try:
            charge = self._guard(
                name, lambda: self.quotas.charge_video_seconds(name, self.limits(name), seconds)
            )
        except TooLargeError:
            self.metrics.refusals.labels(name, "video_seconds_per_hour").inc()
            raise
        self.metrics.video_seconds.labels(name).inc(charge.seconds)

        def settle(used: float) -> None:
            change = self.quotas.settle_video(name, charge, used)
            if change > 0:
                self.metrics.video_seconds.labels(name).inc(change)
            elif change < 0:
                self.metrics.video_seconds_refunded.labels(name).inc(-change)

        return VideoSeconds(settle)

    def frame(self, name: str | None, outcome: str) -> None:
        if name is not None:
            self.metrics.frames.labels(name, outcome).inc()

    def _guard(self, name: str, charge: Callable[[], T]) -> T:
        try:
            return charge()
        except QuotaExceeded as exc:
            self.metrics.refusals.labels(name, exc.quota).inc()
            # Counted in the metrics; a line per refusal would let one client flood the log.
            log.debug("access keys: %s refused: %s", name, exc.detail)
            raise


def _no_video(name: str) -> None:
    raise QuotaExceeded(
        "video_seconds_per_hour",
        f"key {name} may post no video (its video_seconds_per_hour is 0)",
        math.inf,
    )
