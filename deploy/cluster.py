"""`make cluster`: replicas of the server behind a real nginx on loopback, until Ctrl-C.

Starts N `python -m webapp --workers 1` processes, waits until each one says it is
serving, renders deploy/nginx/holotrack.conf.template into a temporary prefix and runs
Debian's nginx from there in the foreground, so nothing under /etc or /var is touched.
With --prometheus it also runs Debian's Prometheus on loopback, with the scrape job of
deploy/prometheus/prometheus.yml pointed at the replicas, its alerting rules
(deploy/prometheus/alerts.yml) and a temporary TSDB.
Ctrl-C, SIGTERM or SIGHUP stops the replicas first (their sessions get 1001 through
nginx), then nginx, then Prometheus. Every child runs in its own process group: the
terminal's Ctrl-C reaches only this launcher, which stops them in that order.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import shutil
import signal
import string
import sys
import tempfile
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import yaml

from webapp.config_checks import listenable
from webapp.flags import bool_flag

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).resolve().parent / "nginx" / "holotrack.conf.template"
PROMETHEUS_CONFIG = Path(__file__).resolve().parent / "prometheus" / "prometheus.yml"
# The job in PROMETHEUS_CONFIG that scrapes the replicas; only its targets are replaced.
PROMETHEUS_JOB = "holotrack"
# Prometheus has no authentication and its API can be asked for anything it holds.
PROMETHEUS_HOST = "127.0.0.1"
# The replicas trust X-Forwarded-For (HOLOTRACK_TRUST_PROXY): reachable by anyone but nginx,
# a client could claim any address and slip its per-client limits. Only nginx takes --host.
REPLICA_HOST = "127.0.0.1"
PROMETHEUS_READY = "Server is ready to receive web requests."
PROMETHEUS_START_TIMEOUT = 60.0
ENV_PREFIX = "HOLOTRACK_CLUSTER_"
# A replica loads and warms its models before it listens; a busy two-core machine is slow.
START_TIMEOUT = 180.0
# The server gives its sessions 3 s to close, then stops its workers.
STOP_TIMEOUT = 20.0
NGINX_START_TIMEOUT = 15.0
SERVING = "Running on"
# How often a child is looked at for its end (Child.exited).
EXIT_POLL_S = 0.1
# One refused connection, timeout or 503 leaves a replica out for 5 s; then it is tried again.
BACKEND_PARAMS = "max_fails=1 fail_timeout=5s"
# A link's replica is never left out (the template says why): one that is gone refuses its
# requests, which go on to the next.
LINK_BACKEND_PARAMS = "max_fails=0"
TAIL_LINES = 40
SBIN = "/usr/local/sbin:/usr/sbin:/sbin"

Echo = Callable[[str, str], None]


class ClusterError(RuntimeError):
    """A part of the cluster did not start, or stopped on its own."""


@dataclass(frozen=True)
class ReplicaSpec:
    port: int
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class PrometheusSpec:
    port: int
    binary: str = "prometheus"
    # None keeps the shipped file's interval; tests shorten it to see scrapes sooner.
    scrape_interval: str | None = None
    # Likewise for the alerting rules, so a test sees an alert become pending sooner.
    evaluation_interval: str | None = None


def find_nginx(name: str = "nginx") -> str | None:
    """Debian puts nginx in /usr/sbin, which a normal user's PATH often lacks."""
    return shutil.which(name) or shutil.which(name, path=SBIN)


def render_site(listen: str, backends: Sequence[str], template: Path = TEMPLATE) -> str:
    """The template with its three placeholders filled; nginx's own $variables stay as they are."""
    servers = "\n    ".join(f"server {backend} {BACKEND_PARAMS};" for backend in backends)
    links = "\n    ".join(f"server {backend} {LINK_BACKEND_PARAMS};" for backend in backends)
    text = string.Template(template.read_text()).safe_substitute(
        HOLOTRACK_LISTEN=listen, HOLOTRACK_BACKENDS=servers, HOLOTRACK_LINK_BACKENDS=links
    )
    if "${HOLOTRACK_" in text:
        raise ClusterError(f"{template} has a placeholder this launcher does not fill")
    return text


def render_prometheus(
    targets: Sequence[str],
    scrape_interval: str | None = None,
    source: Path = PROMETHEUS_CONFIG,
    evaluation_interval: str | None = None,
) -> str:
    """The repository's Prometheus config with its holotrack job scraping `targets`.

    Only the job's service discovery (compose's DNS names) becomes a static list; its
    metrics path, its labels, the intervals, the alerting rules and any other job stay
    the shipped file's, so the cluster scrapes and alerts exactly as compose does.
    """
    config = yaml.safe_load(source.read_text())
    # The copy is written to a temporary directory, and Prometheus reads rule files
    # relative to the config's own: point them at the repository's files.
    if config.get("rule_files"):
        config["rule_files"] = [str(source.parent / rules) for rules in config["rule_files"]]
    if evaluation_interval is not None:
        config.setdefault("global", {})["evaluation_interval"] = evaluation_interval
    jobs = [j for j in config.get("scrape_configs") or [] if j.get("job_name") == PROMETHEUS_JOB]
    if len(jobs) != 1:
        raise ClusterError(f"{source} has no scrape job named {PROMETHEUS_JOB!r}")
    (job,) = jobs
    for key in [k for k in job if k.endswith("_sd_configs") or k == "static_configs"]:
        del job[key]
    job["static_configs"] = [{"targets": list(targets)}]
    if scrape_interval is not None:
        job["scrape_interval"] = scrape_interval
    header = (
        f"# Generated by deploy/cluster.py from {source.name} for one run: "
        f"job {PROMETHEUS_JOB} scrapes this run's replicas.\n"
    )
    return header + str(yaml.safe_dump(config, sort_keys=False))


def render_main(prefix: Path, site: Path) -> str:
    """A whole nginx.conf whose pid, logs and temporary files all live under `prefix`."""
    return f"""# Generated by deploy/cluster.py for one run; the site is {site.name}.
worker_processes 1;
pid {prefix}/nginx.pid;
error_log stderr warn;
events {{
    worker_connections 1024;
}}
http {{
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {site};
}}
"""


def print_line(name: str, line: str) -> None:
    print(f"{name:>10} | {line}", flush=True)


class Child:
    """One child process: its output lines are echoed and the last ones kept for errors."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        echo: Echo | None,
        env: Mapping[str, str] | None = None,
        ready_line: str = "",
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.echo = echo
        self.env = dict(env) if env is not None else None
        self.ready_line = ready_line
        self.ready = asyncio.Event()
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        self.ready.clear()
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            cwd=ROOT,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            limit=1024 * 1024,
        )
        self._pump = asyncio.create_task(self._read(), name=f"output-{self.name}")

    async def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            text = line.decode(errors="replace").rstrip()
            self.tail.append(text)
            if self.echo is not None:
                self.echo(self.name, text)
            if self.ready_line and self.ready_line in text:
                self.ready.set()

    async def exited(self) -> None:
        """Returns once the child itself has ended. Not proc.wait(), which waits for its
        output to close too: the workers of an nginx whose master was killed held it open,
        and served on, and `make cluster` never saw nginx go."""
        assert self.proc is not None
        # asyncio has no event for the exit alone; its returncode is set as it happens.
        while self.proc.returncode is None:  # noqa: ASYNC110
            await asyncio.sleep(EXIT_POLL_S)

    async def wait_ready(self) -> None:
        """Returns once the ready line was printed; raises ClusterError if the child ends first."""
        assert self.proc is not None
        ready = asyncio.create_task(self.ready.wait())
        exited = asyncio.create_task(self.exited())
        try:
            await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            exited.cancel()
        if self.ready.is_set():
            return
        await self._flush()
        raise ClusterError(self.failure(f"exited with status {self.proc.returncode}"))

    def failure(self, why: str) -> str:
        return f"{self.name} {why}; its last lines:\n" + self.last_lines()

    def last_lines(self) -> str:
        return "\n".join(self.tail) or "(nothing)"

    def send(self, sig: signal.Signals) -> None:
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Sends `sig`, waits for the exit; past STOP_TIMEOUT kills the child's whole group."""
        if self.proc is None:
            return 0
        self.send(sig)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STOP_TIMEOUT):
                await self.exited()
        # Past the timeout, or ended leaving its own children behind (nginx's workers
        # outlive a killed master, holding its port): its whole group goes.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        await self.proc.wait()
        await self._flush()
        assert self.proc.returncode is not None
        return self.proc.returncode

    async def _flush(self) -> None:
        """Reads what the child printed before it ended."""
        if self._pump is not None and self.proc is not None and self.proc.returncode is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._pump), 5.0)


async def unless_stopped(work: Coroutine[Any, Any, None], stopping: asyncio.Task[Any]) -> bool:
    """Runs `work` to its end (True; its exception raised) unless `stopping` ends first
    (False: `work` is cancelled)."""
    task = asyncio.create_task(work)
    await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False
    task.result()
    return True


class Cluster:
    """Replicas of the server on loopback and one nginx in front of them on `host`."""

    def __init__(
        self,
        replicas: Sequence[ReplicaSpec],
        port: int,
        host: str = "127.0.0.1",
        workers: int = 1,
        nginx: str = "nginx",
        echo: Echo | None = print_line,
        prometheus: PrometheusSpec | None = None,
    ) -> None:
        if not replicas:
            raise ClusterError("a cluster needs at least one replica")
        self.host = host
        self.port = port
        self.echo = echo
        self.nginx_path = nginx
        # Behind nginx: client addresses come from X-Forwarded-For, and a full replica
        # refuses the upgrade with 503 so nginx tries the next one.
        env = {**os.environ, "HOLOTRACK_TRUST_PROXY": "1", "HOLOTRACK_REFUSE_WHEN_FULL": "1"}
        self.replicas = [
            Child(
                f"replica{i + 1}",
                [
                    sys.executable,
                    "-m",
                    "webapp",
                    "--host",
                    REPLICA_HOST,
                    "--port",
                    str(spec.port),
                    "--workers",
                    str(workers),
                    *spec.args,
                ],
                echo,
                env=env,
                ready_line=SERVING,
            )
            for i, spec in enumerate(replicas)
        ]
        self.replica_ports = [spec.port for spec in replicas]
        self.nginx: Child | None = None
        self._prefix: Path | None = None
        self.prometheus_spec = prometheus
        self.prometheus: Child | None = None
        self._prometheus_dir: Path | None = None

    @property
    def listen(self) -> str:
        """Where nginx listens, as nginx and URLs write it (an IPv6 address in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.listen}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.listen}/ws"

    def replica_url(self, index: int) -> str:
        return f"http://{REPLICA_HOST}:{self.replica_ports[index]}"

    @property
    def replica_targets(self) -> list[str]:
        """host:port of each replica, as nginx and Prometheus address them."""
        return [f"{REPLICA_HOST}:{port}" for port in self.replica_ports]

    @property
    def prometheus_url(self) -> str:
        if self.prometheus_spec is None:
            raise ClusterError("this cluster runs without Prometheus")
        return f"http://{PROMETHEUS_HOST}:{self.prometheus_spec.port}"

    @property
    def children(self) -> list[Child]:
        optional = (self.nginx, self.prometheus)
        return [*self.replicas, *(child for child in optional if child is not None)]

    async def __aenter__(self) -> Cluster:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        nginx = find_nginx(self.nginx_path)
        if nginx is None:
            raise ClusterError(
                f"{self.nginx_path!r} is not installed; on Debian: apt-get install nginx-light"
            )
        prometheus: tuple[str, str] | None = None
        if self.prometheus_spec is not None:
            # Both checked before any replica spends a minute loading its models.
            binary = shutil.which(self.prometheus_spec.binary)
            if binary is None:
                raise ClusterError(
                    f"{self.prometheus_spec.binary!r} is not installed; "
                    "on Debian: apt-get install prometheus"
                )
            spec = self.prometheus_spec
            config = render_prometheus(
                self.replica_targets,
                spec.scrape_interval,
                evaluation_interval=spec.evaluation_interval,
            )
            prometheus = (binary, config)
        for replica in self.replicas:
            await replica.start()
        try:
            async with asyncio.timeout(START_TIMEOUT):
                for replica in self.replicas:
                    await replica.wait_ready()
        except TimeoutError:
            slow = next(r for r in self.replicas if not r.ready.is_set())
            raise ClusterError(
                slow.failure(f"did not print {SERVING!r} within {START_TIMEOUT:g} s")
            ) from None
        self._prefix = Path(tempfile.mkdtemp(prefix="holotrack-nginx-"))
        # nginx's workers may run as another user (nobody, when started as root).
        self._prefix.chmod(0o755)
        site = self._prefix / "holotrack.conf"
        site.write_text(render_site(self.listen, self.replica_targets))
        conf = self._prefix / "nginx.conf"
        conf.write_text(render_main(self._prefix, site))
        self.nginx = Child(
            "nginx",
            [nginx, "-e", "stderr", "-p", str(self._prefix), "-c", str(conf), "-g", "daemon off;"],
            self.echo,
        )
        await self.nginx.start()
        await self._wait_nginx()
        if prometheus is not None:
            await self._start_prometheus(*prometheus)

    async def _start_prometheus(self, binary: str, config: str) -> None:
        """Prometheus with its config and TSDB in a temporary directory, on loopback."""
        assert self.prometheus_spec is not None
        self._prometheus_dir = Path(tempfile.mkdtemp(prefix="holotrack-prometheus-"))
        conf = self._prometheus_dir / "prometheus.yml"
        conf.write_text(config)
        self.prometheus = Child(
            "prometheus",
            [
                binary,
                f"--config.file={conf}",
                f"--storage.tsdb.path={self._prometheus_dir / 'data'}",
                f"--web.listen-address={PROMETHEUS_HOST}:{self.prometheus_spec.port}",
            ],
            self.echo,
            ready_line=PROMETHEUS_READY,
        )
        await self.prometheus.start()
        try:
            async with asyncio.timeout(PROMETHEUS_START_TIMEOUT):
                await self.prometheus.wait_ready()
        except TimeoutError:
            raise ClusterError(
                self.prometheus.failure(
                    f"did not print {PROMETHEUS_READY!r} within {PROMETHEUS_START_TIMEOUT:g} s"
                )
            ) from None

    async def _wait_nginx(self) -> None:
        """nginx prints nothing once it listens: ask it for a replica's /healthz instead.

        A bounded poll, every 50 ms for at most NGINX_START_TIMEOUT, that ends early if
        nginx exits (a bad config or a port in use).
        """
        assert self.nginx is not None
        assert self.nginx.proc is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + NGINX_START_TIMEOUT
        timeout = aiohttp.ClientTimeout(total=2.0)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while loop.time() < deadline:
                if self.nginx.proc.returncode is not None:
                    await self.nginx.stop()  # reads its last lines
                    raise ClusterError(
                        self.nginx.failure(f"exited with status {self.nginx.proc.returncode}")
                    )
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(self.url + "/healthz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.05)
        raise ClusterError(
            self.nginx.failure(f"did not answer on {self.url} within {NGINX_START_TIMEOUT:g} s")
        )

    async def stop_replica(self, index: int) -> int:
        """SIGTERM to one replica, as an orchestrator would send; returns its exit status."""
        return await self.replicas[index].stop(signal.SIGTERM)

    async def supervise(self, stop: asyncio.Event) -> int:
        """Until `stop` is set (0), starts again a replica that exits on its own, as an
        orchestrator would: its sessions have ended, and nginx sends new ones to the others
        meanwhile. 1 when nginx or Prometheus exits; ClusterError when a replica started
        again exits before it serves (a crash at start would otherwise loop)."""
        stopping = asyncio.create_task(stop.wait())
        try:
            while True:
                exited = asyncio.create_task(self.wait_any_exit())
                await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if stop.is_set():
                    exited.cancel()
                    return 0
                child = exited.result()
                if child not in self.replicas:
                    print(f"{child.name} stopped on its own; stopping the cluster", file=sys.stderr)
                    return 1
                if not await unless_stopped(self._restart(child), stopping):
                    return 0
        finally:
            stopping.cancel()

    async def _restart(self, replica: Child) -> None:
        await replica._flush()
        assert replica.proc is not None
        print(
            f"{replica.name} exited with status {replica.proc.returncode}; starting it again",
            file=sys.stderr,
            flush=True,
        )
        await replica.start()
        try:
            async with asyncio.timeout(START_TIMEOUT):
                await replica.wait_ready()
        except TimeoutError:
            raise ClusterError(
                replica.failure(f"did not print {SERVING!r} within {START_TIMEOUT:g} s")
            ) from None

    async def wait_any_exit(self) -> Child:
        """Returns the first child that ends on its own."""
        waits = {
            asyncio.create_task(child.exited()): child
            for child in self.children
            if child.proc is not None
        }
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
        return waits[done.pop()]

    async def stop(self) -> None:
        """Replicas first, so their sessions close with 1001 through nginx; then nginx, then
        Prometheus, which so records the replicas going down."""
        await asyncio.gather(*(r.stop() for r in self.replicas))
        if self.nginx is not None:
            await self.nginx.stop(signal.SIGTERM)
        if self.prometheus is not None:
            await self.prometheus.stop(signal.SIGTERM)
        for directory in (self._prefix, self._prometheus_dir):
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)
        self._prefix = self._prometheus_dir = None


# -- the command line ------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    env = os.environ

    def default(name: str, value: str) -> str:
        # Left a string: argparse converts it with the flag's type once the command line is
        # read, so a bad twin is a usage error naming the flag, and --help still answers.
        return env.get(ENV_PREFIX + name.upper(), value)

    parser = argparse.ArgumentParser(
        prog="python -m deploy.cluster",
        description="Replicas of the Holotrack server behind nginx on this machine, until "
        "Ctrl-C. Flags after -- go to every replica. Each flag has an environment twin, "
        "shown in brackets.",
    )
    parser.add_argument(
        "--host",
        default=default("host", "127.0.0.1"),
        help=f"address nginx listens on; the replicas listen on {REPLICA_HOST} only "
        f"[{ENV_PREFIX}HOST] (default: %(default)s)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=default("port", "8000"),
        help=f"port nginx listens on [{ENV_PREFIX}PORT] (default: %(default)s)",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=default("replicas", "2"),
        help=f"server processes [{ENV_PREFIX}REPLICAS] (default: %(default)s)",
    )
    parser.add_argument(
        "--base-port",
        type=int,
        default=default("base_port", "8101"),
        help=f"first replica's port; the next ones follow [{ENV_PREFIX}BASE_PORT] "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=default("workers", "1"),
        help=f"inference workers per replica [{ENV_PREFIX}WORKERS] (default: %(default)s)",
    )
    parser.add_argument(
        "--nginx",
        default=default("nginx", "nginx"),
        help=f"the nginx binary [{ENV_PREFIX}NGINX] (default: %(default)s)",
    )
    # `--prometheus=no` too, as the server's switches: flags win over the environment.
    parser.add_argument(
        "--prometheus",
        nargs="?",
        const=True,
        type=bool_flag,
        metavar="yes|no",
        default=default("prometheus", "no"),
        help=f"also run Prometheus on {PROMETHEUS_HOST}, scraping every replica with the job of "
        f"deploy/prometheus/prometheus.yml [{ENV_PREFIX}PROMETHEUS=1]",
    )
    parser.add_argument(
        "--prometheus-port",
        type=int,
        default=default("prometheus_port", "9090"),
        help=f"port Prometheus listens on [{ENV_PREFIX}PROMETHEUS_PORT] (default: %(default)s)",
    )
    parser.add_argument(
        "--prometheus-binary",
        default=default("prometheus_binary", "prometheus"),
        help=f"the prometheus binary [{ENV_PREFIX}PROMETHEUS_BINARY] (default: %(default)s)",
    )
    parser.add_argument("server_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


async def serve(args: argparse.Namespace) -> int:
    server_args = tuple(a for i, a in enumerate(args.server_args) if i or a != "--")
    specs = [ReplicaSpec(args.base_port + i, server_args) for i in range(args.replicas)]
    prometheus = (
        PrometheusSpec(args.prometheus_port, args.prometheus_binary) if args.prometheus else None
    )
    cluster = Cluster(specs, args.port, args.host, args.workers, args.nginx, prometheus=prometheus)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    stopping = asyncio.create_task(stop.wait())
    status = 0
    try:
        if not await unless_stopped(cluster.start(), stopping):
            return 130
        backends = ", ".join(cluster.replica_url(i) for i in range(len(specs)))
        print(
            f"holotrack cluster: {cluster.url}/ (WebSocket {cluster.ws_url}) -> {backends}; "
            "Ctrl-C stops it",
            flush=True,
        )
        if prometheus is not None:
            url = cluster.prometheus_url
            print(f"prometheus: {url}/ (scrape targets: {url}/targets)", flush=True)
        status = await cluster.supervise(stop)
    except ClusterError as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        status = 1
    finally:
        stopping.cancel()
        await cluster.stop()
    return status


def problems(args: argparse.Namespace) -> list[str]:
    """What the flags ask that cannot run, each naming its flag. Each was met only once the
    replicas had loaded their models, and in another program's words, status 1: --port
    70000 as nginx's "invalid port", --base-port 70000 as a replica's whole usage text about
    its own --port, a --port that is a replica's as a bind nginx retried for seconds, --host
    "a b" as nginx's "host not found in "a""."""
    found = []
    if args.replicas < 1 or args.workers < 1:
        found.append("--replicas and --workers must be at least 1")
    if not args.host or not listenable(args.host):
        found.append(
            f"--host {args.host!r} is not an address or host name: give it alone, as "
            "127.0.0.1, 0.0.0.0 or :: (the port is --port)"
        )
    # The replicas take --base-port and the --replicas - 1 ports after it.
    spans = {
        "--port": (args.port, args.port),
        "--base-port": (args.base_port, args.base_port + max(args.replicas, 1) - 1),
    }
    if args.prometheus:
        spans["--prometheus-port"] = (args.prometheus_port, args.prometheus_port)
    for flag, (first, last) in spans.items():
        if first < 1 or last > 65535:
            also = f", and so must the {args.replicas - 1} after it" if last > first else ""
            found.append(f"{flag} must be 1 to 65535{also}")
    if found:
        return found
    replicas = spans.pop("--base-port")
    for flag, (port, _) in spans.items():
        if replicas[0] <= port <= replicas[1]:
            found.append(
                f"{flag} {port} is one of the replicas' ports, {replicas[0]} to {replicas[1]} "
                "(--base-port and the --replicas - 1 after it): give it another"
            )
    if args.prometheus and args.port == args.prometheus_port:
        found.append(f"--port and --prometheus-port are both {args.port}: give each its own")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    found = problems(args)
    if found:
        parser.error("; ".join(found))
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
