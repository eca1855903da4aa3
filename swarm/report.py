"""What a run leaves behind: report.json, frames.csv, sessions.csv, report.png and a table."""

from __future__ import annotations

import csv
import dataclasses
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from swarm.calibrate import Calibration
from swarm.config import SwarmConfig, flags
from swarm.frames import FrameSet
from swarm.knee import KNEE_GROWTH, knee, knee_index, knee_line
from swarm.records import CSV_FIELDS, Outcome, csv_row
from swarm.runner import RunResult
from swarm.server_load import metrics_urls
from swarm.stats import CPU_WARN, LAG_WARN_MS, Slo, StepSummary, sustainable_sessions

# Distinct refusal reasons under the table; report.json has all of them.
REFUSAL_REASONS = 3
SESSION_FIELDS = (
    "step",
    "session",
    "server_id",
    "opened",
    "ready",
    "closed",
    "granted_fps",
    "refused",
    "refusal",
    "close_code",
    "error",
    "skipped",
    "turns",
    "fallbacks",
    "stats_mismatches",
    "unmatched",
    "reconciled",
)


def efficiency(delivered: float, raw_fps: float | None) -> float | None:
    return round(delivered / raw_fps, 3) if raw_fps else None


def swarm_warnings(steps: list[StepSummary]) -> list[str]:
    return [
        f"{s.sessions} sessions: the swarm used {s.swarm_cpu:.0%} of a core and its event "
        f"loop woke {s.loop_lag_ms_p95} ms late at p95 (limits {CPU_WARN:.0%}, "
        f"{LAG_WARN_MS:g} ms): the swarm may be the bottleneck; run it on another machine "
        "or split the sessions over several swarms"
        for s in steps
        if s.swarm_limited
    ]


def build_report(
    config: SwarmConfig, frames: FrameSet, run: RunResult, calibration: Calibration | None
) -> dict[str, Any]:
    raw_fps = calibration.raw_fps if calibration else None
    slo = Slo.from_config(config)
    best = sustainable_sessions(run.steps)
    at_best = next((s for s in run.steps if s.sessions == best and s.passed), None)
    bend = knee_index(run.steps)
    knee_sessions = None if bend is None else run.steps[bend].sessions
    steps = []
    for index, step in enumerate(run.steps):
        body = dataclasses.asdict(step)
        body["efficiency"] = efficiency(step.delivered_fps, raw_fps)
        body["swarm_limited"] = step.swarm_limited
        # The step, not its count: a run may repeat a count (--sessions 2,2).
        body["knee"] = index == bend
        steps.append(body)
    report: dict[str, Any] = {
        "started_at": run.started_at,
        "seconds": run.seconds,
        "flags": flags(config),
        "slo": {**dataclasses.asdict(slo), "served_fps": slo.served_fps},
        "frames": {
            "count": len(frames),
            "width": frames.width,
            "height": frames.height,
            "mean_bytes": round(frames.mean_bytes),
            "source_fps": frames.source_fps,
        },
        "steps": steps,
        "sustainable_sessions": best,
        "sustainable_fps": config.fps,
        "knee_sessions": knee_sessions,
        "knee_growth": KNEE_GROWTH,
        "metrics_problems": run.metrics_problems,
        "stopped": run.stopped,
        "interrupted": run.interrupted,
        "warnings": swarm_warnings(run.steps),
        "no_answer": no_answer(run),
        "refusals": dict(Counter(s.refusal for s in run.sessions if s.refused).most_common()),
    }
    if calibration is not None and raw_fps is not None:
        report["raw_fps"] = round(raw_fps, 2)
        report["calibration"] = dataclasses.asdict(calibration)
        report["efficiency"] = efficiency(at_best.delivered_fps, raw_fps) if at_best else None
    return report


def no_answer(run: RunResult) -> str:
    """Why not one session of the run was answered; empty when one was, or none ran."""
    sessions = run.sessions
    if not sessions or any(s.refused for s in sessions):
        return ""
    if any(f.outcome in (Outcome.RESULT, Outcome.ERROR) for f in run.frames):
        return ""
    errors = Counter(s.error for s in sessions if s.error)
    cause = f": {errors.most_common(1)[0][0]}" if errors else ""
    # A session closed at hello (a bad --hello-options) connected: the server closed it.
    connected = sum(1 for s in sessions if s.ready is not None or s.close_code is not None)
    if not connected:
        return f"no session connected ({len(sessions)} tried){cause}"
    return (
        f"no session was answered ({connected} of {len(sessions)} connected, "
        f"none got a result){cause}"
    )


def write_all(
    out: Path,
    config: SwarmConfig,
    frames: FrameSet,
    run: RunResult,
    calibration: Calibration | None = None,
) -> dict[str, Any]:
    report = build_report(config, frames, run, calibration)
    write_files(out, report, config, run)
    return report


def check_writable(out: Path) -> None:
    """Raises OSError now if `out` cannot take the report, rather than after the whole run."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=out):
        pass


def write_files(out: Path, report: dict[str, Any], config: SwarmConfig, run: RunResult) -> None:
    """report.json, frames.csv, sessions.csv and report.png into `out`; OSError if it cannot."""
    out.mkdir(parents=True, exist_ok=True)
    raw_fps = report.get("raw_fps")
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    with (out / "frames.csv").open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(CSV_FIELDS)
        writer.writerows(csv_row(r) for r in run.frames)
    with (out / "sessions.csv").open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(SESSION_FIELDS)
        for s in run.sessions:
            writer.writerow(getattr(s, name) for name in SESSION_FIELDS)
    plot(out / "report.png", run.steps, Slo.from_config(config), raw_fps)


def plot(path: Path, steps: list[StepSummary], slo: Slo, raw_fps: float | None) -> None:
    # Figure without pyplot: no global state, no GUI backend, Agg does the drawing.
    fig = Figure(figsize=(15, 4.6), layout="constrained")
    ax_fps, ax_sessions, ax_latency = fig.subplots(1, 3)
    xs = [s.sessions for s in steps]
    colours = ["tab:green" if s.passed else "tab:red" for s in steps]

    ax_fps.plot(xs, [s.delivered_fps for s in steps], color="tab:blue", zorder=1, label="delivered")
    ax_fps.scatter(xs, [s.delivered_fps for s in steps], c=colours, zorder=2)
    ax_fps.plot(xs, [x * slo.fps for x in xs], "k:", label=f"every session at {slo.fps:g} fps")
    if raw_fps:
        ax_fps.axhline(raw_fps, color="tab:purple", ls="--", label=f"raw model {raw_fps:.0f} fps")
    ax_fps.set(title="delivered frames/s", xlabel="sessions", ylabel="results/s")

    for step, colour in zip(steps, colours, strict=True):
        fps = [f.fps for f in step.per_session if not f.refused]
        ax_sessions.scatter([step.sessions] * len(fps), fps, s=14, alpha=0.5, color=colour)
    ax_sessions.plot(xs, [s.session_fps["median"] for s in steps], color="tab:blue", label="median")
    ax_sessions.axhline(
        slo.served_fps, color="k", ls="--", label=f"SLO {slo.served_fps:g} fps per session"
    )
    ax_sessions.set(title="per-session fps", xlabel="sessions", ylabel="results/s per session")

    for q, style in (("p50", ":"), ("p95", "-"), ("p99", "--")):
        ax_latency.plot(xs, [s.latency_ms[q] for s in steps], ls=style, color="tab:blue", label=q)
    ax_latency.scatter(xs, [s.latency_ms["p95"] for s in steps], c=colours, zorder=2)
    ax_latency.axhline(slo.p95_ms, color="k", ls="--", label=f"SLO p95 {slo.p95_ms:g} ms")
    ax_latency.set(title="latency, capture to result", xlabel="sessions", ylabel="ms")

    best = sustainable_sessions(steps)
    bend = knee(steps)
    spread = max(xs) / min(xs) if xs else 1
    for ax in (ax_fps, ax_sessions, ax_latency):
        if best:
            ax.axvline(best, color="tab:green", alpha=0.4, lw=6, label=f"sustainable: {best}")
        if bend is not None:
            ax.axvline(bend, color="tab:orange", ls="-.", label=f"knee: {bend}")
        if spread >= 8:
            ax.set_xscale("log", base=2)
        if xs:
            ax.set_xticks(xs, [str(x) for x in xs])
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle("green: step meets the SLO, red: misses it", fontsize="small")
    fig.savefig(path, dpi=100)


def _cell(value: float | None, fmt: str = "g") -> str:
    return "-" if value is None else format(value, fmt)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def _megabytes(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e6:.0f}"


def table(report: dict[str, Any]) -> str:
    head = (
        "sessions",
        "fps",
        "eff",
        "sess fps min/p5/med",
        "latency p50/p95/p99 ms",
        "wait p50/p95",
        "on turn",
        "fair",
        "dropped",
        "errors",
        "refused",
        "cpu",
        "server cpu",
        "rss MB",
        "busy",
        "SLO",
        "",
    )
    rows = [head]
    for s in report["steps"]:
        sf, lat = s["session_fps"], s["latency_ms"]
        rows.append(
            (
                str(s["sessions"]),
                _cell(s["delivered_fps"], ".1f"),
                _cell(s["efficiency"], ".0%"),
                "/".join(_cell(sf[k], ".1f") for k in ("min", "p5", "median")),
                "/".join(_cell(lat[k], ".0f") for k in ("p50", "p95", "p99")),
                "/".join(_cell(s["server_wait_ms"][k], ".0f") for k in ("p50", "p95")),
                _cell(s["on_turn"] / s["sent"] if s["sent"] else None, ".0%"),
                _cell(s["fairness"], ".3f"),
                str(s["dropped"]),
                str(s["errors"]),
                str(s["refusals"]),
                _cell(s["swarm_cpu"], ".0%"),
                _percent(s.get("server_cpu_percent")),
                _megabytes(s.get("server_rss_bytes")),
                _cell(s.get("busy_ratio"), ".0%"),
                ("pass" if s["passed"] else "FAIL") + (" (cut short)" if s["interrupted"] else ""),
                "<- knee" if s.get("knee") else "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines.append("")
    best, fps = report["sustainable_sessions"], report["sustainable_fps"]
    lines.append(f"sustainable sessions: {best} at {fps:g} fps")
    if report.get("no_answer"):
        lines.append(report["no_answer"])
    if report.get("refusals"):
        lines.append(refusals_line(report["refusals"]))
    lines.append(knee_line(report))
    if report.get("metrics_problems"):
        lines.append(metrics_note(report))
    if "raw_fps" in report:
        lines.append(f"raw model throughput on this machine: {report['raw_fps']:g} frames/s")
    if report["stopped"]:
        lines.append(f"stopped early: {report['stopped']}")
    lines.extend(f"warning: {w}" for w in report["warnings"])
    return "\n".join(lines)


def refusals_line(refusals: dict[str, int]) -> str:
    """Why sessions were refused, the commonest reasons first: a key's quota or a client
    limit is not the server's capacity."""
    reasons = [f"{count} x {reason or 'no reason given'}" for reason, count in refusals.items()]
    shown = "; ".join(reasons[:REFUSAL_REASONS])
    more = len(reasons) - REFUSAL_REASONS
    return f"refused: {shown}" + (f"; {more} other reasons in report.json" if more > 0 else "")


def metrics_note(report: dict[str, Any]) -> str:
    """Why the server's figures are unknown ("-") in the table."""
    problems = "; ".join(report["metrics_problems"])
    flags = report["flags"]
    replicas = len(metrics_urls(flags["metrics-url"], flags["url"]))
    if replicas < 2:
        return f"server cpu, rss and busy unknown: /metrics could not be read ({problems})"
    return (
        f"server cpu, rss and busy unknown: the /metrics of {replicas} replicas could not all "
        f"be read ({problems}), and the sum of the others is not the total; report.json's "
        "server_processes has the processes of those read"
    )
