"""Scale-out with real parts: single-worker replicas behind Debian's nginx, the swarm through it.

Each test starts its own cluster (deploy/cluster.py, the launcher of `make cluster`) on
free loopback ports: real server processes running the real model, and nginx with the
repository's config.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import secrets
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench.common import free_port
from bench.fitness_clips import PUSHUPS
from deploy.cluster import Cluster, ReplicaSpec, render_site
from swarm.config import SwarmConfig
from swarm.runner import Runner
from tests.browser import Readies, fake_camera_args, open_page, write_y4m
from tests.live import frame_message, swarm_frames, video_frames
from tests.media import ASL_VIDEO, PERSON_JPEG
from tests.test_fitness_page import wait_for_reps
from webapp.live.pairing import ALPHABET, LENGTH
from webapp.live.watch_tokens import kept_token
from webapp.ws_close import sent_code

# Long enough for a new session to be refused by a stopped replica and retried on the other,
# short enough that a hang fails the test instead of stalling it.
READY_WITHIN = 15.0
OPENED = "holotrack_sessions_opened_total"
LIVE = "holotrack_sessions_live"


def test_only_nginx_listens_where_host_says_the_replicas_stay_on_loopback() -> None:
    """The replicas trust X-Forwarded-For: on any other address, a client could connect
    to one directly and claim to be anyone."""
    cluster = Cluster([ReplicaSpec(8101), ReplicaSpec(8102)], port=8000, host="0.0.0.0")
    for replica in cluster.replicas:
        assert replica.env is not None
        assert replica.env["HOLOTRACK_TRUST_PROXY"] == "1"
        host = replica.argv[replica.argv.index("--host") + 1]
        assert host == "127.0.0.1", replica.argv
    assert cluster.replica_targets == ["127.0.0.1:8101", "127.0.0.1:8102"]
    assert cluster.url == "http://0.0.0.0:8000"


def test_nginx_listens_on_an_ipv6_host_in_brackets() -> None:
    cluster = Cluster([ReplicaSpec(8101)], port=8000, host="::")
    assert (cluster.listen, cluster.url, cluster.ws_url) == (
        "[::]:8000",
        "http://[::]:8000",
        "ws://[::]:8000/ws",
    )
    assert "listen [::]:8000;" in render_site(cluster.listen, cluster.replica_targets)


def cluster_of(*replica_args: tuple[str, ...]) -> Cluster:
    replicas = [ReplicaSpec(free_port(), args) for args in replica_args]
    return Cluster(replicas, port=free_port(), echo=None)


async def metric(http: aiohttp.ClientSession, base_url: str, name: str) -> float:
    """One unlabelled sample from a replica's own /metrics (never through nginx)."""
    async with http.get(base_url + "/metrics") as response:
        assert response.status == 200
        text = await response.text()
    found = re.search("^" + re.escape(name) + r" (\S+)$", text, re.MULTILINE)
    assert found, f"{name} not in the metrics of {base_url}"
    return float(found.group(1))


async def per_replica(http: aiohttp.ClientSession, cluster: Cluster, name: str) -> list[float]:
    return [await metric(http, cluster.replica_url(i), name) for i in range(len(cluster.replicas))]


async def open_session(
    http: aiohttp.ClientSession, cluster: Cluster
) -> tuple[aiohttp.ClientWebSocketResponse, str]:
    """A session through nginx, with the page's Origin: the socket and its first reply."""
    ws = await http.ws_connect(cluster.ws_url, origin=cluster.url, autoping=True)
    await ws.send_json({"type": "hello", "version": 1, "track": "holistic", "fps": 5})
    reply = await ws.receive()
    if reply.type is aiohttp.WSMsgType.TEXT:
        return ws, str(json.loads(reply.data)["type"])
    return ws, f"{reply.type.name} {reply.data} {reply.extra}"


async def until_no_session_is_live(http: aiohttp.ClientSession, cluster: Cluster) -> None:
    """A replica ends a session just after the client's close returns: poll its gauge,
    every 50 ms for at most 10 s, until nginx and the replicas hold no session."""
    for _ in range(200):
        live = await per_replica(http, cluster, LIVE)
        if not any(live):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"sessions still live 10 s after the swarm closed them: {live}")


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """Reads, as a page does, until the server closes; the code in its close frame."""
    while True:
        msg = await ws.receive()
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            return sent_code(ws, msg)


async def result_for_one_frame(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    await ws.send_bytes(frame_message(0, 0.0, video_frames(ASL_VIDEO)[0]))
    while True:
        msg = await ws.receive()
        assert msg.type is aiohttp.WSMsgType.TEXT, f"session closed: {msg.type} {msg.data}"
        message: dict[str, Any] = json.loads(msg.data)
        if message["type"] == "result":
            return message


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_swarm_spreads_over_replicas_and_moves_when_one_stops(
    http: aiohttp.ClientSession,
) -> None:
    async with cluster_of((), ()) as cluster:
        # A short swarm through nginx: four sessions at a low rate, light for two cores.
        config = dataclasses.replace(
            SwarmConfig(), url=cluster.ws_url, sessions="4", fps=4.0, warmup=0.5, hold=2.5
        )
        result = await Runner(config, swarm_frames()).run()
        (step,) = result.steps
        assert (step.errors, step.refusals) == (0, 0), [s.error for s in result.sessions]
        assert step.results > 0
        opened = await per_replica(http, cluster, OPENED)
        assert sum(opened) == 4
        assert min(opened) >= 1, f"sessions per replica: {opened}"

        # One session held on each replica: least_conn sends the second to the idle one.
        await until_no_session_is_live(http, cluster)
        doomed, _ = await open_session(http, cluster)
        live = await per_replica(http, cluster, LIVE)
        victim = live.index(1)
        kept, _ = await open_session(http, cluster)
        assert await per_replica(http, cluster, LIVE) == [1, 1]
        other = 1 - victim
        before = await metric(http, cluster.replica_url(other), OPENED)

        # Its session is told why, through nginx; the other replica's session goes on.
        closing = asyncio.create_task(closed_with(doomed))
        assert await cluster.stop_replica(victim) == 0
        assert await asyncio.wait_for(closing, READY_WITHIN) == 1001
        answer = await asyncio.wait_for(result_for_one_frame(kept), READY_WITHIN)
        assert answer["seq"] == 0

        # New sessions go to the replica left, at once: nginx skips the refused port.
        for _ in range(2):
            ws, reply = await asyncio.wait_for(open_session(http, cluster), READY_WITHIN)
            assert reply == "ready"
            await ws.close()
        assert await metric(http, cluster.replica_url(other), OPENED) == before + 2
        async with http.get(cluster.url + "/healthz") as health:
            assert health.status == 200
        await kept.close()


async def test_a_replica_that_dies_is_started_again_while_the_other_serves_on(
    http: aiohttp.ClientSession,
) -> None:
    """`make cluster` used to stop every replica, and end their sessions, when one died."""
    async with cluster_of((), ()) as cluster:
        stop = asyncio.Event()
        supervising = asyncio.create_task(cluster.supervise(stop))
        kept, _ = await open_session(http, cluster)
        victim = 1 - (await per_replica(http, cluster, LIVE)).index(1)
        dead = cluster.replicas[victim].pid
        os.kill(dead, signal.SIGKILL)
        answer = await asyncio.wait_for(result_for_one_frame(kept), READY_WITHIN)
        assert answer["seq"] == 0
        # Started again: a new process that serves, and the cluster still runs.
        replica = cluster.replicas[victim]
        for _ in range(600):  # every 50 ms for at most 30 s, until the new one is spawned
            if replica.pid != dead:
                break
            await asyncio.sleep(0.05)
        assert replica.pid != dead
        await asyncio.wait_for(replica.ready.wait(), 180.0)
        assert await metric(http, cluster.replica_url(victim), LIVE) == 0
        assert not supervising.done()
        await kept.close()
        stop.set()
        assert await supervising == 0


async def test_nginx_killed_stops_the_cluster_and_takes_its_workers(
    http: aiohttp.ClientSession,
) -> None:
    """The operator's review: nginx's master SIGKILLed, its workers (their own master gone)
    held its output open and answered on its port, and `make cluster`, waiting for that
    output to close, ran on. It stops with status 1, and nothing answers there after."""
    async with cluster_of(()) as cluster:
        stop = asyncio.Event()
        supervising = asyncio.create_task(cluster.supervise(stop))
        assert cluster.nginx is not None
        os.kill(cluster.nginx.pid, signal.SIGKILL)
        assert await asyncio.wait_for(supervising, 30.0) == 1
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(cluster.url + "/healthz"):
            pass


async def test_a_full_replica_refuses_the_handshake_so_nginx_uses_another(
    http: aiohttp.ClientSession,
) -> None:
    async with cluster_of(("--max-sessions", "1"), ("--max-sessions", "3")) as cluster:
        sockets = []
        try:
            for _ in range(4):
                ws, reply = await asyncio.wait_for(open_session(http, cluster), READY_WITHIN)
                sockets.append(ws)
                # Whichever way least_conn breaks ties, one of these lands on the full replica.
                assert reply == "ready"
            # Both full: the refusal reaches the client as HTTP 503, which means what 1013 does.
            # A page retries; each retry is refused by both replicas again.
            for _ in range(3):
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await asyncio.wait_for(open_session(http, cluster), READY_WITHIN)
                assert refused.value.status == 503
            # Full of sessions is not down: the page, its files and images are still served.
            for path in ("/", "/healthz", "/static/favicon.svg"):
                async with http.get(cluster.url + path) as page:
                    assert page.status == 200, (path, await page.text())
            upload = await http.post(
                cluster.url + "/predict",
                data=PERSON_JPEG.read_bytes(),
                headers={"Content-Type": "image/jpeg"},
            )
            assert upload.status == 200, await upload.text()
        finally:
            for ws in sockets:
                await ws.close()


async def test_a_watch_link_reaches_the_replica_that_holds_it(
    http: aiohttp.ClientSession,
) -> None:
    """A link's watchers, resume string and avatar live on its camera's replica only. With
    least_conn alone, a watcher went to the other, idle replica and was told 4003 every
    time; routed by the link's token (?link=, or the avatar's or emotion's path), a camera,
    its watchers, its avatar, its emotion and its end all reach the same replica, as a
    pairing code's claim reaches its offer's."""
    async with cluster_of((), ()) as cluster:
        # One plain session on each replica, so least_conn has a replica to prefer.
        plain = [(await open_session(http, cluster))[0] for _ in range(2)]
        assert await per_replica(http, cluster, LIVE) == [1, 1]
        key = "pQ0vXw0lH4mEy5xkTzB2bq4J8s3ZcN1uR7dVfYaGhLo"
        token = kept_token(key)
        route = {"link": token}
        camera = await http.ws_connect(cluster.ws_url, origin=cluster.url, params=route)
        await camera.send_json(
            {"type": "hello", "version": 1, "track": "pose", "fps": 5, "link_key": key}
        )
        ready = await camera.receive_json(timeout=READY_WITHIN)
        assert (ready["type"], ready["watch"]) == ("ready", token)
        for _ in range(4):
            watcher = await http.ws_connect(cluster.ws_url, origin=cluster.url, params=route)
            await watcher.send_json({"type": "watch", "version": 1, "token": token})
            watching = await watcher.receive_json(timeout=READY_WITHIN)
            assert watching == {"type": "watching", "session": ready["session"]}
            await watcher.close()

        avatar = b"glTF" + bytes(60)
        upload = await http.put(
            f"{cluster.url}/api/avatar/{token}",
            data=avatar,
            headers={"Holotrack-Resume": ready["resume"], "Content-Type": "model/gltf-binary"},
        )
        assert upload.status == 200, await upload.text()
        for _ in range(3):
            async with http.get(cluster.url + (await upload.json())["url"]) as shown:
                assert (shown.status, await shown.read()) == (200, avatar)

        # So does the emotion a stream deck's button holds on the link.
        for _ in range(3):
            held = await http.put(
                f"{cluster.url}/api/emotion/{token}",
                json={"name": "happy"},
                headers={"Holotrack-Link-Key": key},
            )
            assert (held.status, await held.json()) == (200, {"name": "happy", "weight": 1.0})

        # A pairing code is kept by the replica its offer reached: each claim finds it,
        # typed as shown (with its dash) or not, in capitals or not (nginx hashes a code
        # in lower case apart; the replica it reaches sends it on in capitals).
        codes = []
        for turn in range(12):
            code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
            codes.append(code)
            offered = await http.put(f"{cluster.url}/api/pair/{code}", json={"link_key": key})
            assert offered.status == 201, await offered.text()
            typed = f"{code[:4]}-{code[4:]}" if turn % 2 else code
            typed = typed.lower() if turn % 3 == 0 else typed
            claimed = await http.post(f"{cluster.url}/api/pair/{typed}/claim")
            answer = await claimed.json()
            assert (claimed.status, answer) == (200, {"link_key": key, "key": None})

        await camera.close(code=4002, message=b"paused")
        ended = await http.post(
            cluster.url + "/api/end", params=route, json={"resume": ready["resume"]}
        )
        assert (await ended.json())["ended"] == ready["session"]
        for ws in plain:
            await ws.close()
        # nginx's access log names these requests without their secrets.
        assert cluster.nginx is not None
        logged = "\n".join(cluster.nginx.tail)
        assert '"POST /api/pair/-/claim" 200' in logged
        assert '"POST /api/end" 200' in logged
        for secret in (token, key, ready["resume"], *codes, *(c.lower() for c in codes)):
            assert secret not in logged, secret


async def until_live(
    http: aiohttp.ClientSession, cluster: Cluster, wanted: list[float]
) -> list[float]:
    """Polls the replicas' live sessions, every 50 ms for at most 30 s, until they are
    `wanted` in some order; the counts as they are then."""
    for _ in range(600):
        live = await per_replica(http, cluster, LIVE)
        if sorted(live) == sorted(wanted):
            return live
        await asyncio.sleep(0.05)
    raise AssertionError(f"live sessions per replica {live}, not {wanted}")


@pytest.mark.browser
async def test_a_paused_workout_resumes_on_the_replica_that_holds_its_link(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """The fitness page paused (its camera muted, as a phone's screen lock does) and back:
    its resume reaches the replica that kept its workout, even when least_conn would pick
    the other one, and the count goes on from where it was. Without ?link= on the page's
    connections (the old config, or the live page, which keeps no link) it went by
    least_conn, to a replica that knew no such session: a new one, at 0."""
    y4m = write_y4m(PUSHUPS, tmp_path / "one_rep.y4m", frames=141, start=144)
    track = "document.getElementById('fitness-video').srcObject.getVideoTracks()[0]"
    async with cluster_of((), ()) as cluster, open_page(fake_camera_args(y4m)) as browser:
        plain = [(await open_session(http, cluster))[0] for _ in range(2)]
        assert await per_replica(http, cluster, LIVE) == [1, 1]
        page = browser.page
        await page.goto(cluster.url + "/fitness")
        await page.wait_for_selector("body[data-fitness-ready]", state="attached")
        await page.select_option("#fitness-exercise", "push_up")
        readies = Readies(page)
        await page.click("#fitness-start")
        await wait_for_reps(page, 1)
        holder = (await until_live(http, cluster, [2, 1])).index(2)
        await page.evaluate(f"() => {track}.dispatchEvent(new Event('mute'))")
        await page.wait_for_selector("body[data-paused=muted]", state="attached")
        await until_live(http, cluster, [1, 1])
        # Two more sessions on the link's replica: least_conn would now send a new
        # connection to the other one.
        direct = cluster.replica_url(holder)
        crowd = [
            await http.ws_connect(direct.replace("http", "ws", 1) + "/ws", origin=direct)
            for _ in range(2)
        ]
        for ws in crowd:
            await ws.send_json({"type": "hello", "version": 1, "track": "pose", "fps": 5})
            assert (await ws.receive_json(timeout=READY_WITHIN))["type"] == "ready"
        await page.evaluate(f"() => {track}.dispatchEvent(new Event('unmute'))")
        first, again = await readies.first(2, within=READY_WITHIN)
        assert again["resumed"] is True, again
        assert again["watch"] == first["watch"]
        assert (await per_replica(http, cluster, LIVE))[holder] == 4
        # Results of the resumed session, and the count carried over rather than back at 0.
        shown = await page.eval_on_selector("#fitness-stage", "el => Number(el.dataset.results)")
        await page.wait_for_function(
            "n => Number(document.getElementById('fitness-stage').dataset.results) > n + 3",
            arg=shown,
        )
        assert int(await page.inner_text("#fitness-reps")) >= 1
        for ws in plain + crowd:
            await ws.close()
