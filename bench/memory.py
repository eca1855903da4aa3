"""Memory of one replica under the Kubernetes Deployment's settings: a script that prints figures.

    .venv/bin/python -m bench.memory                 # deploy/k8s/deployment.yaml, ~4 min
    .venv/bin/python -m bench.memory --hold 10 --churn 16 --video-seconds 20   # quick look

Starts `python -m webapp` with the `HOLOTRACK_*` environment of the Deployment's container
(workers, max sessions, and the rest as they are there; admission by rate off, so that
the maximum number of sessions is reached on any machine) and loads it with what costs the
most memory a client may ask for, in phases:

1. **idle**: the server once /healthz answers (every worker's graphs warm).
2. **full**: HOLOTRACK_MAX_SESSIONS live sessions, holistic with `"rig": true,
   "blendshapes": true`, each sending frames of a shared video (`media/`) one after the
   other's result, until each has had `--results`; then held `--hold` s.
3. **churn**: those close; as many runners then open, get two results from and close
   sessions `--churn` times in all, holistic (blendshapes) and pose alternating, so every
   worker fills its spare graphs (graphs.py: two per track per worker).
4. **predict**: `--predict` clients posting stills to POST /predict in a loop for
   `--predict-seconds`, one in eight of them 23.5 MP (under the default 25 MP bound),
   nothing else. Each request's bytes differ (a JPEG comment with a counter), so the
   upload cache never answers.
5. **mixed**: HOLOTRACK_MAX_SESSIONS - `--videos` holistic sessions again, then beside them
   `--videos` POST /api/video?blendshapes=1 (a video holds a session's place) and the
   /predict clients again, until the videos end (or `--video-seconds`).
6. **after**: everything closed, `--settle` s.

A thread reads /proc for the server and every process under it every `--interval` s:
VmRSS, and PSS (smaps_rollup, which shares the model files' pages out between processes)
every `--pss-every`th sample; at the end each process's VmHWM (its true peak resident
memory). It prints, per phase, the peak and mean of the summed RSS and PSS and of each
process, the graphs the workers held (/metrics), and the limit and request of the manifest
against the peak. Writes bench/out/memory.json (`--out`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import statistics
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import free_port, loadavg, server

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
MANIFEST = ROOT / "deploy" / "k8s" / "deployment.yaml"
MEDIA = ROOT / "media"
VIDEOS = ("asl_signer_intel_640x480_30fps.mp4", "gesture_mpsamples_640x360_25fps.mp4")
UPLOAD_VIDEO = "gesture_mpsamples_640x360_25fps.mp4"
STILLS = (
    "COCO_val2014_000000000241.jpg",
    "COCO_val2014_000000000536.jpg",
    "business_person_mpsamples.png",
    "woman_sitting_mpsamples_pose_test_image.jpg",
)
# 5600 x 4200 = 23.5 MP, under --max-pixels' 25 MP.
LARGE_SIZE = (5600, 4200)
LARGE_EVERY = 8
MB = 2**20
UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "ki": 2**10, "mi": 2**20, "gi": 2**30}


def quantity_bytes(value: str) -> int:
    """A Kubernetes memory quantity ("4Gi", "3500Mi", "4G") in bytes."""
    found = re.fullmatch(r"(\d+)([kKmMgG]i?)?", str(value))
    if found is None:
        raise ValueError(f"not a memory quantity: {value!r}")
    return int(found.group(1)) * UNITS[(found.group(2) or "").lower()]


def deployment(path: Path) -> tuple[dict[str, str], dict[str, int]]:
    """The container's environment and its memory request and limit, in bytes."""
    import yaml

    (doc,) = [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] == "Deployment"]
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e}
    resources = container.get("resources", {})
    memory = {
        kind: quantity_bytes(resources[kind]["memory"])
        for kind in ("requests", "limits")
        if "memory" in resources.get(kind, {})
    }
    return env, memory


# -- /proc ---------------------------------------------------------------------------------


def descendants(root: int) -> list[int]:
    """`root` and every process under it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def status_kb(pid: int, *fields: str) -> dict[str, int]:
    values = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in fields:
                values[name] = int(rest.split()[0]) * 1024
    return values


def pss_bytes(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return None


def role(pid: int, root: int) -> str:
    if pid == root:
        return "server"
    with contextlib.suppress(OSError):
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        if "webapp.engine" in command:
            return f"worker {pid}"
        if "resource_tracker" in command:
            return f"resource_tracker {pid}"
        return f"{command.split()[-1] if command.split() else 'process'} {pid}"
    return f"process {pid}"


@dataclass
class Sample:
    t: float
    phase: str
    rss: dict[int, int]
    pss: dict[int, int] | None
    graphs: float | None


@dataclass
class Sampler:
    """Reads /proc every `interval` s on a thread of its own while the load runs."""

    root: int
    port: int
    interval: float
    pss_every: int
    phase: str = "idle"
    samples: list[Sample] = field(default_factory=list)
    roles: dict[int, str] = field(default_factory=dict)
    hwm: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        started = time.monotonic()
        for tick in itertools.count():
            if self._stop.is_set():
                return
            pids = descendants(self.root)
            rss: dict[int, int] = {}
            for pid in pids:
                values = status_kb(pid, "VmRSS", "VmHWM")
                if "VmRSS" in values:
                    rss[pid] = values["VmRSS"]
                    self.hwm[pid] = max(self.hwm.get(pid, 0), values["VmHWM"])
                    if pid not in self.roles:
                        self.roles[pid] = role(pid, self.root)
            pss = None
            if tick % self.pss_every == 0:
                pss = {pid: p for pid in rss if (p := pss_bytes(pid)) is not None}
            graphs = self.graphs() if tick % self.pss_every == 0 else None
            self.samples.append(Sample(time.monotonic() - started, self.phase, rss, pss, graphs))
            self._stop.wait(self.interval)

    def graphs(self) -> float | None:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with (
            contextlib.suppress(OSError, ValueError),
            urllib.request.urlopen(url, timeout=2) as reply,
        ):
            for line in reply.read().decode().splitlines():
                if line.startswith("holotrack_graphs "):
                    return float(line.split()[1])
        return None

    @contextlib.contextmanager
    def running(self) -> Iterator[Sampler]:
        thread = threading.Thread(target=self.run, name="sampler", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()


def summary(sampler: Sampler) -> dict[str, Any]:
    """Per phase: peak and mean of the summed RSS and PSS, and of each process, in MB."""
    phases: dict[str, Any] = {}
    for phase in dict.fromkeys(s.phase for s in sampler.samples):
        samples = [s for s in sampler.samples if s.phase == phase]
        totals = [sum(s.rss.values()) for s in samples]
        psses = [sum(s.pss.values()) for s in samples if s.pss]
        graphs = [s.graphs for s in samples if s.graphs is not None]
        per_process: dict[str, dict[str, float]] = {}
        for pid, name in sampler.roles.items():
            values = [s.rss[pid] for s in samples if pid in s.rss]
            if values:
                per_process[name] = {
                    "peak": round(max(values) / MB, 1),
                    "mean": round(statistics.fmean(values) / MB, 1),
                }
        phases[phase] = {
            "seconds": round(samples[-1].t - samples[0].t, 1),
            "samples": len(samples),
            "rss_peak_mb": round(max(totals) / MB, 1),
            "rss_mean_mb": round(statistics.fmean(totals) / MB, 1),
            "rss_last_mb": round(totals[-1] / MB, 1),
            "pss_peak_mb": round(max(psses) / MB, 1) if psses else None,
            "pss_mean_mb": round(statistics.fmean(psses) / MB, 1) if psses else None,
            "graphs_max": max(graphs) if graphs else None,
            "processes": per_process,
        }
    return phases


# -- the load -------------------------------------------------------------------------------


def still_uploads(variants: int) -> list[bytes]:
    """Each still at `variants` JPEG qualities, and one in every LARGE_EVERY the third still
    at 23.5 MP."""
    import cv2

    uploads = []
    for name in STILLS:
        image = cv2.imread(str(MEDIA / name))
        for quality in range(95 - variants, 95):
            uploads.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1])
    large = cv2.resize(
        cv2.imread(str(MEDIA / STILLS[2])), LARGE_SIZE, interpolation=cv2.INTER_CUBIC
    )
    for n, quality in enumerate(range(90, 90 + len(uploads) // LARGE_EVERY)):
        encoded = cv2.imencode(".jpg", large, [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
        uploads.insert(n * LARGE_EVERY, encoded)
    return [u.tobytes() for u in uploads]


class Refused(Exception):
    pass


@dataclass
class Live:
    """One live session, frames sent each after the previous one's result."""

    http: Any
    url: str
    track: str
    frames: list[bytes]
    fps: float
    results: int = 0
    refusals: int = 0
    ws: Any = None

    async def open(self, attempts: int = 30) -> None:
        import aiohttp

        hello: dict[str, Any] = {"type": "hello", "version": 1, "track": self.track}
        hello |= {"fps": self.fps, "rig": True}
        if self.track == "holistic":
            hello["blendshapes"] = True
        reason = ""
        for _ in range(attempts):
            try:
                self.ws = await self.http.ws_connect(self.url)
            except aiohttp.WSServerHandshakeError as exc:  # 503: full (--refuse-when-full)
                reason = f"HTTP {exc.status}"
            else:
                await self.ws.send_json(hello)
                message = await self.ws.receive()
                if (
                    message.type is aiohttp.WSMsgType.TEXT
                    and json.loads(message.data)["type"] == "ready"
                ):
                    return
                reason = f"{message.data} {message.extra}"
                await self.ws.close()
            self.refusals += 1
            await asyncio.sleep(0.3)  # full, or a place not yet freed: try again
        raise Refused(f"no session after {attempts} tries: {reason}")

    async def run(self, until: int | asyncio.Event) -> None:
        """Frames until `until` results (an int) or until the event is set."""
        import aiohttp

        seq = 0
        while not (self.results >= until if isinstance(until, int) else until.is_set()):
            await self.ws.send_bytes(frame_header(seq) + self.frames[seq % len(self.frames)])
            while True:
                message = await self.ws.receive()
                if message.type is not aiohttp.WSMsgType.TEXT:
                    raise Refused(f"session closed: {message.type} {message.data} {message.extra}")
                kind = json.loads(message.data)["type"]
                if kind in ("result", "error"):
                    self.results += kind == "result"
                    break
            seq += 1

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


def frame_header(seq: int) -> bytes:
    from webapp.protocol import FRAME_HEADER

    return FRAME_HEADER.pack(seq, seq * 1000 / 30)


async def churn(
    http: Any, url: str, frames: list[bytes], args: argparse.Namespace
) -> tuple[int, int]:
    """Sessions opened, run and closed; and how often a hello was refused on the way."""
    cycles = iter(range(args.churn))
    done = refused = 0

    async def runner() -> None:
        nonlocal done, refused
        for n in cycles:
            live = Live(http, url, ("holistic", "pose")[n % 2], frames, args.fps)
            try:
                await live.open()
            finally:
                refused += live.refusals
            try:
                await live.run(2)
            finally:
                await live.close()
            done += 1

    await asyncio.gather(*(runner() for _ in range(args.sessions)))
    return done, refused


async def post_video(http: Any, base: str, body: bytes, seconds: float) -> dict[str, Any]:
    started = time.monotonic()
    lines, status = 0, 0
    async with http.post(
        f"{base}/api/video?blendshapes=1",
        data=body,
        headers={"Content-Type": "video/mp4"},
    ) as response:
        status = response.status
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                async for _ in response.content:
                    lines += 1
    return {"status": status, "lines": lines, "seconds": round(time.monotonic() - started, 1)}


def unique(jpeg: bytes, n: int) -> bytes:
    """`jpeg` with a comment segment after its start marker: new bytes, the same pixels,
    so the upload cache never answers for the model."""
    comment = f"bench.memory {n}".encode()
    return jpeg[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + jpeg[2:]


async def predict_loop(
    http: Any, base: str, uploads: list[bytes], start: int, stop: asyncio.Event
) -> list[int]:
    import aiohttp

    statuses = []
    for n in itertools.count(start):
        if stop.is_set():
            break
        form = aiohttp.FormData()
        form.add_field(
            "file",
            unique(uploads[n % len(uploads)], n),
            filename="still.jpg",
            content_type="image/jpeg",
        )
        async with http.post(f"{base}/predict", data=form) as response:
            await response.read()
            statuses.append(response.status)
    return statuses


async def load(
    port: int, sampler: Sampler, sessions: int, args: argparse.Namespace
) -> dict[str, Any]:
    import aiohttp

    base = f"http://127.0.0.1:{port}"
    url = f"ws://127.0.0.1:{port}/ws"
    # The tests' frames are the page's: 480 px wide, JPEG quality 70.
    from tests.live import video_frames

    clips = [list(video_frames(MEDIA / name, args.frames)) for name in VIDEOS]
    uploads = await asyncio.to_thread(still_uploads, 4)
    video = (MEDIA / UPLOAD_VIDEO).read_bytes()
    record: dict[str, Any] = {}
    timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        await asyncio.sleep(args.settle)

        sampler.phase = "full"
        started = time.monotonic()
        lives = [Live(http, url, "holistic", clips[n % 2], args.fps) for n in range(sessions)]
        await asyncio.gather(*(live.open() for live in lives))
        await asyncio.gather(*(live.run(args.results) for live in lives))
        record["full_open_seconds"] = round(time.monotonic() - started, 1)
        record["full_refused"] = sum(live.refusals for live in lives)
        stop = asyncio.Event()
        runs = [asyncio.create_task(live.run(stop)) for live in lives]
        await asyncio.sleep(args.hold)
        stop.set()
        await asyncio.gather(*runs)
        record["full_results"] = [live.results for live in lives]
        await asyncio.gather(*(live.close() for live in lives))

        sampler.phase = "churn"
        started = time.monotonic()
        record["churn_cycles"], record["churn_refused"] = await churn(http, url, clips[0], args)
        record["churn_seconds"] = round(time.monotonic() - started, 1)

        sampler.phase = "predict"
        stop = asyncio.Event()
        predicts = [
            asyncio.create_task(predict_loop(http, base, uploads, n * 3, stop))
            for n in range(args.predict)
        ]
        await asyncio.sleep(args.predict_seconds)
        stop.set()
        statuses = [s for p in await asyncio.gather(*predicts) for s in p]
        record["predict_alone"] = {str(s): statuses.count(s) for s in sorted(set(statuses))}

        sampler.phase = "mixed"
        lives = [
            Live(http, url, "holistic", clips[n % 2], args.fps)
            for n in range(sessions - args.videos)
        ]
        await asyncio.gather(*(live.open() for live in lives))
        await asyncio.gather(*(live.run(args.results) for live in lives))
        stop = asyncio.Event()
        runs = [asyncio.create_task(live.run(stop)) for live in lives]
        predicts = [
            asyncio.create_task(predict_loop(http, base, uploads, n * 3 + 1, stop))
            for n in range(args.predict)
        ]
        videos = await asyncio.gather(
            *(post_video(http, base, video, args.video_seconds) for _ in range(args.videos))
        )
        stop.set()
        await asyncio.gather(*runs)
        statuses = [s for p in await asyncio.gather(*predicts) for s in p]
        record["videos"] = videos
        record["predict_statuses"] = {str(s): statuses.count(s) for s in sorted(set(statuses))}
        record["mixed_results"] = [live.results for live in lives]
        await asyncio.gather(*(live.close() for live in lives))

    sampler.phase = "after"
    await asyncio.sleep(args.settle)
    return record


# -- the report -----------------------------------------------------------------------------


def commit() -> str:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return "?"


def print_report(report: dict[str, Any]) -> None:
    s = report["settings"]
    print(
        f"{s['when']} commit {s['commit']}: {s['workers']} workers, max {s['max_sessions']} "
        f"sessions (from {s['manifest']}); load average {report['load'][0]} -> {report['load'][1]}"
    )
    print(
        "phase    s    RSS peak  RSS mean  RSS last  PSS peak  PSS mean  graphs  "
        "per process (peak / mean MB)"
    )
    for phase, p in report["phases"].items():
        processes = ", ".join(
            f"{name} {v['peak']:.0f}/{v['mean']:.0f}" for name, v in p["processes"].items()
        )
        pss_peak = f"{p['pss_peak_mb']:.0f}" if p["pss_peak_mb"] is not None else "-"
        pss_mean = f"{p['pss_mean_mb']:.0f}" if p["pss_mean_mb"] is not None else "-"
        graphs = f"{p['graphs_max']:.0f}" if p["graphs_max"] is not None else "-"
        print(
            f"{phase:7s} {p['seconds']:4.0f} {p['rss_peak_mb']:8.0f}  {p['rss_mean_mb']:8.0f}  "
            f"{p['rss_last_mb']:8.0f}  "
            f"{pss_peak:>8s}  {pss_mean:>8s}  {graphs:>6s}  {processes}"
        )
    hwm = report["vm_hwm_mb"]
    print(
        "VmHWM (each process's own peak): "
        + ", ".join(f"{name} {mb:.0f}" for name, mb in hwm.items())
        + f"; sum {sum(hwm.values()):.0f} MB"
    )
    peak = max(p["rss_peak_mb"] for p in report["phases"].values())
    pss = max((p["pss_peak_mb"] or 0.0) for p in report["phases"].values())
    for kind, value in report["manifest_memory_mb"].items():
        print(
            f"{kind}: {value:.0f} MB; peak RSS {peak:.0f} MB is {peak / value:.0%} of it, "
            f"peak PSS {pss:.0f} MB {pss / value:.0%}"
        )
    print(f"load: {json.dumps(report['load_record'])}")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--manifest", type=Path, default=MANIFEST, help="the Deployment to copy")
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument(
        "--fps",
        type=float,
        default=2.0,
        help="fps each hello asks (frames are sent after each result whatever it is)",
    )
    parser.add_argument("--frames", type=int, default=60, help="frames cut from each video")
    parser.add_argument("--results", type=int, default=5, help="results each session must have")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds the full phase is held")
    parser.add_argument("--churn", type=int, default=64, help="sessions opened and closed")
    parser.add_argument("--videos", type=int, default=2, help="POST /api/video at once")
    parser.add_argument("--video-seconds", type=float, default=60.0, help="longest a video is read")
    parser.add_argument("--predict", type=int, default=3, help="POST /predict clients")
    parser.add_argument(
        "--predict-seconds", type=float, default=15.0, help="seconds of /predict alone"
    )
    parser.add_argument("--settle", type=float, default=10.0, help="seconds idle before and after")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between /proc reads")
    parser.add_argument("--pss-every", type=int, default=5, help="PSS on every Nth read")
    parser.add_argument("--out", type=Path, default=OUT / "memory.json")
    args = parser.parse_args()

    env, memory = deployment(args.manifest)
    workers = int(env["HOLOTRACK_WORKERS"])
    sessions = int(env["HOLOTRACK_MAX_SESSIONS"])
    port = args.port or free_port()
    args.sessions = sessions
    args.out.parent.mkdir(parents=True, exist_ok=True)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    before = loadavg()
    # Admission by rate would refuse sessions on a machine slower than the pod's cores
    # (this one is shared): off, so that HOLOTRACK_MAX_SESSIONS sessions are always live.
    server_env = {**os.environ, **env, "HOLOTRACK_MIN_SESSION_FPS": "0"}
    log = args.out.with_suffix(".log")
    with server(port, workers, env=server_env, log=log) as proc:
        sampler = Sampler(proc.pid, port, args.interval, args.pss_every)
        with sampler.running():
            record = asyncio.run(load(port, sampler, sessions, args))
        hwm = {sampler.roles[pid]: round(b / MB, 1) for pid, b in sampler.hwm.items()}
    report = {
        "settings": {
            "when": when,
            "commit": commit(),
            "manifest": str(
                args.manifest.relative_to(ROOT)
                if args.manifest.is_relative_to(ROOT)
                else args.manifest
            ),
            "workers": workers,
            "max_sessions": sessions,
            "env": env,
            **{k: v for k, v in vars(args).items() if k not in ("manifest", "out")},
        },
        "load": [before, loadavg()],
        "load_record": record,
        "phases": summary(sampler),
        "vm_hwm_mb": hwm,
        "manifest_memory_mb": {k: round(v / MB, 1) for k, v in memory.items()},
    }
    args.out.write_text(json.dumps(report, indent=2))
    print_report(report)


if __name__ == "__main__":
    main()
