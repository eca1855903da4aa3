"""Admission by rate, end to end: --min-session-fps refuses a session with 1013 and a
reason when it would push any session below the minimum, and /readyz says so first.

Nothing runs a frame here, so the cost of a holistic frame is the engine's first estimate
(45 ms, webapp/engine/pacing.py) and the outcome does not depend on the machine's speed;
tests/test_scheduling.py covers the rule itself.
"""

from __future__ import annotations

import secrets

from tests.conftest import MakeClient
from tests.live import LiveClient
from webapp.config import Config
from webapp.keys import SESSIONS
from webapp.protocol import Close


async def test_a_session_that_would_push_others_below_the_minimum_gets_1013(
    make_client: MakeClient,
) -> None:
    client = await make_client(Config(workers=1, min_session_fps="holistic=15"))
    assert (await client.get("/readyz")).status == 200
    first = await LiveClient.connect(client)
    assert (await first.hello("holistic", fps=15))["fps"] == 15
    # A second at 15 fps would leave both at 1000 / (2 x 45) = 11.1 fps.
    full = await client.get("/readyz")
    assert full.status == 503
    body = await full.json()
    assert body["status"] == "full"
    assert "--min-session-fps 15" in body["reason"]
    second = await LiveClient.connect(client)
    await second.ws.send_json({"type": "hello", "version": 1, "track": "holistic", "fps": 15})
    code, reason = await second.closed()
    assert code == Close.TRY_AGAIN_LATER
    assert "--min-session-fps 15" in reason
    # One asking 2 fps leaves the first its 15: it is let in.
    modest = await LiveClient.connect(client)
    assert (await modest.hello("holistic", fps=2))["fps"] == 2
    # Every session has what it asked: nothing to steer.
    metrics = await (await client.get("/metrics")).text()
    assert 'holotrack_grant_factor{worker="0"} 1.0' in metrics.splitlines()
    await first.ws.close()
    await modest.ws.close()
    await client.app[SESSIONS].wait_empty()
    assert (await client.get("/readyz")).status == 200


async def test_a_camera_back_at_a_full_server_takes_its_own_session_over(
    make_client: MakeClient,
) -> None:
    """Full with the camera's own session, its next connection (the old one not yet found
    dead) is let in, one over --max-sessions for a moment: the old one ends as it starts."""
    client = await make_client(Config(workers=1, max_sessions=1))
    link_key = secrets.token_urlsafe(32)
    first = await LiveClient.connect(client)
    ready = await first.hello("holistic", fps=15, link_key=link_key)
    second = await LiveClient.connect(client)
    again = await second.hello("holistic", fps=15, link_key=link_key)
    assert (again["watch"], again["resumed"]) == (ready["watch"], True)
    assert await first.closed() == (
        Close.NORMAL,
        f"another connection took its link over as {again['session']}",
    )
    # A session that takes nothing over is still refused.
    other = await LiveClient.connect(client)
    await other.ws.send_json({"type": "hello", "version": 1, "track": "holistic", "fps": 15})
    code, reason = await other.closed()
    assert code == Close.TRY_AGAIN_LATER
    assert reason.startswith("server full: 1 of 1 sessions")
    await second.ws.close()
    await client.app[SESSIONS].wait_empty()
