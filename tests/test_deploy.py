"""The deployment files agree with the code: what the image copies exists, the manifests
point at each other, and every dashboard query names metrics and labels the server exposes.

No Docker engine or Kubernetes cluster runs here; these checks are what can be proven
without one (deploy/README.md says what was not).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

import deploy.cluster
from deploy.cluster import build_parser, find_nginx, render_main, render_site
from tests.conftest import MakeClient
from tests.live import LiveClient, video_frames
from tests.media import ASL_VIDEO, PERSON_JPEG
from webapp.config import Config

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "holotrack.json"
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"instance", "job"}


def load_yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def dockerfile_instructions() -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def test_the_image_copies_files_that_exist_and_are_sent_to_the_builder() -> None:
    allowed = {
        line[1:].strip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copies = [i.split()[1:] for i in dockerfile_instructions() if i.startswith("COPY ")]
    sources = [src for args in copies if not args[0].startswith("--") for src in args[:-1]]
    assert {"pyproject.toml", "webapp/", "static/", "templates/"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        path = source.strip("/")
        sent = any(path == a or path.startswith(a + "/") for a in allowed)
        assert sent, f"{source} is in .dockerignore"
    instructions = dockerfile_instructions()
    assert any(i.startswith("USER ") and "root" not in i for i in instructions)
    # webapp.healthcheck fetches /healthz where the server listens (tests/test_healthcheck.py).
    assert any(i.startswith("HEALTHCHECK ") and "webapp.healthcheck" in i for i in instructions)
    assert instructions[-1].startswith('CMD ["python", "-m", "webapp"')


def test_compose_mounts_files_of_the_repository() -> None:
    (compose,) = load_yaml(ROOT / "docker-compose.yml")
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}"
    nginx_env = compose["services"]["nginx"]["environment"]
    site = render_site(nginx_env["HOLOTRACK_LISTEN"], ["holotrack:8080"])
    assert "least_conn;" in site
    assert "server holotrack:8080 " in site
    assert "$http_upgrade" in site, "nginx's own variables must survive the rendering"
    template = (DEPLOY / "nginx" / "holotrack.conf.template").read_text()
    placeholders = set(re.findall(r"\$\{(HOLOTRACK_\w+)\}", template))
    assert placeholders - set(nginx_env) == set(), "compose leaves placeholders unfilled"
    (prometheus,) = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    (job,) = prometheus["scrape_configs"]
    assert job["dns_sd_configs"][0]["names"] == ["holotrack"]


def size_bytes(value: str) -> int:
    """nginx's size syntax: a number of bytes, or of KiB or MiB with k or m."""
    number, unit = re.fullmatch(r"(\d+)([km]?)", value.lower()).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "k": 1024, "m": 1024 * 1024}[unit]


def nginx_body_limit(site: str, path: str) -> int:
    """client_max_body_size for `path`: its exact location's, else its longest prefix
    location's, else the server's own, as nginx chooses."""
    site = re.sub(r"#.*", "", site)
    server_level = re.sub(r"location[^{]*\{[^{}]*\}", "", site)
    (default,) = re.findall(r"client_max_body_size (\w+);", server_level)
    matches = [
        (exact == "=", len(location), body)
        for exact, location, body in re.findall(r"location (=? ?)(/\S*) \{([^{}]*)\}", site)
        if location == path or (not exact and path.startswith(location))
    ]
    body = max(matches, key=lambda match: match[:2])[2] if matches else ""
    found = re.search(r"client_max_body_size (\w+);", body)
    return size_bytes(found.group(1) if found else default)


# Each upload route and the server's default limit for it: the proxy in front must let
# through every body the server accepts, and leave its JSON 413 to the server.
UPLOAD_LIMITS = {
    "/predict": Config().max_upload_bytes,
    "/api/video": Config().video_max_bytes,
    "/api/export": Config().max_export_bytes,
    "/api/avatar/" + "t" * 43: Config().max_avatar_mb * 2**20,
}


def test_nginx_lets_through_every_upload_the_server_accepts() -> None:
    site = render_site("127.0.0.1:8000", ["127.0.0.1:8101"])
    for path, server_limit in UPLOAD_LIMITS.items():
        assert nginx_body_limit(site, path) > server_limit, path


def nginx_read_timeout(site: str, path: str) -> float:
    """proxy_read_timeout for `path`, in seconds, as nginx_body_limit finds its body limit;
    nginx's own default (60 s) when neither sets one."""
    site = re.sub(r"#.*", "", site)
    server_level = re.sub(r"location[^{]*\{[^{}]*\}", "", site)
    matches = [
        (exact == "=", len(location), body)
        for exact, location, body in re.findall(r"location (=? ?)(/\S*) \{([^{}]*)\}", site)
        if location == path or (not exact and path.startswith(location))
    ]
    body = max(matches, key=lambda match: match[:2])[2] if matches else ""
    found = re.search(r"proxy_read_timeout (\d+)s;", body) or re.search(
        r"proxy_read_timeout (\d+)s;", server_level
    )
    return float(found.group(1)) if found else 60.0


# An export is silent until its conversion ends, which the server bounds by size, not time:
# the largest it takes by default, a 32 MB CSV, took 53 s on a loaded machine
# (docs/recordings.md). A proxy must wait well past that.
SLOWEST_EXPORT_SECONDS = 53.0
# The longest silence of each route's answer that the server itself allows.
SILENCES = {
    "/predict": Config().request_timeout,
    "/api/video": Config().video_waiting_seconds,
    "/api/export": 2 * SLOWEST_EXPORT_SECONDS,
}


def test_nginx_waits_longer_than_the_server_may_be_silent() -> None:
    """nginx allowed an export 60 s, and a 32 MB one took 53 s on a loaded machine; past it
    the client got nginx's 504 instead of the file."""
    site = render_site("127.0.0.1:8000", ["127.0.0.1:8101"])
    for path, silence in SILENCES.items():
        assert nginx_read_timeout(site, path) > silence, path
    ingresses = load_yaml(DEPLOY / "k8s" / "ingress.yaml")
    for path, silence in SILENCES.items():
        ingress, _ = ingress_route(ingresses, path)
        annotations = ingress["metadata"]["annotations"]
        # ingress-nginx's default is 60 s too.
        read_timeout = annotations.get("nginx.ingress.kubernetes.io/proxy-read-timeout", "60")
        assert float(read_timeout) > silence, path


def test_the_security_guides_nginx_site_waits_and_lets_through_as_the_shipped_one() -> None:
    """docs/SECURITY.md's site, the one an operator copies for a single server, gave an
    export nginx's default 60 s where the shipped site gives 300 s: a 32 MB CSV on a loaded
    machine came back as nginx's 504 page instead of the file."""
    (site,) = re.findall(r"```nginx\n(.*?)```", (ROOT / "docs" / "SECURITY.md").read_text(), re.S)
    for path, silence in SILENCES.items():
        assert nginx_read_timeout(site, path) > silence, path
    for path, server_limit in UPLOAD_LIMITS.items():
        assert nginx_body_limit(site, path) > server_limit, path


NGINX_PORT = 9441
SILENT_PORT = 9442


@contextlib.asynccontextmanager
async def nginx_serving(site: str, port: int, tmp_path: Path) -> AsyncIterator[str]:
    """Debian's nginx serving `site`, which listens on `port`: its URL once it answers,
    until the block ends."""
    prefix = Path(tempfile.mkdtemp(prefix="holotrack-nginx-", dir=tmp_path))
    (prefix / "holotrack.conf").write_text(site)
    (prefix / "nginx.conf").write_text(render_main(prefix, prefix / "holotrack.conf"))
    nginx = find_nginx()
    assert nginx is not None
    command = [nginx, "-e", "stderr", "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
    proc = await asyncio.create_subprocess_exec(
        *command, "-g", "daemon off;", stderr=asyncio.subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            # nginx prints nothing once it listens: a bounded wait for any answer of its own.
            for _ in range(200):
                assert proc.returncode is None, await proc.stderr.read()  # type: ignore[union-attr]
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with http.get(url + "/metrics"):
                        break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("nginx never answered")
        yield url
    finally:
        proc.terminate()
        await proc.wait()


@pytest.mark.skipif(find_nginx() is None, reason="needs Debian's nginx")
async def test_a_timeout_nginx_meets_itself_is_answered_in_json(tmp_path: Path) -> None:
    """Past a location's proxy_read_timeout nginx answered its own HTML 504, where every
    other refusal, the server's and nginx's, is JSON."""
    never = asyncio.Event()

    async def silent(request: web.Request) -> web.Response:
        await never.wait()
        raise AssertionError("never answered")

    app = web.Application()
    app.router.add_post("/api/export", silent)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", SILENT_PORT).start()
    # The shipped site, with a read timeout short enough to meet here.
    site = render_site(f"127.0.0.1:{NGINX_PORT}", [f"127.0.0.1:{SILENT_PORT}"])
    site = re.sub(r"proxy_read_timeout \d+s;", "proxy_read_timeout 1s;", site)
    try:
        async with (
            nginx_serving(site, NGINX_PORT, tmp_path) as url,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
            http.post(
                url + "/api/export?format=csv",
                data=b"{}\n",
                headers={"Content-Type": "application/x-ndjson"},
            ) as response,
        ):
            status, content_type = response.status, response.content_type
            text = await response.text()
    finally:
        await runner.cleanup()
    assert (status, content_type) == (504, "application/json"), text
    assert json.loads(text)["error"] == "timeout"


HEADERS_NGINX_PORT = 9595


@pytest.mark.skipif(find_nginx() is None, reason="needs Debian's nginx")
@pytest.mark.parametrize(
    ("path", "headers", "status", "error"),
    [
        ("/" + "a" * 9000, {}, 414, "uri_too_long"),
        ("/", {"Cookie": "b" * 9000}, 400, "headers_too_large"),
    ],
)
async def test_an_address_or_header_too_long_for_nginx_is_answered_in_json(
    tmp_path: Path, path: str, headers: dict[str, str], status: int, error: str
) -> None:
    """nginx answered its own HTML pages for a request line or header over its buffers,
    where every other refusal is JSON. No replica is reached: none listens."""
    site = render_site(f"127.0.0.1:{HEADERS_NGINX_PORT}", ["127.0.0.1:9"])
    async with (
        nginx_serving(site, HEADERS_NGINX_PORT, tmp_path) as url,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.get(url + path, headers=headers) as response,
    ):
        got, content_type = response.status, response.content_type
        text = await response.text()
    assert (got, content_type) == (status, "application/json"), text
    assert json.loads(text)["error"] == error


REFUSING_NGINX_PORT = 9596


@pytest.mark.skipif(find_nginx() is None, reason="needs Debian's nginx")
@pytest.mark.parametrize(
    ("head", "status", "error"),
    [
        (b"TRACE / HTTP/1.1\r\nHost: x\r\n", 405, "method_not_allowed"),
        (
            b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n",
            501,
            "not_implemented",
        ),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n", 400, "bad_request"),
        # A request line nginx cannot parse leaves no URI, which a named location needs.
        (b"GET /a b HTTP/1.1\r\nHost: x\r\n", 400, "bad_request"),
        (b"GARBAGE\r\n", 400, "bad_request"),
    ],
)
async def test_a_request_nginx_refuses_itself_is_answered_in_json(
    tmp_path: Path, head: bytes, status: int, error: str
) -> None:
    """A TRACE, a Transfer-Encoding nginx does not know and a Host it cannot parse got
    nginx's own HTML pages, where every other refusal is JSON. Sent as raw bytes: an HTTP
    client will not write them. No replica is reached: none listens."""
    site = render_site(f"127.0.0.1:{REFUSING_NGINX_PORT}", ["127.0.0.1:9"])
    async with nginx_serving(site, REFUSING_NGINX_PORT, tmp_path):
        reader, writer = await asyncio.open_connection("127.0.0.1", REFUSING_NGINX_PORT)
        try:
            writer.write(head + b"Connection: close\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 10)
        finally:
            writer.close()
    headers, _, body = answer.partition(b"\r\n\r\n")
    lines = headers.decode("latin-1").split("\r\n")
    assert lines[0].split()[1] == str(status), answer
    assert "content-type: application/json" in [line.lower() for line in lines], answer
    assert json.loads(body)["error"] == error


# Grafana's provisioning files have no published schema. These are the keys of apiVersion 1
# as Grafana reads them (pkg/services/provisioning/datasources/types.go and
# dashboards/types.go, documented in administration/provisioning). Grafana's YAML reader is
# not strict: a misspelt key is ignored without a word, so the names are checked here.
DATASOURCE_FILE_KEYS = {"apiVersion", "datasources", "deleteDatasources"}
DATASOURCE_KEYS = {
    "orgId", "orgName", "version", "name", "type", "access", "url", "user", "database",
    "basicAuth", "basicAuthUser", "withCredentials", "isDefault", "correlations", "jsonData",
    "secureJsonData", "editable", "uid",
}  # fmt: skip
PROVIDER_FILE_KEYS = {"apiVersion", "providers"}
PROVIDER_KEYS = {
    "name", "type", "orgId", "folder", "folderUid", "editable", "options", "disableDeletion",
    "updateIntervalSeconds", "allowUiUpdates",
}  # fmt: skip
FILE_PROVIDER_OPTIONS = {"path", "foldersFromFilesStructure"}
# Where the grafana/grafana image reads provisioning files (GF_PATHS_PROVISIONING).
GRAFANA_PROVISIONING = "/etc/grafana/provisioning"


def compose_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> repository path of a compose service's bind mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            mounts[target.rstrip("/")] = source[2:].rstrip("/")
    return mounts


def test_grafana_provisioning_follows_grafanas_schema_and_the_compose_mounts() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    files = sorted(p for p in provisioning.rglob("*") if p.is_file())
    # Grafana reads only *.yaml and *.yml, one directory per kind; anything else is skipped.
    assert {(p.parent.name, p.suffix) for p in files} <= {
        ("datasources", ".yml"), ("datasources", ".yaml"),
        ("dashboards", ".yml"), ("dashboards", ".yaml"),
    }, files  # fmt: skip

    datasources: list[dict[str, Any]] = []
    for path in files:
        if path.parent.name != "datasources":
            continue
        (doc,) = load_yaml(path)
        assert doc["apiVersion"] == 1, path
        assert doc.keys() <= DATASOURCE_FILE_KEYS, path
        for source in doc["datasources"]:
            assert source.keys() <= DATASOURCE_KEYS, (path, source.keys() - DATASOURCE_KEYS)
            assert all(source.get(key) for key in ("name", "type", "url")), path
            assert source["access"] in {"proxy", "direct"}, path
            datasources.append(source)
    assert sum(bool(s.get("isDefault")) for s in datasources) == 1
    assert len({s["name"] for s in datasources}) == len(datasources)

    providers: list[dict[str, Any]] = []
    for path in files:
        if path.parent.name != "dashboards":
            continue
        (doc,) = load_yaml(path)
        assert doc["apiVersion"] == 1, path
        assert doc.keys() <= PROVIDER_FILE_KEYS, path
        for provider in doc["providers"]:
            assert provider.keys() <= PROVIDER_KEYS, (path, provider.keys() - PROVIDER_KEYS)
            assert provider["name"], path
            assert provider.get("type", "file") == "file", path
            assert provider["options"].keys() <= FILE_PROVIDER_OPTIONS, path
            providers.append(provider)
    assert len({p["name"] for p in providers}) == len(providers)
    assert providers, "no dashboard provider"

    # The files meet each other where compose mounts them.
    (compose,) = load_yaml(ROOT / "docker-compose.yml")
    grafana = compose["services"]["grafana"]
    mounts = compose_mounts(grafana)
    assert mounts[GRAFANA_PROVISIONING] == "deploy/grafana/provisioning"
    for provider in providers:
        path = provider["options"]["path"].rstrip("/")
        assert path in mounts, f"provider {provider['name']} reads {path}, not mounted"
        folder = mounts[path]
        assert list((ROOT / folder).glob("*.json")), f"{folder} holds no dashboard"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    home_dir, home_name = home.rsplit("/", 1)
    assert (ROOT / mounts[home_dir] / home_name).is_file(), home

    # The data source is the compose Prometheus, and Grafana's $__rate_interval is built
    # on the scrape interval it is told (timeInterval).
    (prometheus_source,) = [s for s in datasources if s["type"] == "prometheus"]
    assert prometheus_source["url"] == "http://prometheus:9090"
    assert "prometheus" in compose["services"]
    assert "9090:9090" in compose["services"]["prometheus"]["ports"]
    (prometheus,) = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    (job,) = prometheus["scrape_configs"]
    scrape_interval = job.get("scrape_interval", prometheus["global"]["scrape_interval"])
    assert prometheus_source["jsonData"]["timeInterval"] == scrape_interval

    # Every panel, query and variable of the dashboards names a provisioned data source.
    known = {(s["type"], s["uid"]) for s in datasources}
    for dashboard_path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        text = dashboard_path.read_text()
        for ref in re.findall(r'"datasource":\s*(\{[^{}]*\})', text):
            source = json.loads(ref)
            assert (source["type"], source["uid"]) in known, (dashboard_path.name, source)


def test_kubernetes_objects_point_at_each_other() -> None:
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for name in ("deployment.yaml", "service.yaml", "ingress.yaml", "hpa.yaml"):
        for doc in load_yaml(DEPLOY / "k8s" / name):
            objects[doc["kind"], doc["metadata"]["name"]] = doc
    deployment = objects["Deployment", "holotrack"]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (container,) = pod["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    port_names = {p["name"] for p in container["ports"]}
    services = {name: doc for (kind, name), doc in objects.items() if kind == "Service"}
    for service in services.values():
        assert service["spec"]["selector"].items() <= labels.items()
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    assert services["holotrack-http"]["spec"]["publishNotReadyAddresses"] is True
    ingress = objects["Ingress", "holotrack"]
    backends = {
        path["path"]: path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"/ws": "holotrack", "/": "holotrack-http"}
    annotations = ingress["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    hpa = objects["HorizontalPodAutoscaler", "holotrack"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "holotrack"
    scaled_on = {m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"}
    assert scaled_on == {"holotrack_pool_busy_ratio", "holotrack_sessions_live"}


def ingress_route(ingresses: list[dict[str, Any]], path: str) -> tuple[dict[str, Any], str]:
    """The Ingress and service that serve `path`: an Exact path over any Prefix, then the
    longest Prefix, as ingress-nginx chooses."""
    routes = [
        (path_rule["pathType"] == "Exact", len(path_rule["path"]), ingress, path_rule)
        for ingress in ingresses
        for rule in ingress["spec"]["rules"]
        for path_rule in rule["http"]["paths"]
        if path_rule["path"] == path
        or (path_rule["pathType"] == "Prefix" and path.startswith(path_rule["path"].rstrip("/")))
    ]
    assert routes, f"no Ingress serves {path}"
    *_, ingress, path_rule = max(routes, key=lambda route: route[:2])
    return ingress, path_rule["backend"]["service"]["name"]


def test_the_ingress_hides_metrics_and_lets_through_every_upload_the_server_accepts() -> None:
    ingresses = load_yaml(DEPLOY / "k8s" / "ingress.yaml")
    prefix = "nginx.ingress.kubernetes.io/"
    ingress, _ = ingress_route(ingresses, "/metrics")
    annotations = ingress["metadata"]["annotations"]
    for name in ("allowlist-source-range", "whitelist-source-range"):
        assert annotations.get(prefix + name) == "127.0.0.1/32", ingress["metadata"]["name"]
    for path, server_limit in UPLOAD_LIMITS.items():
        ingress, service = ingress_route(ingresses, path)
        # A video takes a session's place: only pods with room get it, as /ws does.
        assert service == ("holotrack" if path == "/api/video" else "holotrack-http"), path
        body = ingress["metadata"]["annotations"][prefix + "proxy-body-size"]
        assert size_bytes(body) > server_limit, (path, body)


def cpus(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


# What one worker takes at full load, the server process's share included (README, "How
# capacity grows with replicas": a single-worker replica uses more than one core).
CORES_PER_WORKER = 1.4


def test_the_pods_cpu_request_covers_its_workers() -> None:
    (deployment,) = load_yaml(DEPLOY / "k8s" / "deployment.yaml")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    workers = int(env["HOLOTRACK_WORKERS"])
    requested = cpus(str(container["resources"]["requests"]["cpu"]))
    assert requested >= CORES_PER_WORKER * workers, (workers, requested)


# Memory a replica needs, in MiB, as deploy/README.md sizes it from bench/memory.py: the
# server process, each worker with its still-image graph, spares and blendshapes model,
# and each live session (its graph, about 200 steady, and the peaks of graphs being built
# and recycled, 23.5 MP stills and videos beside the sessions). The limit keeps the
# measured peak under 85% of it.
SERVER_MIB = 150
WORKER_MIB = 650
MEMORY_HEADROOM = 0.85


def memory_mib(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "K": 1e3 / 2**20, "M": 1e6 / 2**20}
    units["G"] = 1e9 / 2**20
    number, unit = re.fullmatch(r"(\d+)([KMG]i?)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * units[unit]


def test_the_pods_memory_limit_covers_its_sessions() -> None:
    (deployment,) = load_yaml(DEPLOY / "k8s" / "deployment.yaml")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    workers, sessions = int(env["HOLOTRACK_WORKERS"]), int(env["HOLOTRACK_MAX_SESSIONS"])
    # The per-session figure operators are told to size with.
    text = (DEPLOY / "README.md").read_text()
    found = re.search(r"about\s+(\d+)\s+MB\s+of\s+memory\s+a\s+session", text)
    assert found, "deploy/README.md no longer gives the memory of a session"
    per_session = int(found.group(1))
    needed = (SERVER_MIB + WORKER_MIB * workers + per_session * sessions) / MEMORY_HEADROOM
    resources = container["resources"]
    limit = memory_mib(str(resources["limits"]["memory"]))
    assert limit >= needed, (workers, sessions, limit, needed)
    assert memory_mib(str(resources["requests"]["memory"])) <= limit


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(panel title, expression, legend) for every query of the dashboard."""
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"], target.get("legendFormat", ""))
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


async def test_the_dashboard_asks_for_metrics_and_labels_the_server_exposes(
    make_client: MakeClient,
) -> None:
    client = await make_client(Config(workers=1, max_sessions=1, no_cache=True))
    # Every labelled metric gets a sample: a live frame, a refusal, an upload.
    live = await LiveClient.connect(client)
    await live.hello("holistic")
    await live.lockstep(video_frames(ASL_VIDEO)[:1])
    refused = await LiveClient.connect(client)
    await refused.ws.send_json({"type": "hello", "version": 1, "track": "pose", "fps": 5})
    assert (await refused.closed())[0] == 1013
    upload = await client.post(
        "/predict", data=PERSON_JPEG.read_bytes(), headers={"Content-Type": "image/jpeg"}
    )
    assert upload.status == 200
    exposition = await (await client.get("/metrics")).text()
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)

    queries = dashboard_queries()
    used = {name for _, expr, _ in queries for name in re.findall(r"holotrack_\w+", expr)}
    assert used - labels.keys() == set(), "the dashboard names metrics the server lacks"
    for title, expr, legend in queries:
        known = TARGET_LABELS.union(*(labels[n] for n in re.findall(r"holotrack_\w+", expr)))
        grouped = {
            label.strip()
            for group in re.findall(r"by \(([^)]*)\)", expr)
            for label in group.split(",")
        }
        matched = set(re.findall(r"(\w+)=~?\"", expr))
        shown = set(re.findall(r"\{\{(\w+)\}\}", legend))
        assert grouped | matched | shown <= known, f"{title}: {expr} / {legend}"


@pytest.mark.parametrize(
    ("value", "on"), [("1", True), ("yes", True), ("0", False), ("false", False), ("off", False)]
)
def test_the_clusters_prometheus_twin_reads_booleans_as_the_server_does(
    monkeypatch: pytest.MonkeyPatch, value: str, on: bool
) -> None:
    monkeypatch.setenv("HOLOTRACK_CLUSTER_PROMETHEUS", value)
    assert build_parser().parse_args([]).prometheus is on


def test_the_clusters_prometheus_flag_wins_over_its_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    """HOLOTRACK_CLUSTER_PROMETHEUS=1 in a shell's profile could not be turned off for one
    run: the flag only switched it on."""
    monkeypatch.setenv("HOLOTRACK_CLUSTER_PROMETHEUS", "1")
    assert build_parser().parse_args(["--prometheus=no"]).prometheus is False
    assert build_parser().parse_args(["--prometheus"]).prometheus is True
    monkeypatch.setenv("HOLOTRACK_CLUSTER_PROMETHEUS", "0")
    assert build_parser().parse_args(["--prometheus=yes"]).prometheus is True


def test_the_clusters_prometheus_twin_refuses_what_is_not_a_boolean(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOLOTRACK_CLUSTER_PROMETHEUS", "maybe")
    parser = build_parser()  # and so --help still answers
    with pytest.raises(SystemExit) as stopped:
        parser.parse_args([])
    assert stopped.value.code == 2
    assert "argument --prometheus: not a boolean: 'maybe'" in capsys.readouterr().err


@pytest.mark.parametrize("twin", ["PORT", "REPLICAS", "BASE_PORT", "WORKERS", "PROMETHEUS_PORT"])
def test_a_clusters_number_twin_that_is_no_number_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], twin: str
) -> None:
    monkeypatch.setenv(f"HOLOTRACK_CLUSTER_{twin}", "abc")
    parser = build_parser()  # and so --help still answers
    with pytest.raises(SystemExit) as stopped:
        parser.parse_args([])
    assert stopped.value.code == 2
    flag = "--" + twin.lower().replace("_", "-")
    assert f"argument {flag}: invalid int value: 'abc'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--port", "70000"], "--port must be 1 to 65535"),
        (["--base-port", "65535"], "--base-port must be 1 to 65535, and so must the 1 after it"),
        (["--port", "8102", "--replicas", "3"], "--port 8102 is one of the replicas' ports"),
        (["--prometheus", "--prometheus-port", "8101"], "--prometheus-port 8101 is one of"),
        (["--prometheus", "--prometheus-port", "8000"], "--port and --prometheus-port are both"),
        (["--host", "a b"], "--host 'a b' is not an address or host name"),
        (["--host", ""], "--host '' is not an address or host name"),
    ],
)
def test_a_cluster_that_cannot_listen_is_refused_before_it_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    """Each started every replica first, then ended in nginx's words or a replica's usage
    text, status 1."""
    started: list[object] = []

    async def serve(args: object) -> int:
        started.append(args)
        return 0

    monkeypatch.setattr(deploy.cluster, "serve", serve)
    with pytest.raises(SystemExit) as stopped:
        deploy.cluster.main(argv)
    assert stopped.value.code == 2
    assert said in capsys.readouterr().err
    assert not started
    assert deploy.cluster.main(["--port", "8000", "--base-port", "8001", "--replicas", "3"]) == 0


def test_kustomize_applies_files_that_exist_and_leaves_the_helm_values_out() -> None:
    (kustomization,) = load_yaml(DEPLOY / "k8s" / "kustomization.yaml")
    resources = kustomization["resources"]
    assert len(resources) == len(set(resources))
    for name in resources:
        for doc in load_yaml(DEPLOY / "k8s" / name):
            assert {"apiVersion", "kind", "metadata"} <= doc.keys(), name
    # Helm values for prometheus-adapter, not a Kubernetes object.
    assert "prometheus-adapter-rules.yaml" not in resources
    assert "prometheusrule.yaml" in resources


def make_dry_run(target: str, folder: Path) -> str:
    """What `make TARGET` would run in a new clone whose virtualenv is already there."""
    make = shutil.which("make")
    assert make is not None, "make is not installed"
    for name in ("Makefile", "pyproject.toml", "package.json", "package-lock.json"):
        shutil.copy(ROOT / name, folder / name)
    (folder / ".venv" / "bin").mkdir(parents=True, exist_ok=True)
    (folder / ".venv" / ".installed").touch()
    (folder / ".venv" / ".installed-test").touch()
    done = subprocess.run(
        [make, "--dry-run", target], cwd=folder, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("target", ["run", "cluster"])
def test_make_installs_the_avatar_pages_modules_before_it_serves(
    target: str, tmp_path: Path
) -> None:
    """A fresh clone's `make cluster` started replicas whose /avatar was the 503 page that
    lists the missing three.js files: only `make run` and `make test` ran npm ci."""
    assert "npm ci" in make_dry_run(target, tmp_path)


@pytest.mark.parametrize("target", ["lint", "test"])
def test_make_lint_is_the_checks_make_test_runs_first(target: str, tmp_path: Path) -> None:
    """`make lint` was listed as a target with no rule ("No rule to make target"), and
    `make test` left ruff's format check out."""
    commands = make_dry_run(target, tmp_path).splitlines()
    checks = [".venv/bin/ruff check .", ".venv/bin/ruff format --check .", ".venv/bin/mypy"]
    assert [line for line in commands if line in checks] == checks


LINK_NGINX_PORT = 9596
LINK_REPLICA_PORTS = (9597, 9598)


async def start_replica(name: str, port: int) -> web.AppRunner:
    """A stand-in replica: /api/end answers its name; /ws holds the request open, as a live
    session's WebSocket holds its connection."""

    async def end(request: web.Request) -> web.Response:
        return web.json_response({"replica": name})

    async def session(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Replica": name})
        await response.prepare(request)
        await response.write(b"live\n")
        await asyncio.Event().wait()
        return response

    app = web.Application()
    app.router.add_post("/api/end", end)
    app.router.add_get("/ws", session)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


@pytest.mark.skipif(find_nginx() is None, reason="needs Debian's nginx")
async def test_a_link_goes_back_to_its_replica_once_that_one_serves_again(
    tmp_path: Path,
) -> None:
    """A replica that had failed once stayed half failed in the links' upstream until a
    request to it ended: each live session it took (a WebSocket that stays open) left it
    out for fail_timeout again, and the link's watchers and its camera's next connection
    went to the other replica, which told them 4003."""
    replicas = [f"127.0.0.1:{port}" for port in LINK_REPLICA_PORTS]
    site = render_site(f"127.0.0.1:{LINK_NGINX_PORT}", replicas)
    runners = [await start_replica(str(i), port) for i, port in enumerate(LINK_REPLICA_PORTS)]
    try:
        async with (
            nginx_serving(site, LINK_NGINX_PORT, tmp_path) as url,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        ):

            async def end(link: str) -> str | None:
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with http.post(f"{url}/api/end?link={link}") as response:
                        if response.status == 200:
                            return str((await response.json())["replica"])
                return None

            links = {f"link{i}": await end(f"link{i}") for i in range(20)}
            link = next(name for name, replica in links.items() if replica == "0")
            # Replica 0 gone: the link's requests go to the next replica, and 0 has failed.
            await runners[0].cleanup()
            assert await end(link) == "1"
            runners[0] = await start_replica("0", LINK_REPLICA_PORTS[0])
            # Back, it takes the link's camera again, at the latest once nginx's
            # fail_timeout (5 s) is over: a session held open.
            for _ in range(100):
                camera = await http.get(f"{url}/ws?link={link}")
                if camera.headers.get("Replica") == "0":
                    break
                camera.close()
                await asyncio.sleep(0.1)
            assert camera.headers.get("Replica") == "0"
            # Everything else about the link must reach the camera's replica.
            assert await end(link) == "0"
            camera.close()
    finally:
        for runner in runners:
            await runner.cleanup()
