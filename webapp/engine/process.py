"""The main process's handle on one inference worker process: start, call, notice death."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from webapp.config import Config
from webapp.engine import wire
from webapp.errors import BY_CODE, HolotrackError, ModelError, WorkerCrashedError

log = logging.getLogger(__name__)
START_TIMEOUT = 120.0
CHILD_MODULE = "webapp.engine.child"
R = TypeVar("R")


class WorkerStartError(Exception):
    """A worker ended before it was ready (killed as it loaded its model, a broken install):
    said in one line, "failed to start: None" as a traceback's last line said nothing."""


class WorkerHandle(Protocol):
    """What a lane needs of its worker; tests drive the lanes with a fake one."""

    index: int
    pid: int
    graphs: int
    alive: bool
    connections: dict[str, list[list[int]]]
    answered_at: float  # time.monotonic() of its last answer to anything

    async def start(self) -> None: ...
    async def call(self, job: wire.Job[R]) -> R: ...
    async def stop(self) -> None: ...
    def kill(self) -> None: ...


@dataclass(frozen=True)
class ChildLogs:
    """How a worker logs: native libraries' lines too (verbose), and in the server's
    format (its Python lines were text in a JSON log: a failed job's traceback among them,
    the one an operator is sent to read)."""

    verbose: bool = False
    log_format: str = "text"

    @classmethod
    def of(cls, config: Config) -> ChildLogs:
        return cls(config.verbose, config.log_format)

    def args(self) -> list[str]:
        return (["--verbose"] if self.verbose else []) + ["--log-format", self.log_format]


# index, how it logs, and what to call once the worker has exited
WorkerFactory = Callable[[int, ChildLogs, Callable[[Any], None]], WorkerHandle]


class WorkerProcess:
    """One child running `python -m webapp.engine.child`; replies are matched by job id."""

    def __init__(self, index: int, logs: ChildLogs, on_exit: Callable[[WorkerProcess], None]):
        self.index = index
        self.logs = logs
        self.pid = 0
        self.graphs = 0
        self.alive = False
        self.connections: dict[str, list[list[int]]] = {}
        self._on_exit = on_exit
        self._proc: asyncio.subprocess.Process | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None
        self.stopping = False
        self.answered_at = 0.0

    async def start(self) -> None:
        args = [sys.executable, "-m", CHILD_MODULE, *self.logs.args()]
        self._proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            # A Ctrl-C in the terminal goes to the server alone, which then closes
            # sessions before it stops its workers.
            start_new_session=True,
            env=_worker_environment(),
        )
        assert self._proc.stdout is not None
        try:
            hello = await asyncio.wait_for(wire.read_async(self._proc.stdout), START_TIMEOUT)
        except (TimeoutError, asyncio.CancelledError) as exc:
            # Given up on, the child went on loading its model and then waited on its stdin
            # for good: a replacement slow to start (a machine swapping after its last
            # worker was killed for memory) left ~600 MB resident that no lane would use.
            self.kill()
            await self._proc.wait()
            if isinstance(exc, TimeoutError):
                # A bare TimeoutError ended a slow start in a traceback with no words.
                raise WorkerStartError(
                    f"inference worker {self.index} was not ready within {START_TIMEOUT:g} s"
                ) from None
            raise
        if not isinstance(hello, wire.Ready):
            code = await self._proc.wait()
            said = f"exited with code {code}" if hello is None else f"sent {hello!r}"
            raise WorkerStartError(f"inference worker {self.index} {said} before it was ready")
        self.pid = hello.pid
        self.graphs = hello.counts.graphs
        self.connections = hello.connections
        self.alive = True
        self._reader = asyncio.create_task(self._read_replies(), name=f"worker-{self.index}")
        log.info("worker %d started, pid %d", self.index, self.pid)

    async def call(self, job: wire.Job[R]) -> R:
        if not self.alive or self._proc is None or self._proc.stdin is None:
            raise WorkerCrashedError(f"inference worker {self.index} is not running")
        job_id = next(self._ids)
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending[job_id] = future
        try:
            self._proc.stdin.write(wire.encode(wire.Request(job_id, job)))
            await self._proc.stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            self._pending.pop(job_id, None)
            raise WorkerCrashedError(f"inference worker {self.index} is gone: {exc}") from None
        return await future

    async def _read_replies(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        try:
            while (reply := await wire.read_async(self._proc.stdout)) is not None:
                if not isinstance(reply, wire.Done | wire.Failed):
                    continue
                self.answered_at = time.monotonic()
                future = self._pending.pop(reply.job_id, None)
                if future is None or future.done():
                    continue
                if isinstance(reply, wire.Done):
                    future.set_result(reply.value)
                else:
                    future.set_exception(BY_CODE.get(reply.code, ModelError)(reply.detail))
        finally:
            code = await self._proc.wait()
            self.alive = False
            crash = WorkerCrashedError(
                f"inference worker {self.index} (pid {self.pid}) exited with code {code}"
            )
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(crash)
            self._pending.clear()
            if not self.stopping:
                log.error("%s", crash.detail)
            self._on_exit(self)

    def kill(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()

    async def stop(self) -> None:
        self.stopping = True
        if self._proc is None:
            return
        if self._proc.stdin is not None and not self._proc.stdin.is_closing():
            self._proc.stdin.close()
        try:
            await asyncio.wait_for(self._proc.wait(), 5.0)
        except TimeoutError:
            self._proc.kill()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, HolotrackError):
                await self._reader


def _worker_environment() -> dict[str, str]:
    """Each graph brings its own threads, and glibc gives threads their own heap arenas
    (up to 8 a core), so a closed graph's memory was spread over arenas that other graphs
    then kept half-used: with the worker's malloc_trim alone, 1000 sessions left a worker
    within 5-20% of where it started, varying run to run. With two arenas the same runs
    stayed within 2% over 3000 sessions, for under 2% more time a frame."""
    env = dict(os.environ)
    env.setdefault("MALLOC_ARENA_MAX", "2")
    return env
