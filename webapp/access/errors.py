"""Refusals by the access layer, mapped to 401/429/403 (access/http.py) and 4401/1013/1008
(access/socket.py) at the edges."""

from __future__ import annotations

import math

from webapp.errors import HolotrackError


class AccessDenied(HolotrackError):
    """No key, or a key the server does not know. `reason` is a metric label."""

    code = "unauthorized"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class QuotaExceeded(HolotrackError):
    """A key is over one of its limits; `quota` names the limit as the keys file does."""

    code = "quota"

    def __init__(self, quota: str, detail: str, retry_after: float) -> None:
        super().__init__(detail)
        self.quota = quota
        self.retry_after = retry_after

    @property
    def never(self) -> bool:
        """A limit of 0: no wait frees anything, so it is no "later" (403, 1008)."""
        return not math.isfinite(self.retry_after)

    @property
    def retry_after_seconds(self) -> int:
        """Whole seconds for Retry-After, never 0: asking again at once would be refused."""
        return max(1, math.ceil(self.retry_after))
