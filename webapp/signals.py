"""Ending a command-line tool's asyncio work on SIGINT or SIGTERM, its cleanup run first.

The VMC relay and the export's VMC replay leave their receivers at rest when they stop;
SIGTERM's default (kill, systemd, docker stop) would end the process at once, the
receivers holding a frozen pose.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class Stopped(Exception):
    """SIGINT or SIGTERM stopped the work: the exit status is 128 + its number."""

    def __init__(self, signum: signal.Signals) -> None:
        super().__init__(f"stopped by {signum.name}")
        self.status = 128 + signum


async def until_signal(work: Awaitable[T]) -> T:
    """`work`'s result, or Stopped when SIGINT or SIGTERM comes first: the signal cancels
    it, so its cleanup (the rest pose) runs before the process ends."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    received: list[signal.Signals] = []

    def stop(signum: signal.Signals) -> None:
        if not received:
            received.append(signum)
            task.cancel()

    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        # A signal the caller ignores (SIGINT, for a shell's background job) stays ignored.
        if signal.getsignal(signum) is signal.SIG_IGN:
            continue
        try:
            loop.add_signal_handler(signum, stop, signum)
        except (NotImplementedError, RuntimeError):
            continue  # Windows: asyncio.run's own Ctrl-C handling is what there is
        installed.append(signum)
    try:
        return await work
    except asyncio.CancelledError:
        if not received or task.uncancel() > 0:
            raise
        raise Stopped(received[0]) from None
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
