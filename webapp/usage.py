"""What the server costs, as counters: CPU time of its processes and the pool's busy time.

prometheus-client's process collector sees only the process it runs in, and the model runs
in the workers; their CPU time is read from /proc at scrape time. Counters rather than
ratios, so that whoever scrapes twice divides by an interval of its own choosing (the swarm
does, over each step's hold). A restarted worker's counter starts again from zero, which
Prometheus's rate() and the swarm both read as a counter reset.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from webapp.engine.snapshot import PoolSnapshot

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# /proc/<pid>/stat after the ")" closing the command name: field 3 (state) is index 0, so
# utime (field 14) and stime (field 15) are indexes 11 and 12.
UTIME, STIME = 11, 12


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of every thread of `pid`; None once it has gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # The command name may hold spaces and parentheses; it ends at the last ")".
            fields = stat.read().rpartition(")")[2].split()
        return (int(fields[UTIME]) + int(fields[STIME])) / CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return None


class UsageCollector(Collector):
    def __init__(
        self,
        snapshot: Callable[[], PoolSnapshot | None],
        others: Callable[[], Mapping[str, int]] = dict,
    ) -> None:
        self.snapshot = snapshot
        # The server's other processes by label (the export's), pids read at scrape time.
        self.others = others

    def collect(self) -> Iterable[Metric]:
        cpu = CounterMetricFamily(
            "holotrack_process_cpu_seconds",
            "CPU time, user and system, per process: the server, each live worker and the "
            "export's process once it runs",
            labels=["process"],
        )
        own = cpu_seconds(os.getpid())
        if own is not None:
            cpu.add_metric(["server"], own)
        for name, pid in self.others().items():
            if (seconds := cpu_seconds(pid)) is not None:
                cpu.add_metric([name], seconds)
        pool = self.snapshot()
        if pool is not None:
            for worker in pool.workers:
                if worker.alive and (seconds := cpu_seconds(worker.pid)) is not None:
                    cpu.add_metric([f"worker{worker.index}"], seconds)
        yield cpu
        if pool is None:
            return
        yield CounterMetricFamily(
            "holotrack_pool_busy_seconds",
            "Worker time spent on jobs since start, summed over the workers (its rate over "
            "holotrack_workers is the busy share)",
            value=pool.busy_seconds,
        )
        yield GaugeMetricFamily(
            "holotrack_workers",
            "Inference workers the server runs, alive or being restarted",
            value=len(pool.workers),
        )
