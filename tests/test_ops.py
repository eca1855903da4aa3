"""What an operator reads: health, readiness and Prometheus metrics."""

from __future__ import annotations

import re

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import MakeClient
from tests.live import LiveClient, lose_connection, until, video_frames
from tests.media import ASL_VIDEO, PERSON_JPEG, ROOT
from webapp.config import Config
from webapp.keys import METRICS, SESSIONS
from webapp.metrics import Metrics


def sample(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name) + (re.escape("{" + labels + "}") if labels else "") + r" (\S+)"
    found = re.search("^" + pattern + "$", text, re.MULTILINE)
    assert found, f"{name}{{{labels}}} not in metrics"
    return float(found.group(1))


async def test_health_and_readiness_follow_capacity(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1, max_sessions=1))
    health = await client.get("/healthz")
    assert health.status == 200
    assert (await health.json())["status"] == "ok"
    ready = await client.get("/readyz")
    assert ready.status == 200
    live = await LiveClient.connect(client)
    await live.hello("pose")
    full = await client.get("/readyz")
    assert full.status == 503
    assert (await full.json())["status"] == "full"
    await live.ws.close()
    await client.app[SESSIONS].wait_empty()
    again = await client.get("/readyz")
    assert again.status == 200
    assert (await again.json())["sessions"] == 0


async def test_metrics_count_sessions_frames_and_uploads(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1, max_sessions=1, no_cache=True))
    live = await LiveClient.connect(client)
    await live.hello("holistic")
    await live.lockstep(video_frames(ASL_VIDEO)[:3])
    refused = await LiveClient.connect(client)
    await refused.ws.send_json({"type": "hello", "version": 1, "track": "pose", "fps": 5})
    assert (await refused.closed())[0] == 1013
    ok = await client.post(
        "/predict", data=PERSON_JPEG.read_bytes(), headers={"Content-Type": "image/jpeg"}
    )
    assert ok.status == 200
    bad = await client.post("/predict", data=b"nope", headers={"Content-Type": "text/plain"})
    assert bad.status == 415
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    assert sample(text, "holotrack_sessions_live") == 1
    assert sample(text, "holotrack_sessions_refused_total") == 1
    assert sample(text, "holotrack_sessions_closed_total", 'code="1013"') == 1
    assert sample(text, "holotrack_frames_total", 'outcome="received"') == 3
    assert sample(text, "holotrack_frames_total", 'outcome="processed"') == 3
    assert sample(text, "holotrack_frame_wait_seconds_count", 'track="holistic"') == 3
    assert sample(text, "holotrack_predict_requests_total", 'status="200"') == 1
    assert sample(text, "holotrack_predict_requests_total", 'status="415"') == 1
    assert sample(text, "holotrack_inference_seconds_count", 'kind="still"') == 1
    assert sample(text, "holotrack_graphs") >= 2
    assert sample(text, "holotrack_workers_alive") == 1
    assert sample(text, "holotrack_session_room") == 0
    assert 0 <= sample(text, "holotrack_pool_busy_ratio") <= 1
    assert sample(text, "holotrack_process_resident_bytes", 'process="worker0"') > 100e6
    assert sample(text, "holotrack_process_cpu_seconds_total", 'process="worker0"') > 0
    assert sample(text, "holotrack_process_cpu_seconds_total", 'process="server"') > 0
    assert sample(text, "holotrack_pool_busy_seconds_total") > 0
    assert sample(text, "holotrack_workers") == 1


def test_every_close_code_a_session_can_end_with_starts_at_zero() -> None:
    """increase() and rate() see a series from its second sample: 1006, a connection lost,
    appeared only at a replica's first (the operator's review), so the dashboard's "1006 in
    the closes" missed it. Every code docs/protocol.md's table lists is there from the start."""
    text = generate_latest(Metrics().registry).decode()
    (family,) = [
        f for f in text_string_to_metric_families(text) if f.name == "holotrack_sessions_closed"
    ]
    started = {s.labels["code"]: s.value for s in family.samples if s.name.endswith("_total")}
    table = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| (\d{4}) \|", table, flags=re.MULTILINE))
    assert {"1002", "1006", "1007"} <= listed
    assert set(started) == listed
    assert set(started.values()) == {0.0}


def test_each_outcome_the_frames_help_names_is_a_label_value() -> None:
    """Operators write their queries from HELP: `outcome="error"` would match nothing."""
    text = generate_latest(Metrics().registry).decode()
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "holotrack_frames"]
    named = re.search(r"\(([^)]*)\)", family.documentation)
    assert named, family.documentation
    outcomes = {s.labels["outcome"] for s in family.samples if s.name.endswith("_total")}
    assert set(named.group(1).split(", ")) == outcomes


def test_every_status_of_the_access_layer_starts_at_zero() -> None:
    """A series appears at its first increment, which rate() and increase() cannot see:
    the first 401 of a video, or the first 403 of a key allowed none, went unseen."""
    registry = Metrics().registry
    for name in ("holotrack_predict_requests_total", "holotrack_video_requests_total"):
        for status in ("401", "403", "429"):
            assert registry.get_sample_value(name, {"status": status}) == 0, (name, status)


async def test_frames_pending_when_a_connection_is_lost_are_counted_as_dropped(
    make_client: MakeClient,
) -> None:
    """A frame in the worker or a result not yet written when a session ends was in no
    outcome: received outgrew processed + dropped + errors at every lost connection."""
    client = await make_client(Config(workers=1))
    registry = client.app[METRICS].registry

    def frames(outcome: str) -> float:
        value = registry.get_sample_value("holotrack_frames_total", {"outcome": outcome})
        assert value is not None
        return value

    live = await LiveClient.connect(client)
    await live.hello("holistic")
    images = video_frames(ASL_VIDEO)
    # A first frame answered: the graph is built, so the next ones go to the worker.
    await live.lockstep(images[:1])
    for seq, image in enumerate(images[1:], start=1):
        await live.send(seq, seq * 10.0, image)
    await until(lambda: frames("received") == len(images), "every frame received")
    # Sent back to back, they keep the worker busy: one is in it as the connection drops.
    lose_connection(live)
    await client.app[SESSIONS].wait_empty()
    assert registry.get_sample_value("holotrack_sessions_closed_total", {"code": "1006"}) == 1
    ended = frames("processed") + frames("dropped") + frames("errors")
    assert frames("received") == ended == len(images)
