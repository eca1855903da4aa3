"""What goes out to one client, and how fast: the newest result, a few control messages
and the stats timer, written by one task that gives up on a client that stopped reading.

Only the newest unsent result is kept, so a client that reads slowly never makes the
server buffer without bound; control messages (turns, errors) wait in a short backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from typing import Protocol

from webapp.engine.jobs import Frame

MAX_CONTROL_BACKLOG = 16
# How often a paced outbox looks whether what it sent has left for the network.
PACE_SECONDS = 0.02


class TextSocket(Protocol):
    @property
    def closed(self) -> bool: ...

    async def send_str(self, data: str) -> None: ...


class Outbox:
    def __init__(
        self,
        ws: TextSocket,
        *,
        send_timeout: float,
        sent: Callable[[Frame], None],
        stuck: Callable[[], None],
        stats: Callable[[], str] | None = None,
        stats_interval: float = 0.0,
        unsent: Callable[[], int] | None = None,
    ) -> None:
        """`unsent`: the bytes written to the socket and not yet gone to the network; with
        it, a result waits for them to go, the newer ones taking its place meanwhile."""
        self._ws = ws
        self._send_timeout = send_timeout
        self._stats_interval = stats_interval
        self._stats = stats  # the stats message, built when it is due (watchers get none)
        self._sent = sent  # told once a result has been written
        self._stuck = stuck  # told when a send waited send_timeout
        self._unsent = unsent
        self._result: tuple[Frame, str] | None = None
        self._control: list[str] = []
        self._wake = asyncio.Event()
        self._stopped = False
        self._writer: asyncio.Task[None] | None = None

    def put_result(self, frame: Frame, text: str) -> bool:
        """Queues a result; True when it replaced one the client had not read yet."""
        replaced = self._result is not None
        self._result = (frame, text)
        self._wake.set()
        return replaced

    def put_control(self, text: str) -> None:
        # Replies past the backlog are dropped (docs/protocol.md says so): a client that
        # asks faster than it reads would otherwise grow the queue without bound. Errors
        # only inform, and the counters in stats stay exact whatever is dropped.
        if len(self._control) < MAX_CONTROL_BACKLOG:
            self._control.append(text)
        self._wake.set()

    def start(self, name: str) -> None:
        self._writer = asyncio.create_task(self._write(), name=f"writer-{name}")

    async def stop(self) -> None:
        if self._writer is None:
            return
        # The flag ends the writer's loop even if Python 3.11 loses the cancellation (it
        # can, when a send finishes at the same moment); the wait is bounded too.
        self._stopped = True
        self._wake.set()
        self._writer.cancel()
        await asyncio.wait({self._writer}, timeout=self._send_timeout)

    async def finish(self) -> None:
        """Stops the writer, then sends the control messages still waiting, not the result:
        a watched session's last workout (its final count) waited behind a result a slow
        link had not taken yet, and the close for the ended session went before it."""
        await self.stop()
        control, self._control = self._control, []
        for text in control:
            if not await self._send(text):
                return

    async def _write(self) -> None:
        next_stats = time.monotonic() + self._stats_interval if self._stats else math.inf
        while not self._ws.closed and not self._stopped:
            timeout = None if math.isinf(next_stats) else max(0.0, next_stats - time.monotonic())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            self._wake.clear()
            if self._stats is not None and time.monotonic() >= next_stats:
                next_stats = time.monotonic() + self._stats_interval
                self._control.append(self._stats())
            # One at a time: those not yet sent when the writer stops are finish()'s. Only
            # those waiting now: ones that keep coming (an emotion pressed away) went ahead
            # of the result for as long as they came.
            for _ in range(len(self._control)):
                if not await self._send(self._control.pop(0)):
                    return
            if self._result is not None and not await self._gone():
                return
            result, self._result = self._result, None
            if result is not None:
                frame, text = result
                if not await self._send(text):
                    return
                self._sent(frame)

    async def _gone(self) -> bool:
        """Whether what was sent before has left (False: not within send_timeout, or the
        outbox stopped). Sent as they came, the results of a camera faster than its
        watcher's link filled the socket's buffers instead of skipping (docs/protocol.md
        promises a slow watcher skips), and a coach's card fell further behind the longer
        they watched: 3 reps after 30 s at 16 kB/s."""
        if self._unsent is None:
            return True
        deadline = time.monotonic() + self._send_timeout
        while self._unsent() > 0:
            if self._stopped or self._ws.closed:
                return False
            if time.monotonic() >= deadline:
                self._stuck()
                return False
            await asyncio.sleep(PACE_SECONDS)
        return True

    async def _send(self, text: str) -> bool:
        """aiohttp buffers up to its writer limit, then waits; a client that stopped
        reading is ended rather than allowed to hold the buffer forever."""
        try:
            async with asyncio.timeout(self._send_timeout):
                await self._ws.send_str(text)
            return True
        except TimeoutError:
            self._stuck()
            return False
        except ConnectionError:
            return False  # the peer is gone: the session's reader sees it and ends it
        except asyncio.CancelledError:
            if cancelling():
                raise
            # The drain future a timed-out send (or close) left cancelled: still stuck.
            self._stuck()
            return False


def cancelling() -> bool:
    """Whether this task itself is being cancelled (shutdown, Outbox.stop, the handler).

    A send that times out while aiohttp waits for the socket to drain cancels the drain
    future, and aiohttp keeps that future: every later send or close on the socket awaits
    it and raises CancelledError at once. That stale one is no cancellation of ours."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
