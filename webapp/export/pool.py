"""The export's own process, replaced when it dies.

A ProcessPoolExecutor whose process is killed (the kernel's OOM killer, an operator's
kill -9) is broken for good: every later submit raises BrokenProcessPool. An audit found
every export failing that way until the server restarted. Here the call that meets a broken
pool gets ExportProcessDied and the next one a fresh pool.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

T = TypeVar("T")


def _start(niceness: int) -> None:
    # A terminal's Ctrl-C reaches every process of its group, this one too: it died with a
    # KeyboardInterrupt traceback (and any export under way with it) while the server was
    # still closing down. The server stops this pool itself when it stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(niceness)


class ExportProcessDied(Exception):
    """The conversion's process died under this call (killed, perhaps out of memory)."""


class ExportPool:
    def __init__(self, processes: int, niceness: int) -> None:
        self._processes = processes
        self._niceness = niceness
        self._stopped = False
        self.executor = self._new()

    def _new(self) -> ProcessPoolExecutor:
        # spawn: a fork would copy this process's threads and sockets; the process starts on
        # the first export and then stays, so later exports do not pay its imports again.
        return ProcessPoolExecutor(
            max_workers=self._processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=(self._niceness,),
        )

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        try:
            future = self.executor.submit(fn, *args)
        except BrokenProcessPool:
            # It died between two exports (the OOM killer takes the largest process, and
            # this one keeps its memory after a big export): this call lost nothing, and
            # was answered 500 "died during the conversion" all the same.
            self._replace(self.executor)
            future = self.executor.submit(fn, *args)
        executor = self.executor
        try:
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            # Calls that were under way together all land here; the first replaces it.
            self._replace(executor)
            raise ExportProcessDied from None

    def processes(self) -> dict[str, int]:
        """The pool's live processes by metrics label: none before the first export."""
        processes = self.executor._processes or {}
        running = [pid for pid, process in processes.items() if process.is_alive()]
        if len(running) == 1:
            return {"export": running[0]}
        return {f"export{i}": pid for i, pid in enumerate(running)}

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        if self.executor is broken and not self._stopped:
            self.executor = self._new()
            broken.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        """Ends the process, a conversion under way too: the server stopping has told its
        client so (503), and waiting for it held the exit up to 20 s, past a container's
        grace, for a file nobody would read."""
        self._stopped = True
        # The executor offers no way to end a running call but its processes.
        for process in list((self.executor._processes or {}).values()):
            process.kill()
        self.executor.shutdown(cancel_futures=True)
