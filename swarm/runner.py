"""How many sessions and for how long: steps of connect, warm-up, hold and drain.

The run ends after the last step, after `stop_after` failing steps in a row, at
`max_duration`, or on Ctrl-C; in every case the steps so far are summarised and returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import resource
import signal
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

import aiohttp

from swarm.config import FINAL_STATS_WAIT, SwarmConfig
from swarm.frames import FrameSet
from swarm.records import FrameRecord, SessionRecord
from swarm.server_load import Sample, Scraper, metrics_urls, server_load
from swarm.stats import Slo, StepSummary, Window, summarize_step
from swarm.user import Clock, User

# Time a session gets to close its socket after the drain, before it is cancelled.
CLOSE_GRACE = 5.0
LAG_PROBE = 0.05


@dataclass
class RunResult:
    started_at: str
    steps: list[StepSummary] = field(default_factory=list)
    frames: list[FrameRecord] = field(default_factory=list)
    sessions: list[SessionRecord] = field(default_factory=list)
    stopped: str = ""  # why the run ended before its last step, if it did
    # Why the server's /metrics could not be read, when it could not.
    metrics_problems: list[str] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0


class Runner:
    def __init__(
        self, config: SwarmConfig, frames: FrameSet, progress: TextIO | None = None
    ) -> None:
        self.config = config
        self.frames = frames
        self.progress = progress
        self.slo = Slo.from_config(config)
        self.clock = Clock()
        self.stop = asyncio.Event()
        # Set while a step is in its measured hold; lets a caller act mid-step without sleeping.
        self.holding = asyncio.Event()
        # Set while a step, its sessions open, waits for the first answer of each.
        self.answering = asyncio.Event()
        self.result = RunResult(datetime.now(UTC).isoformat(timespec="seconds"))
        self._rng = random.Random(0)
        self._tasks: set[asyncio.Task[None]] = set()
        self._signals = 0
        self._window: Window | None = None  # the step being measured, for the progress line
        self._phase = "connecting"  # what the progress line says before the window

    # -- the whole run ---------------------------------------------------------------------
    async def run(self, handle_signals: bool = False) -> RunResult:
        raise_fd_limit(max(self.config.steps) + 64)
        loop = asyncio.get_running_loop()
        if handle_signals:
            loop.add_signal_handler(signal.SIGINT, self.interrupt)
            loop.add_signal_handler(signal.SIGTERM, self.interrupt)
        deadline = self.clock.now() + self.config.max_duration
        failures = 0
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
        try:
            async with aiohttp.ClientSession(connector=connector) as http:
                scraper = Scraper(http, metrics_urls(self.config.metrics_url, self.config.url))
                self.result.metrics_problems = scraper.problems
                for index, sessions in enumerate(self.config.steps):
                    if self.stop.is_set():
                        break
                    if self.clock.now() + self.config.step_seconds(sessions) > deadline:
                        self.result.stopped = f"--max-duration {self.config.max_duration:g} s"
                        break
                    summary = await self.run_step(http, scraper, sessions, index, deadline)
                    self.result.steps.append(summary)
                    if summary.interrupted:
                        break
                    failures = 0 if summary.passed else failures + 1
                    if failures >= self.config.stop_after:
                        self.result.stopped = f"{failures} failing steps in a row"
                        break
        finally:
            if handle_signals:
                loop.remove_signal_handler(signal.SIGINT)
                loop.remove_signal_handler(signal.SIGTERM)
            self.result.seconds = round(self.clock.now(), 3)
        return self.result

    def interrupt(self) -> None:
        """First Ctrl-C ends the step in progress cleanly; a second one cuts the drain short."""
        self._signals += 1
        self.result.interrupted = True
        self.result.stopped = self.result.stopped or "interrupted"
        self.stop.set()
        if self._signals > 1:
            for task in self._tasks:
                task.cancel()

    # -- one step --------------------------------------------------------------------------
    async def run_step(
        self,
        http: aiohttp.ClientSession,
        scraper: Scraper,
        sessions: int,
        index: int,
        deadline: float,
    ) -> StepSummary:
        users = [
            User(
                i,
                sessions,
                self.config,
                self.frames,
                http,
                self.clock,
                first_frame=self._rng.randrange(len(self.frames)),
                # Browsers are not in lockstep: spread first sends over one period.
                phase=self._rng.random() / self.config.fps,
            )
            for i in range(sessions)
        ]
        printer = asyncio.create_task(self._print_progress(users, index, sessions))
        lags: list[float] = []
        started: list[User] = []
        server_before: list[Sample | None] = []
        server_after: list[Sample | None] = []
        try:
            spawned = self.clock.now()
            for i, user in enumerate(users):
                delay = spawned + i / self.config.spawn_rate - self.clock.now()
                if delay > 0 and await self._wait_stop(asyncio.sleep(delay)):
                    break
                task = asyncio.create_task(user.run())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                started.append(user)
            await self._wait_stop(asyncio.gather(*(u.settled.wait() for u in started)))
            # The warm-up starts once every session has had its first answer: a burst of new
            # sessions waits for graphs built one at a time per worker, seconds apart on a
            # loaded host, and a window opened before the last is built would measure that.
            self._phase = "waiting for every session's first answer"
            self.answering.set()
            latest = deadline - self.config.warmup - self.config.hold
            await self._wait_stop(first_answers(started, latest - self.clock.now()))
            self.answering.clear()
            # A session that failed or closed also ends that wait: it was not answered.
            unheard = sum(1 for u in started if not u.heard)
            all_answered = None if unheard else round(self.clock.now() - spawned, 3)
            start = self.clock.now() + self.config.warmup
            window = Window(start, start + self.config.hold)
            self._window = window
            await self._wait_stop(asyncio.sleep(max(0.0, start - self.clock.now())))
            cpu_start, wall_start = time.process_time(), self.clock.now()
            end = min(window.end, deadline)
            self.holding.set()
            # Read inside the window, so the server's figures cover (almost) the same span.
            server_before = await scraper.scrape(self.clock.now)
            await self._wait_stop(self._probe_loop(end, lags))
            server_after = await scraper.scrape(self.clock.now)
            self.holding.clear()
            window, cut = self._close_window(window)
            wall = self.clock.now() - wall_start
            cpu = (time.process_time() - cpu_start) / wall if wall > 0 else 0.0
            for user in users:
                user.stop()
            await self._finish()
        finally:
            self.answering.clear()
            self.holding.clear()
            for user in users:
                user.stop()
            printer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await printer
        # Sessions never started (Ctrl-C while spawning) have nothing to report.
        frames = [record for user in started for record in user.ledger.sent]
        records = [user.record for user in started]
        self.result.frames.extend(frames)
        self.result.sessions.extend(records)
        summary = summarize_step(
            sessions,
            frames,
            records,
            window,
            self.slo,
            swarm_cpu=cpu,
            loop_lags_ms=lags,
            interrupted=cut,
            server_load=server_load(server_before, server_after) if server_after else None,
            all_answered_s=all_answered,
        )
        self._print_step(summary, unheard)
        return summary

    def _close_window(self, window: Window) -> tuple[Window, bool]:
        """The window as measured, and whether the step was cut short of it.

        Cut short means the clock stopped before the window's end: Ctrl-C or the deadline
        ended the hold, whose loop otherwise runs until the clock reads that very end.
        Comparing the window's length with --hold instead marks whole holds as cut short,
        since (start + hold) - start can come out one rounding step below hold.
        """
        now = self.clock.now()
        if now >= window.end:
            return window, False
        if not self.stop.is_set():
            self.result.stopped = f"--max-duration {self.config.max_duration:g} s"
        return Window(window.start, max(window.start, now)), True

    async def _probe_loop(self, until: float, lags: list[float]) -> None:
        """How late the event loop wakes: every session's sends wait on the same loop."""
        while (now := self.clock.now()) < until:
            nap = min(LAG_PROBE, until - now)
            await asyncio.sleep(nap)
            lags.append(max(0.0, self.clock.now() - now - nap) * 1000.0)

    async def _finish(self) -> None:
        """Lets every session drain and close; cancels the ones that overstay."""
        tasks = [t for t in self._tasks if not t.done()]
        if not tasks:
            return
        grace = self.config.drain + FINAL_STATS_WAIT + CLOSE_GRACE
        _, late = await asyncio.wait(tasks, timeout=grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def _wait_stop(self, awaitable: Awaitable[Any]) -> bool:
        """Awaits `awaitable` unless Ctrl-C or the deadline comes first; True if it did."""
        work = asyncio.ensure_future(awaitable)
        stopper = asyncio.create_task(self.stop.wait())
        await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
        return self.stop.is_set()

    # -- what the operator sees ------------------------------------------------------------
    async def _print_progress(self, users: list[User], index: int, sessions: int) -> None:
        if self.progress is None:
            return
        tty = self.progress.isatty()
        total = len(self.config.steps)
        last_results, last_time, last_cpu = 0, self.clock.now(), time.process_time()
        beat = 0
        while True:
            await asyncio.sleep(1.0)
            beat += 1
            now, cpu_now = self.clock.now(), time.process_time()
            results = sum(u.ledger.results for u in users)
            rate = (results - last_results) / max(1e-9, now - last_time)
            cpu = (cpu_now - last_cpu) / max(1e-9, now - last_time)
            last_results, last_time, last_cpu = results, now, cpu_now
            phase = self._phase_name(now)
            line = (
                f"step {index + 1}/{total}: {sessions} sessions, {phase} | "
                f"sent {sum(len(u.ledger.sent) for u in users)} results {results} "
                f"dropped {sum(u.ledger.dropped for u in users)} "
                f"errors {sum(u.ledger.errors + bool(u.record.error) for u in users)} "
                f"refused {sum(u.record.refused for u in users)} | "
                f"{rate:.1f} fps | swarm cpu {cpu:.0%}"
            )
            if tty:
                self.progress.write("\r\x1b[2K" + line)
                self.progress.flush()
            elif beat % 5 == 0:
                self.progress.write(line + "\n")
                self.progress.flush()

    def _phase_name(self, now: float) -> str:
        window = self._window
        if window is None:
            return self._phase
        if now < window.start:
            return f"warm-up {window.start - now:.0f} s left"
        if now < window.end:
            return f"hold {now - window.start:.0f}/{window.seconds:.0f} s"
        return "draining"

    def _print_step(self, summary: StepSummary, unheard: int) -> None:
        self._window = None
        self._phase = "connecting"
        if self.progress is None:
            return
        verdict = "meets the SLO" if summary.passed else "misses the SLO"
        if self.progress.isatty():
            self.progress.write("\r\x1b[2K")
        details = ""
        if summary.server_cpu_percent is not None and summary.busy_ratio is not None:
            cpu, busy = summary.server_cpu_percent, summary.busy_ratio
            details = f", server cpu {cpu:.0f}% busy {busy:.0%}"
        if summary.all_answered_s is not None:
            details += f", every session answered by {summary.all_answered_s:g} s"
        elif unheard:
            details += f", {unheard} of {summary.sessions} sessions never answered"
        p95 = summary.latency_ms["p95"]
        latency = "no latency (no result)" if p95 is None else f"p95 {p95:g} ms"
        self.progress.write(
            f"{summary.sessions} sessions: {summary.delivered_fps:g} fps delivered, "
            f"{latency}, {summary.errors} errors, "
            f"{summary.refusals} refused{details}: {verdict}\n"
        )
        self.progress.flush()


async def first_answers(users: list[User], seconds: float) -> None:
    """Until every one of `users` has had its first answer, or for `seconds` at most."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(0.0, seconds)):
            await asyncio.gather(*(u.answered.wait() for u in users))


def raise_fd_limit(wanted: int) -> None:
    """Hundreds of sockets need more descriptors than some shells allow by default."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
