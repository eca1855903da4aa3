"""The alerting rules (deploy/prometheus/alerts.yml): promtool accepts them and their unit
tests, every way of deploying loads the same rules, and a real Prometheus scraping `make
cluster` with them raises the matching alert when the cluster is full and refuses a session,
when a worker is killed under a live session, and when a replica stops.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

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
from deploy.prometheus import rule
from tests.live import LiveClient, video_frames
from tests.media import ASL_VIDEO
from tests.test_deploy import MEMORY_HEADROOM, memory_mib
from tests.test_prometheus import PrometheusAPI, until
from webapp.protocol import Close

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None or shutil.which("promtool") is None,
    reason="Prometheus is not installed (make system-deps)",
)

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
K8S = ROOT / "deploy" / "k8s"
SEVERITIES = {"warning", "critical"}
# The real Prometheus scrapes and evaluates every second, so an alert whose expression
# turns true is pending within a few seconds; the rest is a busy machine's slack.
INTERVAL = "1s"
UP_WITHIN = 60.0
ALERT_WITHIN = 30.0
WORKER_MODULE = "webapp.engine.child"
# One session fills a replica. While the test waits for HolotrackNoRoom (a minute and more)
# its sessions send no frames and read nothing, so no pong answers the server's pings: the
# idle timeout (30 s) and the heartbeat (15 s, a dead peer at 22.5 s) would end them, the
# cluster would have room again, and the alert would never come.
FULL_AT_ONE = ("--max-sessions", "1", "--idle-timeout", "600", "--heartbeat", "600")


def subquery_step(alert: str) -> float:
    """Seconds between the steps of the alert's subquery. Prometheus aligns those steps to
    multiples of the step, so a change counts from the first step after it is scraped, up to
    a whole step later (HolotrackNoRoom's minute once outlasted a 30 s wait in CI)."""
    (expr,) = [r["expr"] for r in rules() if r["alert"] == alert]
    found = re.search(r"\[\d+[smh]:(\d+)([smh])\]", expr)
    assert found, expr
    return float(found.group(1)) * {"s": 1, "m": 60, "h": 3600}[found.group(2)]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, check=False, cwd=PROMETHEUS_DIR
    )


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [r for group in groups for r in group["rules"]]


def test_promtool_accepts_the_rules_and_each_has_a_wait_a_severity_and_advice() -> None:
    checked = promtool("check", "rules", str(ALERTS))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout
    for alert in rules():
        assert "for" in alert, alert["alert"]
        assert alert["labels"]["severity"] in SEVERITIES, alert["alert"]
        assert {"summary", "description"} <= alert["annotations"].keys(), alert["alert"]


def test_the_rules_unit_tests_pass() -> None:
    tested = promtool("test", "rules", str(ALERTS_TEST))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_has_unit_tests_that_see_it_fire_and_not_fire() -> None:
    suite = yaml.safe_load(ALERTS_TEST.read_text())
    assert suite["rule_files"] == [ALERTS.name]
    cases = [case for test in suite["tests"] for case in test["alert_rule_test"]]
    for alert in rules():
        name = alert["alert"]
        mine = [case for case in cases if case["alertname"] == name]
        assert any(case["exp_alerts"] for case in mine), f"{name} is never seen firing"
        assert any(not case["exp_alerts"] for case in mine), f"{name} is never seen quiet"


def test_the_rule_writer_explains_itself_without_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "prometheusrule.yaml"
    monkeypatch.setattr(rule, "PROMETHEUS_RULE", target)
    with pytest.raises(SystemExit) as helped:
        rule.main(["--help"])
    assert helped.value.code == 0
    assert not target.exists()
    assert rule.main([]) == 0
    assert target.read_text() == rule.render()


def test_every_deployment_loads_the_one_rules_file(tmp_path: Path) -> None:
    shipped = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert shipped["rule_files"] == [ALERTS.name]
    # compose: mounted beside prometheus.yml, where the relative path points.
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    volumes = compose["services"]["prometheus"]["volumes"]
    config_in = next(v.split(":")[1] for v in volumes if v.startswith("./deploy/prometheus/p"))
    assert f"./deploy/prometheus/{ALERTS.name}:{Path(config_in).parent}/{ALERTS.name}:ro" in (
        volumes
    )
    # make cluster: the copy in a temporary directory names the repository's file.
    generated = tmp_path / "prometheus.yml"
    generated.write_text(render_prometheus(["127.0.0.1:8101"], evaluation_interval=INTERVAL))
    rendered = yaml.safe_load(generated.read_text())
    assert rendered["rule_files"] == [str(ALERTS)]
    assert rendered["global"]["evaluation_interval"] == INTERVAL
    checked = promtool("check", "config", str(generated))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout
    # Kubernetes: the PrometheusRule is the rules file, and kustomize applies it.
    assert (K8S / "prometheusrule.yaml").read_text() == rule.render(), (
        "deploy/k8s/prometheusrule.yaml is stale: run python -m deploy.prometheus.rule"
    )
    (prometheus_rule,) = yaml.safe_load_all((K8S / "prometheusrule.yaml").read_text())
    assert prometheus_rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert prometheus_rule["kind"] == "PrometheusRule"
    assert prometheus_rule["spec"] == yaml.safe_load(ALERTS.read_text())
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert "prometheusrule.yaml" in kustomization["resources"]


def test_the_memory_alert_follows_the_pods_limit() -> None:
    (alert,) = [r for r in rules() if r["alert"] == "HolotrackMemoryNearLimit"]
    found = re.search(r">\s*([\d.]+)\s*\*\s*(\d+)\s*\*\s*2\^30\s*$", alert["expr"])
    assert found, alert["expr"]
    share, gibibytes = float(found.group(1)), int(found.group(2))
    (deployment,) = yaml.safe_load_all((K8S / "deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert gibibytes * 1024 == memory_mib(str(container["resources"]["limits"]["memory"]))
    # The headroom the limit was sized with: above it, more than was ever measured.
    assert share == MEMORY_HEADROOM


def worker_pids(server_pid: int) -> list[int]:
    """The inference workers a server started: its children running the worker module."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            # The command name may hold spaces and parentheses; it ends at the last ")".
            parent = int((proc / "stat").read_text().rpartition(")")[2].split()[1])
            command = (proc / "cmdline").read_bytes().split(b"\0")
            if parent == server_pid and WORKER_MODULE.encode() in command:
                pids.append(int(proc.name))
    return pids


async def alert_states(api: PrometheusAPI) -> dict[tuple[str, str], str]:
    """(alert name, instance or job) -> pending or firing, as Prometheus's API lists them."""
    data = await api.get("alerts")
    return {
        (a["labels"]["alertname"], a["labels"].get("instance", a["labels"]["job"])): a["state"]
        for a in data["alerts"]
    }


async def wait_for_alert(
    api: PrometheusAPI, name: str, instance: str, within: float = ALERT_WITHIN
) -> str:
    async def active() -> str | None:
        return (await alert_states(api)).get((name, instance))

    return await until(active, within, f"{name} for {instance} pending or firing")


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    if find_nginx() is None:
        pytest.skip("nginx is not installed (make system-deps)")
    prometheus = PrometheusSpec(free_port(), scrape_interval=INTERVAL, evaluation_interval=INTERVAL)
    replicas = [ReplicaSpec(free_port(), FULL_AT_ONE), ReplicaSpec(free_port(), FULL_AT_ONE)]
    async with Cluster(replicas, port=free_port(), echo=None, prometheus=prometheus) as running:
        yield running


async def test_a_full_cluster_a_killed_worker_and_a_stopped_replica_raise_their_alerts(
    cluster: Cluster,
) -> None:
    crashed, stopped = cluster.replica_targets
    async with aiohttp.ClientSession() as http:
        api = PrometheusAPI(http, cluster.prometheus_url)

        async def both_up() -> bool | None:
            up = {t["labels"]["instance"] for t in await api.targets() if t["health"] == "up"}
            return True if up == {crashed, stopped} else None

        await until(both_up, UP_WITHIN, "Prometheus reporting both replicas up")

        # Every rule is loaded and evaluates without error against the real series.
        async def evaluated() -> list[dict[str, Any]] | None:
            data = await api.get("rules", type="alert")
            loaded = [r for group in data["groups"] for r in group["rules"]]
            never = "0001-01-01T00:00:00Z"
            return loaded if all(r["lastEvaluation"] != never for r in loaded) else None

        loaded = await until(evaluated, ALERT_WITHIN, "every rule evaluated once")
        assert sorted(r["name"] for r in loaded) == sorted(r["alert"] for r in rules())
        assert [
            (r["name"], r["health"], r["lastError"]) for r in loaded if r["health"] != "ok"
        ] == []

        sockets = [cluster.replica_url(i).replace("http", "ws", 1) + "/ws" for i in (0, 1)]
        # A live session on each replica fills the cluster; one more is refused.
        live = LiveClient(await http.ws_connect(sockets[0]))
        await live.hello("holistic", fps=5)
        other = LiveClient(await http.ws_connect(sockets[1]))
        await other.hello("pose", fps=5)
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(sockets[0])
        assert refused.value.status == 503
        no_room_within = subquery_step("HolotrackNoRoom") + ALERT_WITHIN
        await wait_for_alert(api, "HolotrackNoRoom", PROMETHEUS_JOB, within=no_room_within)

        # Then the first session's worker is killed under it. 40 frames first: the
        # worker's CPU time then stands clearly above what its replacement spends starting
        # (measured here: 1.7-2.2 s at start, 3.8 s after the frames).
        await live.lockstep(video_frames(ASL_VIDEO))
        (worker,) = worker_pids(cluster.replicas[0].pid)
        os.kill(worker, signal.SIGKILL)
        assert (await live.closed())[0] == Close.INTERNAL
        await wait_for_alert(api, "HolotrackWorkerCrashed", crashed)
        # Both of its traces saw this crash: the 1011 close and the worker's CPU counter
        # starting again, which alone tells a crash with no session on the worker.
        (alert,) = [r for r in rules() if r["alert"] == "HolotrackWorkerCrashed"]
        branches = alert["expr"].split(" or ")
        assert len(branches) == 2, alert["expr"]
        for branch in branches:

            async def seen(branch: str = branch) -> list[str] | None:
                data = await api.get("query", query=branch)
                return [s["metric"]["instance"] for s in data["result"]] or None

            assert await until(seen, ALERT_WITHIN, branch) == [crashed]

        # Every metric the rules name is one the server exports (a renamed metric would
        # leave its alert silent forever, and promtool's tests would not notice).
        names = sorted({n for r in rules() for n in re.findall(r"holotrack_\w+", r["expr"])})
        data = await api.get(
            "query", query=f'count by (__name__) ({{__name__=~"{"|".join(names)}"}})'
        )
        assert sorted(s["metric"]["__name__"] for s in data["result"]) == names

        await cluster.stop_replica(1)
        await wait_for_alert(api, "HolotrackReplicaDown", stopped)
        states = await alert_states(api)
        # Each alert names the replica it is about, and only that one.
        assert ("HolotrackReplicaDown", crashed) not in states, states
        assert ("HolotrackWorkerCrashed", stopped) not in states, states
