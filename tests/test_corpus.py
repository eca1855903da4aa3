"""The awkward-image corpus (tests/corpus.py) through POST /predict and /ws.

Each image gets the answer its entry names: a result, or a documented refusal; never a
500, never a crash; and the server answers ordinary requests normally afterwards.
"""

from __future__ import annotations

from typing import Any

import pytest
from PIL import Image

from tests.conftest import Client, MakeClient
from tests.corpus import (
    CORPUS,
    ROTATE_CW,
    Awkward,
    Ws,
    encode,
    exif_rotated_jpeg,
    person,
    upright_jpeg,
    with_orientation,
)
from tests.live import LiveClient, video_frames
from tests.media import ASL_VIDEO, PERSON_JPEG
from tests.test_predict import assert_full_body, post_file
from webapp.config import Config
from webapp.keys import SCHEDULER, SESSIONS
from webapp.protocol import Close

NEUTRAL = "application/octet-stream"
PARTS = {"pose", "face", "left_hand", "right_hand"}
# Pose points seen in both an upright JPEG and its EXIF-rotated twin (normalized units).
SAME_POSE_MEDIAN = 0.01
SAME_POSE_LARGEST = 0.05


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    return await make_client(Config(workers=1, no_cache=True))


def mismatch(item: Awkward, got: Any, want: Any) -> str:
    return f"{item.name}: got {got!r}, want {want!r}"


def check_landmarks(item: Awkward, image: dict[str, int], landmarks: dict[str, Any]) -> list[str]:
    problems = []
    if set(landmarks) != PARTS:
        problems.append(mismatch(item, sorted(landmarks), sorted(PARTS)))
    if item.size is not None and (image["width"], image["height"]) != item.size:
        problems.append(mismatch(item, image, item.size))
    if item.person and landmarks["pose"] is None:
        problems.append(f"{item.name}: no pose found in a photo of a whole person")
    return problems


async def server_still_answers(client: Client) -> None:
    status, body = await post_file(client, PERSON_JPEG.read_bytes())
    assert status == 200
    assert_full_body(body)
    live = await LiveClient.connect(client)
    await live.hello("holistic")
    results = await live.lockstep(video_frames(ASL_VIDEO)[:2])
    assert all(r["landmarks"]["pose"] is not None for r in results)
    await live.ws.close()


async def test_every_awkward_image_through_predict(client: Client) -> None:
    problems: list[str] = []
    for item in CORPUS:
        status, body = await post_file(client, item.data, NEUTRAL)
        if (status, body.get("error")) != (item.status, item.error):
            problems.append(mismatch(item, (status, body), (item.status, item.error)))
        elif status == 200:
            problems += check_landmarks(item, body["image"], body["landmarks"])
        else:
            assert body["detail"]
    assert not problems, "\n".join(problems)
    await server_still_answers(client)


async def test_every_awkward_image_as_a_live_frame(client: Client) -> None:
    config = client.app[SCHEDULER].config
    survivors = [item for item in CORPUS if item.ws is not Ws.UNSUPPORTED]
    problems: list[str] = []
    # Images the session survives all go down one session, one frame after the other.
    live = await LiveClient.connect(client)
    await live.hello("holistic")
    for seq, item in enumerate(survivors):
        assert len(item.data) <= config.max_frame_bytes, item.name
        await live.send(seq, seq * 66.7, item.data)
        reply = await live.next_of("result", "error")
        assert reply["seq"] == seq
        got = reply["type"] if reply["type"] == "result" else reply["code"]
        if got != item.ws.value:
            problems.append(mismatch(item, reply, item.ws.value))
        elif got == "result":
            problems += check_landmarks(item, reply["image"], reply["landmarks"])
    stats = await live.next_of("stats")
    while stats["pending"]:
        stats = await live.next_of("stats")
    assert stats["received"] == len(survivors)
    assert stats["errors"] == sum(1 for item in survivors if item.ws is not Ws.RESULT)
    await live.ws.close()
    # Anything else is not a frame: the session ends with 1003 and a reason.
    for item in CORPUS:
        if item.ws is not Ws.UNSUPPORTED:
            continue
        refused = await LiveClient.connect(client)
        await refused.hello("pose")
        await refused.send(0, 0.0, item.data)
        code, reason = await refused.closed()
        if code != Close.UNSUPPORTED_DATA or "JPEG, WebP or PNG" not in reason:
            problems.append(mismatch(item, (code, reason), Close.UNSUPPORTED_DATA))
    assert not problems, "\n".join(problems)
    await client.app[SESSIONS].wait_empty()
    await server_still_answers(client)


def pose_difference(a: list[list[float]], b: list[list[float]]) -> tuple[float, float]:
    """Median and largest x or y distance between pose points both answers see."""
    seen = [(p, q) for p, q in zip(a, b, strict=True) if min(p[3], q[3]) > 0.5]
    assert len(seen) >= 10
    distances = sorted(abs(p[i] - q[i]) for p, q in seen for i in (0, 1))
    return distances[len(distances) // 2], distances[-1]


def assert_same_pose(upright: list[list[float]], rotated: list[list[float]], exact: bool) -> None:
    median, largest = pose_difference(upright, rotated)
    if exact:
        # PNG is lossless: turned upright, the pixels are the upright photo's, bit for bit.
        assert largest < 1e-4, largest
    else:
        # The sideways JPEG was compressed on its side: its blocks differ from the upright
        # one's, which moves points by about 0.002 (0.03 at most). Not applying the
        # orientation would move them by about 0.2.
        assert median < SAME_POSE_MEDIAN, median
        assert largest < SAME_POSE_LARGEST, largest


ORIENTED = {
    "jpeg": (upright_jpeg, exif_rotated_jpeg),
    "png": (
        lambda: encode(person(), "PNG"),
        lambda: with_orientation(person().transpose(Image.Transpose.ROTATE_90), ROTATE_CW, "PNG"),
    ),
}


@pytest.mark.parametrize("fmt", sorted(ORIENTED))
async def test_exif_rotated_photo_is_tracked_upright(client: Client, fmt: str) -> None:
    """Orientation 6 is applied before the model runs: the landmarks are those of the
    photo physically rotated upright, in the upright frame."""
    upright, rotated = (build() for build in ORIENTED[fmt])
    size = {"width": person().width, "height": person().height}
    answers = []
    for data in (upright, rotated):
        status, body = await post_file(client, data, "application/octet-stream")
        assert status == 200, body
        assert body["image"] == size
        answers.append(body["landmarks"]["pose"])
    assert_same_pose(answers[0], answers[1], exact=fmt == "png")
    # The same on /ws, each on a fresh session so no tracking state is shared.
    results = []
    for data in (upright, rotated):
        live = await LiveClient.connect(client)
        await live.hello("pose")
        await live.send(0, 0.0, data)
        result = await live.next_of("result")
        assert result["image"] == size
        results.append(result["landmarks"]["pose"])
        await live.ws.close()
    assert_same_pose(results[0], results[1], exact=fmt == "png")
