"""A real Prometheus (Debian's) scraping `make cluster` with the repository's scrape job, and
every query of the shipped Grafana dashboards evaluated by it.

One cluster with Prometheus serves the module: two single-worker replicas behind nginx, a
short swarm through nginx, then the tests read what Prometheus scraped. Grafana has no
Debian package; its provisioning files are checked against its schema in test_deploy.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import pytest_asyncio
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench.common import free_port
from deploy.cluster import (
    PROMETHEUS_CONFIG,
    PROMETHEUS_JOB,
    Cluster,
    PrometheusSpec,
    ReplicaSpec,
    find_nginx,
    render_prometheus,
)
from swarm.config import SwarmConfig
from swarm.runner import Runner
from tests.live import swarm_frames

pytestmark = [
    pytest.mark.skipif(find_nginx() is None, reason="nginx is not installed (make system-deps)"),
    pytest.mark.skipif(
        shutil.which("prometheus") is None or shutil.which("promtool") is None,
        reason="Prometheus is not installed (make system-deps)",
    ),
]

T = TypeVar("T")

DASHBOARDS = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "dashboards"
FRAMES = "holotrack_frames_total"
CLOSED = "holotrack_sessions_closed_total"
LIVE = "holotrack_sessions_live"
# Counters the swarm moves, waited for until Prometheus holds each replica's final value.
COUNTERS = (FRAMES, CLOSED)
# Seconds. Scraped every second, a replica's counters reach Prometheus soon after they move.
SCRAPE_INTERVAL = 1
# Generous: two cores are shared with other builds, and a target is `up` only after its
# first scrape, which Prometheus spreads over one interval.
UP_WITHIN = 60.0
SCRAPED_WITHIN = 30.0
POLL = 0.2
# The step Grafana would pick for a short range; $__interval is that step.
STEP = 1
# Grafana's $__rate_interval: max($__interval + scrape interval, 4 x scrape interval), the
# scrape interval being the data source's timeInterval, set to Prometheus's own.
RATE_INTERVAL = max(STEP + SCRAPE_INTERVAL, 4 * SCRAPE_INTERVAL)


async def until(check: Callable[[], Awaitable[T | None]], within: float, what: str) -> T:
    """Polls `check` every POLL seconds until it returns something, for at most `within`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        found = await check()
        if found is not None:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {within:g} s")
        await asyncio.sleep(POLL)


class PrometheusAPI:
    """The few endpoints of Prometheus's HTTP API the tests read; every answer must succeed."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = url + "/api/v1/"

    async def get(self, path: str, **params: str) -> Any:
        async with self.http.get(self.url + path, params=params) as response:
            body: dict[str, Any] = await response.json()
        assert response.status == 200, (path, params, body)
        assert body["status"] == "success", (path, params, body)
        assert "warnings" not in body, (path, params, body)
        return body["data"]

    async def targets(self) -> list[dict[str, Any]]:
        data = await self.get("targets", state="active")
        active: list[dict[str, Any]] = data["activeTargets"]
        return active

    async def query(self, expr: str, at: float) -> Any:
        return await self.get("query", query=expr, time=f"{at:.3f}")

    async def query_range(self, expr: str, start: float, end: float) -> Any:
        return await self.get(
            "query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=str(STEP)
        )


def sample_sums(exposition: str) -> dict[str, float]:
    """Each sample name of one replica's /metrics with its value summed over its labels."""
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
    return sums


async def replica_sums(
    http: aiohttp.ClientSession, cluster: Cluster
) -> dict[str, dict[str, float]]:
    """instance -> sample sums, read from each replica directly (never through nginx)."""
    sums = {}
    for index, instance in enumerate(cluster.replica_targets):
        async with http.get(cluster.replica_url(index) + "/metrics") as response:
            assert response.status == 200
            sums[instance] = sample_sums(await response.text())
    return sums


@dataclasses.dataclass(frozen=True)
class Scraped:
    """The cluster after a swarm, once Prometheus holds each replica's final frame count."""

    cluster: Cluster
    api: PrometheusAPI
    started: float
    ended: float
    # instance -> counter -> the replica's final value, which Prometheus holds too.
    counted: dict[str, dict[str, float]]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def scraped() -> AsyncIterator[Scraped]:
    replicas = [ReplicaSpec(free_port()), ReplicaSpec(free_port())]
    prometheus = PrometheusSpec(free_port(), scrape_interval=f"{SCRAPE_INTERVAL}s")
    cluster = Cluster(replicas, port=free_port(), echo=None, prometheus=prometheus)
    async with cluster, aiohttp.ClientSession() as http:
        api = PrometheusAPI(http, cluster.prometheus_url)
        instances = set(cluster.replica_targets)

        async def both_up() -> bool | None:
            up = {t["labels"]["instance"] for t in await api.targets() if t["health"] == "up"}
            return True if up == instances else None

        await until(both_up, UP_WITHIN, f"Prometheus reporting {sorted(instances)} up")

        started = time.time()
        # Four sessions at a low rate, as in test_cluster: least_conn puts some on each replica.
        config = dataclasses.replace(
            SwarmConfig(), url=cluster.ws_url, sessions="4", fps=4.0, warmup=0.5, hold=2.5
        )
        result = await Runner(config, swarm_frames()).run()
        (step,) = result.steps
        assert (step.errors, step.refusals) == (0, 0), [s.error for s in result.sessions]

        # A replica ends a session just after the client's close returns; once none is
        # live, its counters are final.
        async def all_closed() -> dict[str, dict[str, float]] | None:
            sums = await replica_sums(http, cluster)
            return sums if not any(s[LIVE] for s in sums.values()) else None

        final = await until(all_closed, SCRAPED_WITHIN, "the replicas ending every session")
        counted = {i: {c: sums.get(c, 0.0) for c in COUNTERS} for i, sums in final.items()}

        async def scraped_all() -> float | None:
            now = time.time()
            for counter in COUNTERS:
                data = await api.query(f"sum by (instance) ({counter})", now)
                seen = {r["metric"]["instance"]: float(r["value"][1]) for r in data["result"]}
                if seen != {i: values[counter] for i, values in counted.items()}:
                    return None
            return now

        seen_at = await until(
            scraped_all, SCRAPED_WITHIN, f"Prometheus holding the final counts {counted}"
        )

        # One scrape more, so every series has two samples with its final value and a
        # dashboard's rate() over them is a number, not nothing.
        async def scraped_again() -> bool | None:
            data = await api.query(f'min(timestamp(up{{job="{PROMETHEUS_JOB}"}}))', time.time())
            return True if float(data["result"][0]["value"][1]) > seen_at else None

        await until(scraped_again, SCRAPED_WITHIN, "one more scrape of both replicas")
        yield Scraped(cluster, api, started, time.time(), counted)


@pytest.mark.asyncio(loop_scope="module")
async def test_prometheus_scrapes_both_replicas_with_the_shipped_job(scraped: Scraped) -> None:
    targets = await scraped.api.targets()
    assert sorted(
        (t["labels"]["job"], t["scrapeUrl"], t["health"], t["lastError"]) for t in targets
    ) == sorted(
        (PROMETHEUS_JOB, f"http://{target}/metrics", "up", "")
        for target in scraped.cluster.replica_targets
    )

    data = await scraped.api.query(FRAMES, time.time())
    assert data["resultType"] == "vector"
    per_instance: dict[str, float] = {}
    for series in data["result"]:
        assert series["metric"]["job"] == PROMETHEUS_JOB
        instance = series["metric"]["instance"]
        per_instance[instance] = per_instance.get(instance, 0.0) + float(series["value"][1])
    assert per_instance.keys() == set(scraped.cluster.replica_targets)
    assert all(value > 0 for value in per_instance.values()), per_instance
    assert per_instance == {i: values[FRAMES] for i, values in scraped.counted.items()}


@pytest.mark.asyncio(loop_scope="module")
async def test_the_dashboard_sees_every_session_close(scraped: Scraped) -> None:
    """What "Sessions closed by reason" adds up over the run equals the sessions closed."""
    window = round(scraped.ended - scraped.started) + 10
    data = await scraped.api.query(f"sum(increase({CLOSED}[{window}s]))", scraped.ended)
    shown = float(data["result"][0]["value"][1]) if data["result"] else 0.0
    closed = sum(values[CLOSED] for values in scraped.counted.values())
    assert closed == 4
    # increase() extrapolates a little past the last sample; it never loses a whole session.
    assert shown >= closed - 0.5, f"Prometheus shows {shown:g} of {closed:g} sessions closed"


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside collapsed rows."""
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def dashboard_targets() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expr) of every query of every shipped dashboard."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in panels(dashboard["panels"]):
            for target in panel.get("targets", []):
                found.append((path.name, panel["title"], target["expr"]))
    return found


def selections(instances: list[str]) -> dict[str, str]:
    """What Grafana puts for a multi-value, include-all $instance: the dashboard's allValue
    for All, otherwise the values regex-escaped and joined, as its Prometheus data source
    does (each regex metacharacter gets a backslash, itself escaped in the string)."""

    def escape(value: str) -> str:
        return re.sub(r"([$^*{}\[\]'+?.()|])", r"\\\\\1", value.replace("\\", "\\\\\\\\"))

    return {"All": ".*", "both replicas": "(" + "|".join(map(escape, instances)) + ")"}


def substitute(expr: str, instance: str, range_seconds: float) -> str:
    values = {
        "instance": instance,
        "__rate_interval": f"{RATE_INTERVAL}s",
        "__interval": f"{STEP}s",
        "__range": f"{round(range_seconds)}s",
    }
    # Longest names first, so $__rate_interval is not read as $__rate followed by text.
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    assert "$" not in expr, f"a Grafana variable this test does not know: {expr}"
    return expr


@pytest.mark.asyncio(loop_scope="module")
async def test_every_dashboard_query_evaluates_in_the_real_prometheus(scraped: Scraped) -> None:
    queries = dashboard_targets()
    assert queries, f"no dashboard under {DASHBOARDS}"
    # Whole steps back from the end, so the last step is evaluated at `ended`, after the
    # fixture's extra scrape.
    end = scraped.ended
    start = end - STEP * math.ceil((end - scraped.started + 5) / STEP)
    empty: set[str] = set()
    for instance in selections(sorted(scraped.cluster.replica_targets)).values():
        for _, title, expr in queries:
            promql = substitute(expr, instance, end - start)
            instant = await scraped.api.query(promql, end)
            assert instant["resultType"] in ("vector", "scalar"), (title, promql, instant)
            ranged = await scraped.api.query_range(promql, start, end)
            assert ranged["resultType"] == "matrix", (title, promql, ranged)
            if not ranged["result"]:
                empty.add(title)
    # A short swarm refuses no session and posts no image: only these panels stay empty.
    assert empty <= {"Refused, last 15 min", "POST /predict by status"}, empty


@pytest.mark.asyncio(loop_scope="module")
async def test_the_dashboard_replica_list_finds_both_replicas(scraped: Scraped) -> None:
    """The $instance variable is label_values(metric, instance), which Grafana asks of the
    label values endpoint with the metric as a series match."""
    dashboards = [json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))]
    variables = [v for d in dashboards for v in d.get("templating", {}).get("list", [])]
    assert variables
    for variable in variables:
        found = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["definition"])
        assert found, variable["definition"]
        metric, label = found.groups()
        values = await scraped.api.get(f"label/{label}/values", **{"match[]": metric})
        assert sorted(values) == sorted(scraped.cluster.replica_targets)


def test_promtool_accepts_the_shipped_config() -> None:
    checked = subprocess.run(
        ["promtool", "check", "config", str(PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_the_cluster_config_is_the_shipped_job_with_local_targets(tmp_path: Path) -> None:
    shipped = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    text = render_prometheus(["127.0.0.1:8101", "127.0.0.1:8102"], "1s")
    rendered = yaml.safe_load(text)
    (job,) = rendered["scrape_configs"]
    (original,) = shipped["scrape_configs"]
    assert job["static_configs"] == [{"targets": ["127.0.0.1:8101", "127.0.0.1:8102"]}]
    assert job["scrape_interval"] == "1s"
    assert not any(key.endswith("_sd_configs") for key in job)
    # Everything else is the shipped file's: one source of truth for how replicas are scraped.
    kept = {k: v for k, v in original.items() if not k.endswith("_sd_configs")}
    assert {k: v for k, v in job.items() if k in kept} == kept
    assert rendered["global"] == shipped["global"]
    assert yaml.safe_load(render_prometheus(["a:1"]))["scrape_configs"][0].keys() == (
        kept.keys() | {"static_configs"}
    )
    generated = tmp_path / "prometheus.yml"
    generated.write_text(text)
    checked = subprocess.run(
        ["promtool", "check", "config", str(generated)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
