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


class RestLater:
    def __init__(self, delay: float = UNSEEN_SECONDS) -> None:
        self._delay = delay
        self._waiting: dict[VmcSender, asyncio.TimerHandle] = {}
        # Each receiver's waiting sender, one at most. Kept per receiver, not per set: a
        # session back at once with one receiver fewer (removed on the avatar page) takes
        # the ones it kept, which must not rest, while the one it left still does.
        self._holder: dict[Target, VmcSender] = {}

    def put_down(self, targets: tuple[Target, ...], sender: VmcSender) -> None:
        if sender.sent == 0:
            # It never moved the receivers: a sender put down earlier and still waiting
            # holds the pose they show, and must still rest them (a session that ended
            # before its first rig took them over and left them frozen for good).
            sender.close()
            return
        for target in targets:
            self._hand_over(target)  # an older sender for it: the newer one speaks for it
        for target in targets:
            self._holder[target] = sender
        self._waiting[sender] = asyncio.get_running_loop().call_later(
            self._delay, self._rest, sender
        )

    def taken(self, targets: tuple[Target, ...], sender: VmcSender | None = None) -> None:
        """A new session sent these receivers a rig: the last one's sender leaves them be.
        `sender`, the new session's, takes on what the last one sent them: a receiver keeps
        each value, and blendshapes the new session no longer asks for (unticked on the
        avatar page) stayed frozen in VSeeFace, through its rest pose too."""
        for target in targets:
            older = self._holder.get(target)
            if sender is not None and older is not None and older is not sender:
                sender.inherit(older)
            self._hand_over(target)

    def close(self) -> None:
        """On shutdown: every waiting receiver rests now."""
        for sender in list(self._waiting):
            self._rest(sender)

    def __len__(self) -> int:
        return len(self._waiting)

    def _rest(self, sender: VmcSender) -> None:
        self._waiting.pop(sender).cancel()
        for target in [t for t, holder in self._holder.items() if holder is sender]:
            del self._holder[target]
        sender.rest()
        sender.close()

    def _hand_over(self, target: Target) -> None:
        sender = self._holder.pop(target, None)
        if sender is None:
            return
        sender.drop(target)
        if not sender.targets:
            self._waiting.pop(sender).cancel()
            sender.close()
