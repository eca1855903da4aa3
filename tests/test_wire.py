"""The landmarks a worker sends: MediaPipe's lists to arrays, the arrays to protocol v1 JSON,
and what makes two results the same."""

from __future__ import annotations

import json
import pickle
from typing import Any

import numpy as np
import pytest
from mediapipe.framework.formats import landmark_pb2
from PIL import Image

from bench.recordings import Recording
from tests.landmarks import asl
from tests.media import MEDIA
from webapp.analysis import AvatarOptions
from webapp.analysis.rig.face import IRIS_POINTS
from webapp.engine.inference import extract
from webapp.engine.jobs import Frame
from webapp.engine.points import _from_bytes, part_array
from webapp.engine.wire import FrameResult, Landmarks
from webapp.landmarks_json import FACE_POINTS
from webapp.live.analysis import SessionAnalysis, result_text
from webapp.live.options import SessionOptions


def landmark_list(rows: list[dict[str, float]]) -> Any:
    out = landmark_pb2.NormalizedLandmarkList()
    for row in rows:
        out.landmark.add(**row)
    return out


def slow(landmarks: Any, columns: int) -> list[list[float]]:
    names = ("x", "y", "z", "visibility")[:columns]
    return [[getattr(p, n) for n in names] for p in landmarks.landmark]


POINTS = [
    {"x": 0.1 * i, "y": -0.25 * i, "z": 1e-7 * i, "visibility": 0.9 - 0.01 * i} for i in range(5)
]


@pytest.mark.parametrize("columns", [3, 4])
def test_every_point_as_the_model_gave_it(columns: int) -> None:
    rows = [dict(p, presence=0.5) for p in POINTS]  # a field past those read is skipped
    lm = landmark_list(rows)
    got = part_array(lm, columns)
    assert got is not None
    assert got.dtype == np.float64
    assert got.shape == (len(rows), columns)
    assert got.tolist() == slow(lm, columns)
    assert _from_bytes(lm.SerializeToString(), len(rows), columns) is not None


def test_a_layout_it_does_not_read_takes_the_slow_way_to_the_same_numbers() -> None:
    rows = [dict(p) for p in POINTS]
    del rows[2]["z"]  # one record shorter, every byte after it shifted
    del rows[3]["visibility"]
    lm = landmark_list(rows)
    assert _from_bytes(lm.SerializeToString(), len(rows), 3) is None
    got = part_array(lm, 4)
    assert got is not None
    assert got.tolist() == slow(lm, 4)
    assert got[2, 2] == 0.0
    # Too few fields for the columns asked: the slow way, visibility 0 as protobuf reads it.
    plain = landmark_list([{"x": 0.5, "y": 0.5, "z": 0.5}] * 3)
    assert _from_bytes(plain.SerializeToString(), 3, 4) is None
    assert part_array(plain, 4).tolist() == [[0.5, 0.5, 0.5, 0.0]] * 3  # type: ignore[union-attr]


def test_nothing_found_is_none_and_an_empty_list_no_rows() -> None:
    assert part_array(None, 3) is None
    empty = part_array(landmark_list([]), 3)
    assert empty is not None
    assert empty.shape == (0, 3)


def test_real_results_are_read_from_their_bytes() -> None:
    """The model's own lists have the layout read fast, so no frame takes the slow way."""
    from mediapipe.python.solutions import holistic

    with Image.open(MEDIA / "business_person_mpsamples.png") as img:
        rgb = np.asarray(img.convert("RGB"))
    with holistic.Holistic(static_image_mode=True, refine_face_landmarks=True) as graph:
        results = graph.process(rgb)
    found = extract(results)
    assert found.pose is not None
    assert found.face is not None
    assert found.pose_world is not None
    assert found.face.shape == (IRIS_POINTS, 3)  # the refined mesh, irises after the face
    assert len(found.as_json()["face"] or []) == FACE_POINTS
    assert found.pose.shape == (33, 4)
    assert found.pose_world.shape == (33, 3)
    parts = {
        "pose_landmarks": 4,
        "face_landmarks": 3,
        "pose_world_landmarks": 3,
        "left_hand_landmarks": 3,
        "right_hand_landmarks": 3,
    }
    for name, columns in parts.items():
        lm = getattr(results, name)
        if lm is None:
            continue
        assert _from_bytes(lm.SerializeToString(), len(lm.landmark), columns) is not None, name
        got = part_array(lm, columns)
        assert got is not None
        assert got.tolist() == slow(lm, columns), name


def sample() -> Landmarks:
    rng = np.random.default_rng(7)
    pose = rng.random((33, 4))
    return Landmarks(
        pose=pose,
        face=rng.random((IRIS_POINTS, 3)),
        left_hand=None,
        right_hand=rng.random((21, 3)),
        pose_world=rng.random((33, 3)),
    )


def test_json_is_protocol_v1_rounded_as_before() -> None:
    found = sample()
    out = found.as_json()
    assert set(out) == {"pose", "face", "left_hand", "right_hand"}
    assert out["left_hand"] is None
    assert out["pose"] is not None
    assert out["face"] is not None
    assert isinstance(out["pose"], list)
    assert isinstance(out["pose"][0][0], float)
    assert found.pose is not None
    assert out["pose"] == [
        [round(x, 5), round(y, 5), round(z, 5), round(v, 4)] for x, y, z, v in found.pose.tolist()
    ]
    assert len(out["face"]) == FACE_POINTS
    assert found.face is not None
    assert np.array_equal(out["face"], np.round(found.face[:FACE_POINTS], 5))
    # New lists each time: a caller may change its copy.
    assert out["pose"] is not found.as_json()["pose"]


def recorded(rec: Recording, i: int) -> Landmarks:
    """Frame i of a recording as a worker sends it."""
    parts = rec.frame(i)
    world = rec.world(i)
    return Landmarks(
        pose=parts["pose"],
        face=parts["face"],
        left_hand=parts["left_hand"],
        right_hand=parts["right_hand"],
        pose_world=None if world is None else world[:, :3],
    )


def test_a_session_sends_the_same_landmarks_with_or_without_a_rig() -> None:
    """Digit for digit: unsmoothed, as the plain result; smoothed, the same with a rig as
    without. Equal floats are written with the same digits by the one encoder."""
    rec = asl()
    options = {
        "off": AvatarOptions(smoothing=None),
        "off_rig": AvatarOptions(smoothing=None, rig=True),
        "on": AvatarOptions(),
        "on_rig": AvatarOptions(rig=True),
    }
    sessions = {k: SessionAnalysis(SessionOptions(avatar=v), {}) for k, v in options.items()}
    for i in range(len(rec)):
        frame = Frame(i, float(rec.capture_ms[i]), b"")
        result = FrameResult(1, rec.width, rec.height, recorded(rec, i), 0.0, 0.0)
        plain = json.loads(result_text(None, frame, result, "s1"))
        sent = {k: json.loads(result_text(s, frame, result, k)) for k, s in sessions.items()}
        assert "rig" in sent["off_rig"]
        assert "rig" in sent["on_rig"]
        assert sent["off"]["landmarks"] == sent["off_rig"]["landmarks"] == plain["landmarks"]
        assert sent["on"]["landmarks"] == sent["on_rig"]["landmarks"]
        pose = sent["on_rig"]["landmarks"]["pose"]
        assert pose is not None
        assert [p[3] for p in pose] == [p[3] for p in plain["landmarks"]["pose"]]


def test_landmarks_are_equal_only_with_the_same_points() -> None:
    a = sample()
    same = Landmarks(**{k: None if v is None else v.copy() for k, v in vars(a).items()})
    assert a == same
    assert [a] == [same]
    assert a == pickle.loads(pickle.dumps(a, protocol=pickle.HIGHEST_PROTOCOL))
    assert a != Landmarks(None, None, None, None)
    assert Landmarks(None, None, None, None) == Landmarks(None, None, None, None)
    assert a != object()
    assert a.face is not None
    moved = a.face.copy()
    moved[IRIS_POINTS - 1, 2] += 1e-9  # an iris point, which the JSON leaves out
    assert a != Landmarks(a.pose, moved, a.left_hand, a.right_hand, a.pose_world)
    assert a.right_hand is not None
    assert a != Landmarks(a.pose, a.face, a.right_hand, None, a.pose_world)


def test_a_frame_result_pickles_to_the_same_landmarks() -> None:
    result = FrameResult(2, 640, 480, sample(), 1.5, 30.0)
    back = pickle.loads(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    assert back == result
    assert back.landmarks.pose is not None
    assert back.landmarks.pose.dtype == np.float64
