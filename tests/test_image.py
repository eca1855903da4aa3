"""The server image, built and run for real (issue 10).

The module builds the Dockerfile exactly as `make image` does (deploy/image/build.sh: Docker
where an engine runs, else buildah with a base image made here from Debian's packages),
then starts the image's own command with buildah in a network namespace that holds only
loopback: the server cannot download anything, so if it answers /predict and live sessions
on every graph, nothing it needs is fetched at start. The test reaches the server by
joining that namespace from a thread of its own. The avatar page (/avatar) starts from the
image too: its npm modules, built in the Dockerfile's vendor stage, and its default avatar.

Needs root (buildah's chroot isolation, namespaces) and buildah plus debootstrap, which
`make test` installs (deploy/system-deps.sh). Measured on 2 cores: from nothing (no base
image, no cached layers) 3 min 15 s before the Dockerfile's npm stage (about 1.5 min more
now), up to about 9 min when the machine is busy; with the layers cached, 25 s to 40 s. So
`make test` runs it; `make image-test` runs only it.
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import json
import os
import socket
import struct
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from packaging.requirements import Requirement

from tests.live import LiveClient, video_frames
from tests.media import ASL_VIDEO, PERSON_JPEG
from webapp.avatar_page import DEFAULT_AVATAR_URL, VENDOR_FILES, VENDOR_PREFIX, AvatarPaths

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "deploy" / "image" / "build.sh"
REQUIREMENTS = ROOT / "deploy" / "image" / "requirements.txt"
IMAGE = "holotrack:0.1.0"
UID = "10001"
# The image's own port (HOLOTRACK_PORT): the server has a network namespace to itself.
URL = "http://127.0.0.1:8080"
START_DEADLINE_S = 180
# From nothing: the base image, then every layer; cached, the build takes seconds.
BUILD_TIMEOUT_S = 1500

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
LIBC = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")

pytestmark = pytest.mark.timeout(BUILD_TIMEOUT_S + START_DEADLINE_S + 120)


def loopback_only() -> None:
    """In a child before exec: a network namespace of its own, with only `lo`, up."""
    if LIBC.unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH22x", b"lo", 0))
        flags = struct.unpack_from("16sH", ifreq)[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))


def join_netns(pid: int) -> None:
    """The calling thread (only it) moves to the network namespace of process `pid`."""
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        if LIBC.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns(/proc/{pid}/ns/net)")
    finally:
        os.close(fd)


def in_netns(pid: int, work: Callable[[], T]) -> T:
    """Runs `work` on a fresh thread inside `pid`'s network namespace; the thread then ends."""

    def run() -> T:
        join_netns(pid)
        return work()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int(proc_status(int(entry.name))["PPid"])
            except (OSError, KeyError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")[:-1]
    except OSError:
        return []


def get_json(path: str) -> tuple[int, Any]:
    with urllib.request.urlopen(URL + path, timeout=10) as response:
        return response.status, json.loads(response.read())


@dataclass
class Got:
    status: int
    content_type: str
    body: bytes


def http_get(path: str) -> Got:
    """GET on the server, whatever the status (urllib raises on 4xx and 5xx)."""
    try:
        with urllib.request.urlopen(URL + path, timeout=30) as response:
            return Got(response.status, response.headers.get_content_type(), response.read())
    except urllib.error.HTTPError as error:
        return Got(error.code, error.headers.get_content_type(), error.read())


@dataclass
class Built:
    config: dict[str, Any]
    seconds: float


@dataclass
class Server:
    container: str
    runner: subprocess.Popen[bytes]
    pid: int
    log: Path
    config: dict[str, Any]

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    assert os.geteuid() == 0, "buildah's chroot isolation needs root (CI runs as root)"
    log = tmp_path_factory.mktemp("image") / "build.log"
    started = time.monotonic()
    with log.open("wb") as out:
        done = subprocess.run(
            ["bash", str(BUILD)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    seconds = time.monotonic() - started
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    assert done.returncode == 0, f"make image failed:\n{tail}"
    print(f"make image: {seconds:.0f} s")
    inspected = subprocess.run(
        ["buildah", "inspect", "--type", "image", IMAGE],
        capture_output=True,
        check=True,
    )
    config: dict[str, Any] = json.loads(inspected.stdout)["Docker"]["config"]
    return Built(config, seconds)


@pytest.fixture(scope="module")
def server(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The image's own command, as the image's user, in a namespace with only loopback."""
    container = subprocess.run(
        ["buildah", "from", "--quiet", "--pull-never", IMAGE],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    log = tmp_path_factory.mktemp("server") / "server.log"
    runner: subprocess.Popen[bytes] | None = None
    try:
        with log.open("wb") as out:
            runner = subprocess.Popen(
                ["buildah", "run", "--isolation=chroot", "--env", "HOLOTRACK_WORKERS=1",
                 container, "--", *built.config["Cmd"]],
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=loopback_only,
            )  # fmt: skip
        pid = wait_for_server(runner, log)
        yield Server(container, runner, pid, log, built.config)
    finally:
        if runner is not None:
            stop(runner)
        subprocess.run(["buildah", "rm", container], capture_output=True, check=False)


def wait_for_server(runner: subprocess.Popen[bytes], log: Path) -> int:
    """The server's pid once /healthz answers; fails at the deadline or if it exits."""
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if runner.poll() is not None:
            raise AssertionError(f"the server exited ({runner.returncode}):\n{log.read_text()}")
        pids = [p for p in descendants(runner.pid) if cmdline(p)[1:3] == ["-m", "webapp"]]
        if pids:
            try:
                status, body = in_netns(pids[0], lambda: get_json("/healthz"))
            except OSError:
                pass
            else:
                assert status == 200, body
                return pids[0]
        time.sleep(0.5)
    raise AssertionError(f"/healthz did not answer in {START_DEADLINE_S} s:\n{log.read_text()}")


def stop(runner: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server (buildah run does not forward it), then wait."""
    for pid in descendants(runner.pid):
        if cmdline(pid)[1:3] == ["-m", "webapp"]:
            os.kill(pid, 15)
    try:
        runner.wait(timeout=30)
    except subprocess.TimeoutExpired:
        for pid in descendants(runner.pid):
            os.kill(pid, 9)
        runner.kill()
        runner.wait()


def test_the_pins_satisfy_pyproject() -> None:
    """The build checks this too; here it fails in a second instead of after the install."""
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[Requirement(name).name.lower().replace("_", "-")] = version
    with (ROOT / "pyproject.toml").open("rb") as f:
        deps = [Requirement(d) for d in tomllib.load(f)["project"]["dependencies"]]
    for dep in deps:
        name = dep.name.lower().replace("_", "-")
        assert name in pins, f"{dep} is not pinned: run .venv/bin/python -m deploy.image.pin"
        assert dep.specifier.contains(pins[name], prereleases=True), (dep, pins[name])
    assert "pip" in pins
    assert not {"jax", "jaxlib", "scipy", "opencv-contrib-python"} & pins.keys()


def test_the_image_runs_as_10001_with_a_docker_healthcheck(built: Built) -> None:
    assert built.config["User"] == f"{UID}:{UID}"
    assert built.config["Healthcheck"]["Test"] == ["CMD", "python", "-m", "webapp.healthcheck"]
    # Settings come from the environment alone, so an operator's HOLOTRACK_HOST holds.
    assert built.config["Cmd"] == ["python", "-m", "webapp"]
    assert "HOLOTRACK_HOST=0.0.0.0" in built.config["Env"]


def test_the_server_has_no_network_but_loopback(server: Server) -> None:
    devices = Path(f"/proc/{server.pid}/net/dev").read_text().splitlines()[2:]
    assert [line.split(":")[0].strip() for line in devices] == ["lo"]


def test_server_and_workers_run_as_the_unprivileged_user(server: Server) -> None:
    pids = [server.pid, *descendants(server.pid)]
    assert len(pids) >= 2, "no inference worker"
    for pid in pids:
        status = proc_status(pid)
        assert status["Uid"].split() == [UID] * 4, (pid, cmdline(pid), status["Uid"])
        assert status["Gid"].split() == [UID] * 4, (pid, cmdline(pid), status["Gid"])


def test_the_images_healthcheck_passes(server: Server) -> None:
    check = server.config["Healthcheck"]["Test"]
    assert check[0] == "CMD"
    done = subprocess.run(
        ["buildah", "run", "--isolation=chroot", server.container, "--", *check[1:]],
        capture_output=True,
        timeout=60,
        preexec_fn=lambda: join_netns(server.pid),
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")


def test_predict_finds_33_pose_points_with_no_network(server: Server) -> None:
    def post() -> tuple[int, Any]:
        request = urllib.request.Request(
            URL + "/predict",
            data=PERSON_JPEG.read_bytes(),
            headers={"Content-Type": "image/jpeg"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())

    status, body = in_netns(server.pid, post)
    assert status == 200, body
    assert len(body["landmarks"]["pose"]) == 33, server.log_tail()


@pytest.mark.parametrize("track", ["holistic", "pose"])
def test_a_live_session_gets_results_with_no_network(server: Server, track: str) -> None:
    frames = video_frames(ASL_VIDEO)[:5]

    async def session() -> list[Any]:
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(URL.replace("http", "ws") + "/ws") as ws,
        ):
            live = LiveClient(ws)
            # Holistic asks for the blendshapes too: their runtime and model must be in
            # the image, working offline.
            await live.hello(track, **({"blendshapes": True} if track == "holistic" else {}))
            return await live.lockstep(frames)

    results = in_netns(server.pid, lambda: asyncio.run(session()))
    assert len(results) == len(frames)
    for result in results:
        landmarks = result["landmarks"]
        assert len(landmarks["pose"]) == 33, server.log_tail()
        assert (landmarks["face"] is not None) == (track == "holistic")
        if track == "holistic":
            assert len(result["rig"]["blendshapes"]) == 51, server.log_tail()


def test_the_server_logged_no_error(server: Server) -> None:
    for line in server.log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            assert record["levelname"] not in ("ERROR", "CRITICAL"), line


def test_the_avatar_page_starts_from_the_image(server: Server) -> None:
    page = in_netns(server.pid, lambda: http_get("/avatar"))
    assert page.status != 404, "GET /avatar is not routed: create_app adds no avatar routes"
    # 503 is the page that lists what is missing from the image.
    assert page.status == 200, page.body.decode(errors="replace")
    assert page.content_type == "text/html"
    assert b'<script type="importmap">' in page.body


def test_the_avatar_pages_modules_are_served_from_the_image(server: Server) -> None:
    def get_all() -> dict[str, Got]:
        return {name: http_get(VENDOR_PREFIX + name) for name in VENDOR_FILES}

    got = in_netns(server.pid, get_all)
    for name, module in got.items():
        assert module.status == 200, (name, module.status, module.body[:200])
        assert module.content_type == "text/javascript", (name, module.content_type)
        assert module.body, name
    # three.module.js imports the rest of three.js from its neighbour, served beside it.
    assert b"from './three.core.js'" in got["three/build/three.module.js"].body


def test_the_default_avatar_is_served_from_the_image(server: Server) -> None:
    got = in_netns(server.pid, lambda: http_get(DEFAULT_AVATAR_URL))
    assert got.status == 200, got.body[:200]
    assert got.content_type == "model/gltf-binary"
    assert got.body == AvatarPaths().default_avatar.read_bytes()


def test_the_image_holds_only_the_scripts_the_avatar_page_serves(server: Server) -> None:
    """The Dockerfile names the files it keeps from node_modules; they must be VENDOR_FILES,
    plus each package's licence and package.json, and nothing more."""
    listing = subprocess.run(
        ["buildah", "run", "--isolation=chroot", server.container, "--", "python", "-c",
         "import pathlib; root = pathlib.Path('/app/node_modules'); "
         "print(*(p.relative_to(root) for p in root.rglob('*') if p.is_file()), sep='\\n')"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )  # fmt: skip
    files = set(listing.stdout.split())
    packages = {
        "/".join(name.split("/")[: 2 if name[0] == "@" else 1]) for name in VENDOR_FILES.values()
    }
    # qrcode-generator has no LICENSE file: its licence heads its one file.
    extras = {
        f"{package}/{name}"
        for package in packages
        for name in ("LICENSE", "package.json")
        if name != "LICENSE" or (ROOT / "node_modules" / package / name).is_file()
    }
    assert files == set(VENDOR_FILES.values()) | extras
