"""The load table operators know from Locust write-ups, made from a swarm report.

One row per step: users (sessions), QPS (results delivered per second), latency p50 and
p95 (capture to result), error rate, refusals, the server's CPU use, resident memory and
pool busy share; the knee marked.

    python -m swarm.load_table out/swarm/report.json
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from swarm.knee import knee_line

HEAD = (
    "users",
    "QPS",
    "p50 ms",
    "p95 ms",
    "error rate",
    "refused",
    "CPU use",
    "RSS MB",
    "busy",
    "",
)


def error_rate(step: dict[str, Any]) -> float:
    """Errors over frames sent in the hold, as Locust counts failures over requests."""
    if not step["sent"]:
        return 1.0 if step["errors"] else 0.0
    return float(min(1.0, step["errors"] / step["sent"]))


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for s in report["steps"]:
        cpu, rss, busy = s.get("server_cpu_percent"), s.get("server_rss_bytes"), s.get("busy_ratio")
        out.append(
            (
                str(s["sessions"]),
                f"{s['delivered_fps']:.1f}",
                _ms(s["latency_ms"]["p50"]),
                _ms(s["latency_ms"]["p95"]),
                f"{error_rate(s):.2%}",
                str(s["refusals"]),
                "-" if cpu is None else f"{cpu:.0f}%",
                "-" if rss is None else f"{rss / 1e6:.0f}",
                "-" if busy is None else f"{busy:.0%}",
                "<- knee" if s.get("knee") else "",
            )
        )
    return out


def markdown(report: dict[str, Any]) -> str:
    """The table in Markdown, with a line under it that says where the knee is."""
    lines = ["| " + " | ".join(HEAD[:-1]) + " | knee |", "|" + "---|" * len(HEAD)]
    for row in rows(report):
        *cells, mark = row
        lines.append("| " + " | ".join(cells) + f" | {'knee' if mark else ''} |")
    lines.append("")
    lines.append(knee_line(report))
    lines.append(
        "CPU use: server and workers, percent of one core (200% is two cores busy); RSS: "
        "server and workers; busy: worker time on jobs over workers x hold"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m swarm.load_table", description=__doc__)
    parser.add_argument("report", type=Path, help="a swarm's report.json")
    args = parser.parse_args(argv)
    try:
        table = markdown(json.loads(args.report.read_text(encoding="utf-8")))
    except OSError as exc:
        parser.exit(1, f"cannot read {args.report}: {exc.strerror or exc}\n")
    except ValueError as exc:  # not UTF-8, or not JSON
        parser.exit(1, f"{args.report} is not JSON: {exc}\n")
    except (KeyError, TypeError, AttributeError) as exc:
        why = f"{type(exc).__name__}: {exc}"
        parser.exit(1, f"{args.report} is not a swarm's report.json ({why})\n")
    print(table)


if __name__ == "__main__":
    main()
