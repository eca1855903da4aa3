"""The VMC senders of sessions whose camera may come back: their receivers rest later.

A session that ends paused or by a lost connection is often followed at once by the same
camera's next one (the avatar page starts a new session for a change of smoothing; a
network blip reconnects in a second). Sending the receivers the rest pose at its end would
flash the avatar in VSeeFace to rest and back. Instead the sender is put down here: the
rest pose goes out UNSEEN_SECONDS later, unless a new session has sent a rig to the same
receivers by then.
"""

from __future__ import annotations

import asyncio

from webapp.analysis.rig.idle import UNSEEN_SECONDS
from webapp.vmc.sender import Target, VmcSender

Receivers = frozenset[Target]


class RestLater:
    def __init__(self, delay: float = UNSEEN_SECONDS) -> None:
        self._delay = delay
        self._waiting: dict[Receivers, tuple[VmcSender, asyncio.TimerHandle]] = {}

    def put_down(self, targets: tuple[Target, ...], sender: VmcSender) -> None:
        key = frozenset(targets)
        self._drop(key)  # an older one for the same receivers: the newer one speaks for it
        handle = asyncio.get_running_loop().call_later(self._delay, self._rest, key)
        self._waiting[key] = (sender, handle)

    def taken(self, targets: tuple[Target, ...]) -> None:
        """A new session sent these receivers a rig: the last one's sender goes quietly."""
        self._drop(frozenset(targets))

    def close(self) -> None:
        """On shutdown: every waiting receiver rests now."""
        for key in list(self._waiting):
            self._rest(key)

    def __len__(self) -> int:
        return len(self._waiting)

    def _rest(self, key: Receivers) -> None:
        sender, handle = self._waiting.pop(key)
        handle.cancel()
        sender.rest()
        sender.close()

    def _drop(self, key: Receivers) -> None:
        waiting = self._waiting.pop(key, None)
        if waiting is not None:
            waiting[1].cancel()
            waiting[0].close()
