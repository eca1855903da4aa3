"""Who used the CPU during a benchmark run: the server's main process, its workers, the
load generator (a reaped child) and everyone else on the machine, from /proc."""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from pathlib import Path

from swarm.calibrate import machine_ticks
from webapp.usage import cpu_seconds


def _parent(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses; the parent's pid follows the state.
    return int(text[text.rindex(")") + 2 :].split()[1])


def children(pid: int) -> list[int]:
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _parent(int(entry.name)) == pid
    ]


@dataclass(frozen=True)
class CpuSnapshot:
    wall: float
    machine_busy: int
    machine_total: int
    server_main: float  # CPU seconds
    server_workers: dict[int, float]
    load_generator: float

    @classmethod
    def take(cls, server_pid: int) -> CpuSnapshot:
        busy, total = machine_ticks()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(
            wall=time.perf_counter(),
            machine_busy=busy,
            machine_total=total,
            server_main=cpu_seconds(server_pid) or 0.0,
            server_workers={pid: cpu_seconds(pid) or 0.0 for pid in children(server_pid)},
            # The load generator is the only child that exits during a run, so the growth of
            # the reaped children's usage is its own CPU time.
            load_generator=usage.ru_utime + usage.ru_stime,
        )


def busy_cores(before: tuple[int, int], after: tuple[int, int], cores: int) -> float:
    return (after[0] - before[0]) / max(1, after[1] - before[1]) * cores


def server_cpu_seconds(before: CpuSnapshot, after: CpuSnapshot) -> tuple[float, float]:
    """(main process, worker processes) CPU seconds between the two snapshots."""
    workers = sum(
        seconds - before.server_workers.get(pid, 0.0)
        for pid, seconds in after.server_workers.items()
    )
    return after.server_main - before.server_main, workers


def cpu_split(before: CpuSnapshot, after: CpuSnapshot, cores: int) -> dict[str, float]:
    """Cores in use on average over the run, by who used them."""
    wall = after.wall - before.wall
    main, workers = server_cpu_seconds(before, after)
    split = {
        "server_main": main / wall,
        "server_workers": workers / wall,
        "locust": (after.load_generator - before.load_generator) / wall,
    }
    # /proc/stat counts every process, so this also shows what other people's jobs took.
    busy = busy_cores(
        (before.machine_busy, before.machine_total),
        (after.machine_busy, after.machine_total),
        cores,
    )
    split["other_processes"] = max(0.0, busy - sum(split.values()))
    split["idle"] = max(0.0, cores - busy)
    return {name: round(value, 2) for name, value in split.items()}
