"""Recordings out (issue 15): BVH, CSV and the VMC replay from a REAL recording (a live
session fed the shared ASL video, its results kept as the pages' Record button keeps them),
the command line, and POST /api/export's statuses."""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import itertools
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler
from bvh import Bvh
from pybvh import read_bvh_file

from tests.conftest import Client, MakeClient
from tests.live import LiveClient, video_frames
from tests.media import ASL_VIDEO, MEDIA
from tests.videos import lines, post, write_clip
from tests.vmc_receiver import VMC_TYPE_TAGS, vmc_receiver
from webapp.analysis.fitness.angles import INDEX, angle, to_points
from webapp.analysis.rig import quat
from webapp.analysis.rig.eyes import eye_rotation
from webapp.analysis.rig.idle import IDLE_BONES, UNSEEN_SECONDS
from webapp.analysis.rig.solve import MIN_VISIBILITY, POSE_Z_SCALE
from webapp.analysis.skeleton import PARENT, REST_OFFSET
from webapp.config import Config, load_config
from webapp.engine.blendshapes import NAMES
from webapp.export import table
from webapp.export.bvh import JOINT_OFFSET, JOINT_PARENT, to_bvh
from webapp.export.gate import Slots
from webapp.export.pool import ExportPool
from webapp.export.recording import RecordingError, parse, parse_text
from webapp.export.replay import replay
from webapp.export.table import joint_angles
from webapp.export_view import (
    MAX_EXPORTS,
    MAX_UPLOADS,
    MAX_UPLOADS_PER_CLIENT,
    setup_export_routes,
)
from webapp.http_errors import json_errors
from webapp.keys import CONFIG, EXPORT_POOL, EXPORTS, METRICS
from webapp.vmc.encode import to_unity_rotation
from webapp.vmc.sender import Target

FRAMES = 30
ROOT = Path(__file__).resolve().parent.parent
Line = dict[str, Any]
_RECORDED: list[list[Line]] = []


async def record_session(make_client: MakeClient) -> list[Line]:
    """A live session with rig, blendshapes and fitness, fed real frames in lockstep; its
    results become
    recording lines exactly as static/record.js makes them."""
    client = await make_client(Config(workers=1, no_cache=True))
    person = await LiveClient.connect(client)
    await person.hello(track="holistic", blendshapes=True, exercise="bicep_curl")
    results = await person.lockstep(video_frames(ASL_VIDEO, FRAMES))
    await person.ws.close()
    start = results[0]["capture_ms"]
    lines = []
    for i, result in enumerate(results):
        line = {
            "frame": i,
            "time_ms": result["capture_ms"] - start,
            "landmarks": result["landmarks"],
            "image": result["image"],
        }
        for extra in ("rig", "fitness"):
            if extra in result:
                line[extra] = result[extra]
        lines.append(line)
    return lines


@pytest.fixture
async def recorded(make_client: MakeClient) -> list[Line]:
    # One session for the whole module: the model's start dominates, the lines do not change.
    if not _RECORDED:
        _RECORDED.append(await record_session(make_client))
    return [dict(line) for line in _RECORDED[0]]


def jsonl(lines: list[Line]) -> str:
    return "".join(json.dumps(line) + "\n" for line in lines)


def landmarks_only(lines: list[Line]) -> list[Line]:
    """What POST /api/video writes without ?rig=1: no rig, no fitness, no image size."""
    keep = ("frame", "time_ms", "landmarks")
    return [{k: line[k] for k in keep} for line in lines]


def from_euler_zxy(z: float, x: float, y: float) -> quat.Quat:
    """Rz * Rx * Ry, composed independently of the exporter's conversion."""
    rz = quat.from_axis_angle((0.0, 0.0, 1.0), math.radians(z))
    rx = quat.from_axis_angle((1.0, 0.0, 0.0), math.radians(x))
    ry = quat.from_axis_angle((0.0, 1.0, 0.0), math.radians(y))
    return quat.multiply(quat.multiply(rz, rx), ry)


def rotation(mocap: Bvh, frame: int, joint: str) -> quat.Quat:
    z, x, y = mocap.frame_joint_channels(frame, joint, ["Zrotation", "Xrotation", "Yrotation"])
    return from_euler_zxy(z, x, y)


def dot4(a: quat.Quat, b: quat.Quat) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def turn_deg(q: quat.Quat) -> float:
    return math.degrees(2.0 * math.acos(min(1.0, abs(q[3]))))


SIDE_POINTS = {"left": (11, 13, 15), "right": (12, 14, 16)}


def elbow_bend_deg(line: Line, side: str, size: tuple[int, int]) -> float | None:
    """180 degrees minus the elbow's angle from the landmarks, on the rig's scales (pixels,
    z times the width times POSE_Z_SCALE); None when the arm is not seen."""
    pose = line["landmarks"]["pose"]
    if pose is None or any(pose[i][3] < MIN_VISIBILITY for i in SIDE_POINTS[side]):
        return None
    width, height = size
    s, e, w = (
        (pose[i][0] * width, pose[i][1] * height, pose[i][2] * width * POSE_Z_SCALE)
        for i in SIDE_POINTS[side]
    )
    u, v = quat.sub(s, e), quat.sub(w, e)
    cos = quat.dot(u, v) / (quat.norm(u) * quat.norm(v))
    return 180.0 - math.degrees(math.acos(max(-1.0, min(1.0, cos))))


# -- BVH --------------------------------------------------------------------------------------


async def test_bvh_has_the_vrm_skeleton_and_a_frame_per_line(recorded: list[Line]) -> None:
    mocap = Bvh(to_bvh(parse_text(jsonl(recorded))))
    names = mocap.get_joints_names()
    assert names[0] == "hips"
    # VRM's skeleton, and its eye bones under the head.
    assert set(names) == set(PARENT) | {"leftEye", "rightEye"}
    assert {n: p for n, p in JOINT_PARENT.items() if n not in PARENT} == {
        "leftEye": "head",
        "rightEye": "head",
    }
    for name in names:
        parent = mocap.joint_parent(name)
        assert (None if parent is None else parent.value[1]) == JOINT_PARENT[name], name
        if PARENT.get(name) is not None:
            assert mocap.joint_offset(name) == pytest.approx(REST_OFFSET[name], abs=1e-6)
        if JOINT_PARENT[name] is not None:
            assert mocap.joint_offset(name) == pytest.approx(JOINT_OFFSET[name], abs=1e-6)
            assert mocap.joint_channels(name) == ["Zrotation", "Xrotation", "Yrotation"]
    assert mocap.joint_channels("hips") == [
        "Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation",
    ]  # fmt: skip
    for name in names:
        joint = mocap.get_joint(name)
        leaf = not list(joint.filter("JOINT"))
        assert len(list(joint.filter("End"))) == (1 if leaf else 0), name
    assert mocap.nframes == len(recorded)
    assert len(mocap.frames) == len(recorded)
    span_s = (recorded[-1]["time_ms"] - recorded[0]["time_ms"]) / 1000.0
    assert mocap.frame_time == pytest.approx(span_s / (len(recorded) - 1), abs=1e-6)
    assert all(len(row) == 6 + 3 * (len(names) - 1) for row in mocap.frames)


async def test_bvh_rotations_are_the_recorded_rig(recorded: list[Line]) -> None:
    mocap = Bvh(to_bvh(parse_text(jsonl(recorded))))
    compared = 0
    for i, line in enumerate(recorded):
        for bone, q in line["rig"]["bones"].items():
            if bone in PARENT:
                # The same rotation (q and -q are one rotation; the rig's are rounded to 4
                # digits, so not quite unit), to the file's 6 decimals of a degree.
                unit = quat.normalize(tuple(q))
                assert abs(dot4(rotation(mocap, i, bone), unit)) > 1.0 - 1e-9, (i, bone)
                compared += 1
    assert compared >= FRAMES * 20


def test_bvh_eye_end_sites_point_straight_ahead() -> None:
    """Each eye's End Site is a short step along +Z, where the figure faces, so the bone
    drawn from the eye shows where it looks; every other leaf goes on along its own
    bone."""
    text = to_bvh(parse_text(jsonl([{"frame": 0, "time_ms": 0.0, "landmarks": {}}])))
    lines = [line.strip() for line in text.splitlines()]
    for eye in ("leftEye", "rightEye"):
        at = lines.index(f"JOINT {eye}")
        site = lines.index("End Site", at)
        x, y, z = (float(v) for v in lines[site + 2].split()[1:])
        assert (x, y) == (0.0, 0.0), eye
        assert 0.0 < z < JOINT_OFFSET[eye][2], eye


def test_bvh_frame_time_is_never_zero() -> None:
    """Lines stamped a fraction of a microsecond apart on average: the file said
    "Frame Time: 0.000000", a rate of nothing that an importer divides by."""
    recording = [
        {"frame": i, "time_ms": t, "landmarks": {}} for i, t in enumerate([0.0, 0.0, 0.0004])
    ]
    mocap = Bvh(to_bvh(parse_text(jsonl(recording))))
    assert mocap.nframes == 3
    assert mocap.frame_time > 0.0


def walking_hips(times: list[float]) -> list[Line]:
    """A recording line at each of `times` (ms), its hips 1 m along x a second: a motion
    frame's position says which moment it shows."""
    return [
        {
            "frame": i,
            "time_ms": t,
            "landmarks": {},
            "rig": {"bones": {}, "hips_position": [t / 1000.0, 0.0, 0.0]},
        }
        for i, t in enumerate(times)
    ]


def test_bvh_frame_midway_between_two_lines_shows_the_later() -> None:
    """A motion frame due exactly between two lines shows the later one, as on_the_clock
    says: lines at 0, 10, 20, 30 and 60 ms are shown every 15 ms, and the frame due at
    15 ms is the line at 20 ms, the one at 45 ms the line at 60 ms."""
    mocap = Bvh(to_bvh(parse_text(jsonl(walking_hips([0.0, 10.0, 20.0, 30.0, 60.0])))))
    start = mocap.frame_joint_channel(0, "hips", "Xposition")
    shown_ms = [
        round((mocap.frame_joint_channel(k, "hips", "Xposition") - start) * 1000.0, 3)
        for k in range(mocap.nframes)
    ]
    assert shown_ms == [0.0, 20.0, 30.0, 60.0, 60.0]


def test_bvh_frames_of_an_uneven_recording_keep_their_times() -> None:
    """A phone's variable-rate video, as /api/video answers it: 25 frames in its first
    second, then one every 120 ms. Written a line a frame at the mean interval, its first
    second played over three (the line at 960 ms at 2.88 s). The hips here move 1 m a
    second, so each motion frame's position says which moment it shows."""
    times = [i * 40.0 for i in range(25)] + [3000.0 + i * 120.0 for i in range(25)]
    recording = walking_hips(times)
    mocap = Bvh(to_bvh(parse_text(jsonl(recording))))
    assert mocap.nframes == len(times)
    assert mocap.frame_time == pytest.approx(times[-1] / 1000.0 / (len(times) - 1), abs=1e-6)
    start = mocap.frame_joint_channel(0, "hips", "Xposition")
    for k in range(mocap.nframes):
        # The moment shown is the line nearest the frame's time (up to the frame time's
        # six decimals, 49 frames on).
        due_s = k * mocap.frame_time
        nearest_s = min(abs(t / 1000.0 - due_s) for t in times)
        shown_s = mocap.frame_joint_channel(k, "hips", "Xposition") - start
        assert abs(shown_s - due_s) <= nearest_s + 1e-4, k
    # Evenly timed lines stay one a frame, in order.
    even = [{**line, "time_ms": i * 40.0} for i, line in enumerate(recording)]
    steady = Bvh(to_bvh(parse_text(jsonl(even))))
    assert [steady.frame_joint_channel(k, "hips", "Xposition") for k in range(len(even))] == [
        pytest.approx(line["rig"]["hips_position"][0] + start, abs=1e-6) for line in even
    ]


@pytest.mark.parametrize(
    ("bone", "axis", "degrees"),
    [
        ("rightHand", (0.0, 1.0, 0.0), range(160, 205, 5)),  # y through 180: the squat's legs
        ("leftLowerArm", (1.0, 0.0, 0.0), range(80, 105, 5)),  # x through 90: the other solution
    ],
)
def test_bvh_angles_go_on_from_frame_to_frame(
    bone: str, axis: tuple[float, float, float], degrees: range
) -> None:
    """A bone turning a few degrees a frame through where its angles wrap: the file said
    -178.7 then 178.4 (a reviewer's squat export, 26 such steps), and a reader that
    interpolates frames spun the bone the long way round. Each channel now moves as little
    as the rotation does, and the rotations are still the rig's."""
    turns = [quat.from_axis_angle(axis, math.radians(d)) for d in degrees]
    recording = [
        {"frame": i, "time_ms": i * 40.0, "landmarks": {}, "rig": {"bones": {bone: list(q)}}}
        for i, q in enumerate(turns)
    ]
    mocap = Bvh(to_bvh(parse_text(jsonl(recording))))
    channels = ["Zrotation", "Xrotation", "Yrotation"]
    rows = [mocap.frame_joint_channels(i, bone, channels) for i in range(len(turns))]
    for before, after in itertools.pairwise(rows):
        assert max(abs(a - b) for a, b in zip(before, after, strict=True)) < 5.0 + 1e-3, rows
    for i, q in enumerate(turns):
        assert abs(dot4(rotation(mocap, i, bone), q)) > 1.0 - 1e-9


async def test_bvh_eyes_look_where_the_rig_looks(recorded: list[Line]) -> None:
    # The signer's irises move: her eye bones turn with the rig's look expressions, as a
    # VMC receiver's do (rig/eyes.py), both eyes alike.
    mocap = Bvh(to_bvh(parse_text(jsonl(recorded))))
    turns = []
    for i, line in enumerate(recorded):
        looks = {k: v for k, v in line["rig"]["expressions"].items() if k.startswith("look")}
        assert set(looks) == {"lookUp", "lookDown", "lookLeft", "lookRight"}
        want = eye_rotation(looks)
        assert want is not None
        for eye in ("leftEye", "rightEye"):
            assert abs(dot4(rotation(mocap, i, eye), want)) > 1.0 - 1e-9, (i, eye)
        turns.append(turn_deg(want))
    assert max(turns) > 1.0  # not straight ahead throughout
    # A rig that names no look (a recording made elsewhere) keeps the last gaze.
    last = recorded[-1]
    blind = {**last, "frame": len(recorded), "time_ms": last["time_ms"] + 66.7}
    blind["rig"] = {**last["rig"], "expressions": {"aa": 0.0}}
    held = Bvh(to_bvh(parse_text(jsonl([*recorded, blind]))))
    assert held.frame_joint_channels(len(recorded), "leftEye", ["Zrotation"]) == (
        held.frame_joint_channels(len(recorded) - 1, "leftEye", ["Zrotation"])
    )


async def test_bvh_elbows_bend_as_the_landmarks_say(recorded: list[Line]) -> None:
    # Landmarks only (as /api/video writes without ?rig=1): the exporter solves the rig from
    # the image points, and each lower arm's turn is 180 degrees minus the elbow's angle.
    lines = landmarks_only(recorded)
    mocap = Bvh(to_bvh(parse_text(jsonl(lines))))
    size = (recorded[0]["image"]["width"], recorded[0]["image"]["height"])
    compared = 0
    for i, line in enumerate(lines):
        for side in ("left", "right"):
            expected = elbow_bend_deg(line, side, size)
            if expected is None:
                continue
            got = turn_deg(rotation(mocap, i, f"{side}LowerArm"))
            assert got == pytest.approx(expected, abs=0.1), (i, side)
            compared += 1
    assert compared >= FRAMES


async def test_bvh_bones_point_where_the_landmarks_do(recorded: list[Line], tmp_path: Path) -> None:
    # Another library's forward kinematics (pybvh) walks the hierarchy with the file's Euler
    # order, as an importer does: each arm bone must point from joint to joint as the
    # landmarks do, on the rig's axes (x right, y up, z toward the camera, z times 0.4).
    lines = landmarks_only(recorded)
    path = tmp_path / "take.bvh"
    path.write_text(to_bvh(parse_text(jsonl(lines))), encoding="utf-8")
    mocap = read_bvh_file(path, world_up="+y")
    positions, index = mocap.joint_positions(), mocap.joint_index
    width, height = recorded[0]["image"]["width"], recorded[0]["image"]["height"]
    scale = (width, -height, -width * POSE_Z_SCALE)
    compared = 0
    for f, line in enumerate(lines):
        pose = line["landmarks"]["pose"]
        at = [[p[k] * scale[k] for k in range(3)] for p in pose]
        for side, (shoulder, elbow, wrist) in SIDE_POINTS.items():
            if any(pose[i][3] < MIN_VISIBILITY for i in (shoulder, elbow, wrist)):
                continue
            for start, end, a, b in (
                (f"{side}UpperArm", f"{side}LowerArm", shoulder, elbow),
                (f"{side}LowerArm", f"{side}Hand", elbow, wrist),
            ):
                bone = [float(v) for v in positions[f, index[end]] - positions[f, index[start]]]
                seen = quat.sub(at[b], at[a])
                cos = quat.dot(bone, seen) / (quat.norm(bone) * quat.norm(seen))
                assert math.degrees(math.acos(min(1.0, cos))) < 0.01, (f, start)
                compared += 1
    assert compared >= 2 * FRAMES


# A rig's quaternions need not be unit length in a recording: read as the angles read them.
@pytest.mark.parametrize("length", [1.0, 2.0, 0.5])
def test_bvh_feet_stay_on_the_floor_and_a_jump_still_rises(tmp_path: Path, length: float) -> None:
    """The image's scale shrinks as a body bends from the camera, and the squat video's
    hips dropped 0.66 m where the legs allow 0.45: its ankles and toes went up to 0.25 m
    through the floor on 123 of 213 frames (pybvh's forward kinematics of a reviewer's
    export). Here the hips say 0.8 m down while the thighs are level and the shins upright
    (a squat's bottom): they stop where the toes' tips meet the floor. Standing, they stay
    at rest; jumping, they rise."""
    level = [v * length for v in quat.from_axis_angle((1.0, 0.0, 0.0), math.radians(-90.0))]
    upright = [v * length for v in quat.from_axis_angle((1.0, 0.0, 0.0), math.radians(90.0))]
    squat = {
        f"{side}{bone}": q
        for side in ("left", "right")
        for bone, q in (("UpperLeg", level), ("LowerLeg", upright))
    }
    rigs = [
        {"bones": {}, "hips_position": [0.0, -0.4, 0.0]},  # standing: the first frame's height
        {"bones": squat, "hips_position": [0.0, -1.2, 0.0]},
        {"bones": {}, "hips_position": [0.0, -0.2, 0.0]},  # 0.2 m off the ground
    ]
    recording = [
        {"frame": i, "time_ms": i * 40.0, "landmarks": {}, "rig": rig} for i, rig in enumerate(rigs)
    ]
    path = tmp_path / "squat.bvh"
    path.write_text(to_bvh(parse_text(jsonl(recording))), encoding="utf-8")
    mocap = read_bvh_file(path, world_up="+y")
    positions, index = mocap.joint_positions(), mocap.joint_index
    hips = [float(positions[f, index["hips"], 1]) for f in range(3)]
    rest_hips = REST_OFFSET["hips"][1]
    # Thigh 0.42 level, shin 0.40 and foot 0.05 down, the toe's tip 0.04 more: 0.55 under
    # the hips' joint, where at rest it is 0.97; the floor is the tip's rest height.
    assert hips == pytest.approx([rest_hips, rest_hips - 0.97 + 0.55, rest_hips + 0.2], abs=1e-4)
    toes = float(positions[1, index["leftToes"], 1])
    assert toes == pytest.approx(rest_hips - 0.97 + 0.04, abs=1e-4)


async def test_bvh_holds_the_last_pose_through_frames_without_one(recorded: list[Line]) -> None:
    # A frame where the model found nobody keeps its motion line, with the previous pose.
    nobody = {"pose": None, "face": None, "left_hand": None, "right_hand": None}
    last = recorded[-1]
    lines = [
        *recorded,
        {"frame": len(recorded), "time_ms": last["time_ms"] + 66.7, "landmarks": nobody},
    ]
    mocap = Bvh(to_bvh(parse_text(jsonl(lines))))
    assert mocap.nframes == len(lines)
    assert mocap.frames[-1][3:] == mocap.frames[-2][3:]


# -- CSV --------------------------------------------------------------------------------------


async def test_csv_has_a_row_per_frame_with_every_coordinate(recorded: list[Line]) -> None:
    rows = list(csv.reader(io.StringIO(table.to_csv(parse_text(jsonl(recorded))))))
    header, body = rows[0], rows[1:]
    assert len(body) == len(recorded)
    assert len(header) == 2 + 33 * 4 + 468 * 3 + 2 * 21 * 3 + 8 + len(NAMES) + 2
    assert header[:2] == ["time_ms", "frame"]
    assert header[-2 - len(NAMES) :] == [*NAMES, "exercise", "reps"]
    for name in ("left_elbow_deg", "right_knee_deg", "left_shoulder_deg", "right_hip_deg"):
        assert name in header
    col = {name: i for i, name in enumerate(header)}
    size = (recorded[0]["image"]["width"], recorded[0]["image"]["height"])
    for line, row in zip(recorded, body, strict=True):
        assert len(row) == len(header)
        assert float(row[col["time_ms"]]) == pytest.approx(line["time_ms"], abs=1e-3)
        marks = line["landmarks"]
        assert float(row[col["pose_nose_x"]]) == marks["pose"][0][0]
        assert float(row[col["pose_left_wrist_visibility"]]) == marks["pose"][15][3]
        assert float(row[col["face_467_z"]]) == marks["face"][467][2]
        hand = marks["right_hand"]
        cell = row[col["right_hand_20_y"]]
        assert cell == "" if hand is None else float(cell) == hand[20][1]
        assert row[col["reps"]] == str(line["fitness"]["reps"])
        shapes = line["rig"]["blendshapes"]
        assert [float(row[col[name]]) for name in NAMES] == [shapes[name] for name in NAMES]
        assert row[col["exercise"]] == "bicep_curl"
        # The elbow in the image plane: the rig's bend with no depth.
        bend = elbow_bend_flat(line, "left", size)
        cell = row[col["left_elbow_deg"]]
        assert cell == "" if bend is None else float(cell) == pytest.approx(bend, abs=0.06)
    assert any(row[col["left_elbow_deg"]] for row in body)


def elbow_bend_flat(line: Line, side: str, size: tuple[int, int]) -> float | None:
    pose = line["landmarks"]["pose"]
    if any(not -0.02 <= pose[i][c] <= 1.02 for i in SIDE_POINTS[side] for c in (0, 1)):
        return None
    flat = [[*p[:2], 0.0, p[3]] for p in pose]
    bend = elbow_bend_deg({"landmarks": {"pose": flat}}, side, size)
    return None if bend is None else 180.0 - bend


async def test_csv_without_fitness_has_no_reps_and_empty_missing_parts(
    recorded: list[Line],
) -> None:
    lines = landmarks_only(recorded)
    for line in lines:
        line["landmarks"] = {**line["landmarks"], "face": None}
    rows = list(csv.reader(io.StringIO(table.to_csv(parse_text(jsonl(lines))))))
    assert "reps" not in rows[0]
    assert "jawOpen" not in rows[0]  # no rig, so no blendshapes
    start = rows[0].index("face_0_x")
    assert all(cell == "" for row in rows[1:] for cell in row[start : start + 468 * 3])


def test_a_csv_cell_a_spreadsheet_would_take_for_a_formula_stays_text() -> None:
    """A recording's exercise went into the CSV as it was: "=cmd|' /C calc'!A0" is a formula
    to a spreadsheet (OWASP's CSV injection). Names the server writes are untouched."""
    names = ["=cmd|' /C calc'!A0", "+1", "-1+2", "@SUM(1)", "\tx", "push_up", None]
    recording = [
        {**GOOD, "frame": i, "time_ms": float(i), "fitness": {"exercise": name, "reps": 0}}
        for i, name in enumerate(names)
    ]
    rows = list(csv.reader(io.StringIO(table.to_csv(parse_text(jsonl(recording))))))
    column = rows[0].index("exercise")
    quoted = ["'" + name for name in names[:-2] if name is not None]
    # null is a field left out: an empty cell (the review of this change: a 500).
    assert [row[column] for row in rows[1:]] == [*quoted, "push_up", ""]


def test_csv_angle_columns_are_in_the_documented_order_to_a_tenth_of_a_degree() -> None:
    """docs/recordings.md: left_elbow_deg, right_elbow_deg, then the shoulders, hips and
    knees the same way; each cell the angle to 0.1 degree."""
    sides = ("left", "right")
    assert [c for c in table.header(False) if c.endswith("_deg")] == [
        f"{side}_{joint}_deg" for joint in ("elbow", "shoulder", "hip", "knee") for side in sides
    ]
    # Every point somewhere else, seen: no angle is a whole number of degrees here.
    pose = [[0.3 + 0.011 * i, 0.2 + 0.017 * (i * i % 29), 0.0, 1.0] for i in range(33)]
    cells = joint_angles(pose, (640, 480))
    points = to_points(pose, (640, 480), 0.0, range(33))
    for cell, name in zip(cells, table.ANGLES, strict=True):
        side, joint = name.split("_")
        ends = [points[INDEX[f"{side}_{point}"]] for point in table.JOINTS[joint]]
        assert cell == f"{round(angle(*ends), 1):.1f}", name


def test_an_angle_of_coinciding_points_is_an_empty_cell_not_nan() -> None:
    """A recording line whose pose points all coincide (a made-up or broken one) has no
    angles: the cells are empty, as where a point is not seen, not the text "nan"."""
    pose = [[0.5, 0.5, 0.0, 1.0]] * 33
    cells = joint_angles(pose, (640, 480))
    assert cells == [""] * len(cells)
    assert len(cells) == 8


async def test_csv_angles_are_the_counters_for_an_exercise_that_weighs_depth(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """The squat's counter adds z to its angles (its knee bends toward a camera in front);
    the CSV measured in the image plane only, 20 degrees off the line's own fitness angles
    on this clip (41 over the whole video). Unsmoothed, the two are the same landmarks."""
    clip = write_clip(MEDIA / "squat_everkinetic_640x360_30fps.mp4", tmp_path / "squat.mp4", 60)
    client = await make_client(Config(workers=1, video_max_fps=10.0))
    found = await lines(await post(client, clip.read_bytes(), "?exercise=squat&smoothing=off"))
    rows = list(csv.reader(io.StringIO(table.to_csv(parse_text(jsonl(found))))))
    col = {name: i for i, name in enumerate(rows[0])}
    compared = []
    for line, row in zip(found[:-1], rows[1:], strict=True):
        for name, degrees in line["fitness"]["angles"].items():
            if f"{name}_deg" in col:
                compared.append((float(row[col[f"{name}_deg"]]), degrees))
    assert len(compared) >= 40
    assert [csv_deg for csv_deg, _ in compared] == pytest.approx(
        [fitness_deg for _, fitness_deg in compared], abs=0.11
    )


# -- the recording's checks ---------------------------------------------------------------


def test_a_summary_line_ends_the_file_and_blank_lines_are_skipped() -> None:
    nobody = {"pose": None, "face": None, "left_hand": None, "right_hand": None}
    lines = [
        json.dumps({"frame": 0, "time_ms": 0.0, "landmarks": nobody}),
        "",
        json.dumps({"frame": 1, "time_ms": 40.0, "landmarks": nobody}),
        json.dumps({"summary": {"frames": 2}}),
        "",
    ]
    recording = parse(lines)
    assert [f.frame for f in recording.frames] == [0, 1]
    assert recording.summary == {"frames": 2}


def test_a_frame_the_video_api_could_not_track_is_skipped() -> None:
    nobody = {"pose": None, "face": None, "left_hand": None, "right_hand": None}
    lines = [
        json.dumps({"frame": 0, "time_ms": 0.0, "landmarks": nobody}),
        json.dumps({"frame": 1, "time_ms": 33.3, "error": "worker_crashed", "detail": "lost"}),
        json.dumps({"frame": 2, "time_ms": 66.7, "landmarks": nobody}),
    ]
    assert [f.frame for f in parse(lines).frames] == [0, 2]
    # Without the error field, a line with no landmarks is still a bad line.
    with pytest.raises(RecordingError, match="line 2"):
        parse([lines[0], json.dumps({"frame": 1, "time_ms": 33.3}), lines[2]])


GOOD = {"frame": 0, "time_ms": 0.0, "landmarks": {"pose": None}}


@pytest.mark.parametrize(
    ("second", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({**GOOD, "frame": True}), "frame must be an integer"),
        (json.dumps({**GOOD, "frame": -1}), "frame must be an integer"),
        (json.dumps({"frame": 1, "landmarks": {}}), "time_ms"),
        ('{"frame": 1, "time_ms": NaN, "landmarks": {}}', "NaN is not a JSON number"),
        ('{"frame": 1, "time_ms": 1e999, "landmarks": {}}', "time_ms must be a finite"),
        (json.dumps({**GOOD, "time_ms": -5.0}), "backwards"),
        (json.dumps({**GOOD, "landmarks": [1]}), "landmarks must be an object"),
        (json.dumps({**GOOD, "landmarks": {"pose": [[0, 0, 0, 1]] * 32}}), "33 points"),
        (json.dumps({**GOOD, "landmarks": {"face": [[0, 0]] * 468}}), "list of 3 numbers"),
        (json.dumps({**GOOD, "landmarks": {"face": [[0, 0, 0]] * 467 + [[0, 0]]}}), "3 numbers"),
        (json.dumps({**GOOD, "landmarks": {"left_hand": [["a", 0, 0]] * 21}}), "not a finite"),
        (json.dumps({**GOOD, "landmarks": {"right_hand": [[None, 0, 0]] * 21}}), "not a finite"),
        (
            '{"frame": 0, "time_ms": 0, "landmarks": {"pose": ['
            + ",".join(["[1e999, 0, 0, 1]"] * 33)
            + "]}}",
            "not a finite",
        ),
        (json.dumps({**GOOD, "rig": {"bones": {"hips": [0, 0, 1]}}}), "rig.bones.hips"),
        (json.dumps({**GOOD, "rig": {}}), "rig must be"),
        (json.dumps({**GOOD, "rig": {"bones": {}, "expressions": [1]}}), "rig.expressions"),
        (json.dumps({**GOOD, "rig": {"bones": {}, "blendshapes": {"jawOpen": "x"}}}), "rig.blend"),
        # Each blendshape is a CSV column on every row: 8000 made-up names grew a 0.9 MB
        # recording into 174 MB of CSV.
        (
            json.dumps({**GOOD, "rig": {"bones": {}, "blendshapes": {"jawOpen": 1, "n0": 0}}}),
            "rig.blendshapes.n0 is not one of the 51 blendshapes the server gives",
        ),
        # ARKit's, but MediaPipe's model does not make it: the message must not say 52.
        (
            json.dumps({**GOOD, "rig": {"bones": {}, "blendshapes": {"tongueOut": 0.5}}}),
            "rig.blendshapes.tongueOut is not one of the 51 blendshapes the server gives "
            "(ARKit's 52 but tongueOut)",
        ),
        (json.dumps({**GOOD, "rig": {"bones": {"\ud800": [1]}}}), 'rig.bones."\\ud800" must'),
        # Each is an OSC string in a replay: the surrogate stopped it with a traceback.
        (
            json.dumps({**GOOD, "rig": {"bones": {}, "expressions": {"\ud800x": 0.5}}}),
            'rig.expressions."\\ud800x" is not a name',
        ),
        (json.dumps({**GOOD, "rig": {"bones": {}, "expressions": {"a\x00b": 1}}}), "without NUL"),
        (json.dumps({**GOOD, "rig": {"bones": {}, "expressions": {"": 1}}}), "rig.expressions"),
        (json.dumps({**GOOD, "rig": {"bones": {}, "expressions": {"x" * 101: 1}}}), "1 to 100"),
        (json.dumps({**GOOD, "fitness": {"reps": 1.5}}), "fitness.reps"),
        (json.dumps({**GOOD, "image": {"width": 0, "height": 3}}), "image must be"),
        # Integers of any length are JSON: float() of these overflowed (a 500, a traceback).
        (json.dumps({**GOOD, "time_ms": 10**400}), "time_ms must be a finite number within"),
        (json.dumps({**GOOD, "rig": {"bones": {"hips": [10**400, 0, 0, 1]}}}), "rig.bones.hips"),
        (
            json.dumps({**GOOD, "rig": {"bones": {}, "hips_position": [0, -(10**400), 0]}}),
            "rig.hips_position",
        ),
        (json.dumps({**GOOD, "rig": {"bones": {}, "expressions": {"aa": 10**400}}}), "rig.expr"),
        (json.dumps({**GOOD, "image": {"width": 10**400, "height": 3}}), "each 1 to 10000000"),
        (json.dumps({**GOOD, "fitness": {"reps": 10**400}}), "fitness.reps"),
        # Both went into the CSV: a 400-digit frame number, and ['squat'] as Python prints it.
        (json.dumps({**GOOD, "frame": 10**400}), "frame must be an integer from 0 to 1,000,0"),
        (json.dumps({**GOOD, "fitness": {"exercise": ["squat"]}}), "fitness.exercise must be"),
        (json.dumps({**GOOD, "fitness": {"exercise": "s" * 101}}), "at most 100 characters"),
        # Finite but huge: they squared to inf in the rig and wrote inf and nan into the BVH.
        (json.dumps({**GOOD, "landmarks": {"pose": [[1e300, -1e300, 0, 1]] * 33}}), "within"),
        (json.dumps({**GOOD, "landmarks": {"pose": [[-(2**63), 0, 0, 1]] * 33}}), "within"),
        (json.dumps({**GOOD, "rig": {"bones": {}, "hips_position": [1e308, 0, 0]}}), "within"),
        (json.dumps({**GOOD, "rig": {"bones": {"hips": [0, 0, 1e300, 1]}}}), "within"),
    ],
)
def test_a_bad_line_is_named_with_its_reason(second: str, reason: str) -> None:
    with pytest.raises(RecordingError) as caught:
        parse([json.dumps(GOOD), second])
    assert caught.value.line == 2
    assert reason in str(caught.value)
    assert str(caught.value).startswith("line 2: ")


def test_a_pretty_printed_or_array_recording_is_refused_as_not_json_lines() -> None:
    """A recording indented to be read, or sent as one JSON array, is valid JSON that is
    not JSON lines: the reason says what a recording must be, not only what broke."""
    frames = [GOOD, {**GOOD, "frame": 1, "time_ms": 40.0}]
    pretty = "\n".join(json.dumps(frame, indent=2) for frame in frames)
    with pytest.raises(RecordingError, match=r"line 1: not valid JSON .*several lines"):
        parse_text(pretty)
    with pytest.raises(RecordingError, match=r"line 1: .*not an array.*one whole frame"):
        parse_text(json.dumps(frames))
    # A line broken by something else keeps its reason alone.
    with pytest.raises(RecordingError) as caught:
        parse_text(json.dumps(GOOD) + "\n{not json")
    assert "several lines" not in str(caught.value)


def test_frames_after_the_summary_and_empty_recordings_are_refused() -> None:
    with pytest.raises(RecordingError, match="line 2: a frame after the summary"):
        parse([json.dumps({"summary": {}}), json.dumps(GOOD)])
    with pytest.raises(RecordingError, match="no frames"):
        parse(["", json.dumps({"summary": {}})])


# -- VMC replay -------------------------------------------------------------------------------


async def test_the_replay_reaches_a_real_receiver_at_the_recordings_pace(
    recorded: list[Line],
) -> None:
    recording = parse_text(jsonl(recorded))
    loop = asyncio.get_running_loop()
    async with vmc_receiver() as (port, received):
        started = loop.time()
        sent = await replay(recording, Target("127.0.0.1", port))
        took = loop.time() - started
        await received.wait_frames(sent + 1)
    assert sent == len(recorded)
    # Then the rest pose, as the server's VMC out sends at a session's end: a receiver
    # would hold the last frame's gesture.
    assert received.frames == sent + 1
    assert at_rest(received.last_frame())
    assert not at_rest(received.complete_frames()[-2])
    # Real time: never faster than the recording (a lower bound cannot flake).
    assert took >= recording.duration_ms / 1000.0
    times = [args[0] for address, args in received.messages if address == "/VMC/Ext/T"]
    due = [line["time_ms"] / 1000.0 for line in recorded]
    assert times == pytest.approx([*due, due[-1]], abs=1e-4)
    bones = {args[0] for address, args in received.messages if address == "/VMC/Ext/Bone/Pos"}
    assert {"Hips", "LeftLowerArm", "RightUpperArm", "Head"} <= bones
    assert received.type_tags == VMC_TYPE_TAGS


def at_rest(frame: list[tuple[str, tuple[Any, ...]]]) -> bool:
    """Whether a VMC frame is the rest pose: the left arm down, every expression 0."""
    (arm,) = [
        a[4:] for address, a in frame if address == "/VMC/Ext/Bone/Pos" and a[0] == "LeftUpperArm"
    ]
    blends = {args[1] for address, args in frame if address == "/VMC/Ext/Blend/Val"}
    idle = to_unity_rotation(IDLE_BONES["leftUpperArm"])
    return bool(arm == pytest.approx(idle, abs=1e-4)) and blends == {0.0}


# -- the command line -------------------------------------------------------------------------


async def run_cli(*args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "webapp.export", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    out, err = await process.communicate(stdin)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_cli_writes_bvh_and_csv(recorded: list[Line], tmp_path: Path) -> None:
    source = tmp_path / "take.jsonl"
    source.write_text(jsonl(recorded), encoding="utf-8")
    code, out, err = await run_cli(str(source), "--to", "bvh")
    assert (code, err) == (0, "")
    assert Bvh(out).nframes == len(recorded)
    out_csv = tmp_path / "take.csv"
    code, out, err = await run_cli(str(source), "--to", "csv", "-o", str(out_csv))
    assert (code, out, err) == (0, "", "")
    assert len(out_csv.read_text(encoding="utf-8").splitlines()) == 1 + len(recorded)
    code, out, _ = await run_cli("-", "--to", "csv", stdin=source.read_bytes())
    assert code == 0
    assert out == out_csv.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--to", "vmc", "-o", "take.bvh"), "-o/--output is for bvh and csv"),
        (("--to", "bvh", "--target", "127.0.0.1:39539"), "--target is for --to vmc"),
    ],
)
async def test_the_cli_refuses_a_flag_of_the_other_kind_of_output(
    tmp_path: Path, args: tuple[str, ...], said: str
) -> None:
    # `--to vmc -o take.bvh` sent the take to the default receiver and wrote no file.
    source = tmp_path / "take.jsonl"
    source.write_text(json.dumps(GOOD) + "\n")
    code, out, err = await run_cli(str(source), *args)
    assert (code, out) == (2, "")
    assert f"python -m webapp.export: error: {said}" in err


async def test_the_cli_writes_a_lone_surrogate_as_the_server_does(tmp_path: Path) -> None:
    """A recording's own text (an exercise's name, a JSON escape) with a lone surrogate: the
    server writes it as its escape; the command line stopped with a traceback."""
    source = tmp_path / "odd.jsonl"
    source.write_text(json.dumps({**GOOD, "fitness": {"exercise": "\ud800x", "reps": 1}}) + "\n")
    out_csv = tmp_path / "odd.csv"
    code, out, err = await run_cli(str(source), "--to", "csv", "-o", str(out_csv))
    assert (code, out, err) == (0, "", "")
    assert out_csv.read_text(encoding="utf-8").splitlines()[1].endswith(",\\ud800x,1")
    code, out, err = await run_cli(str(source), "--to", "csv")
    assert (code, err) == (0, "")
    assert out == out_csv.read_text(encoding="utf-8")


async def test_the_cli_refuses_to_replay_an_expression_no_osc_string_holds(
    tmp_path: Path,
) -> None:
    """A lone surrogate in an expression's name (a JSON escape) stopped the VMC replay with
    a traceback; a name in any other script is sent."""
    source = tmp_path / "odd.jsonl"
    line = {**GOOD, "rig": {"bones": {"hips": [0, 0, 0, 1]}, "expressions": {"\ud800x": 0.5}}}
    source.write_text(json.dumps(line) + "\n")
    async with vmc_receiver() as (port, received):
        code, out, err = await run_cli(str(source), "--to", "vmc", "--target", f"127.0.0.1:{port}")
        assert (code, out) == (1, "")
        assert "Traceback" not in err
        assert 'line 1: rig.expressions."\\ud800x" is not a name' in err
        line["rig"]["expressions"] = {"笑顔": 0.5}  # type: ignore[index]
        source.write_text(json.dumps(line) + "\n", encoding="utf-8")
        code, _, err = await run_cli(str(source), "--to", "vmc", "--target", f"127.0.0.1:{port}")
        assert (code, err) == (0, "sent 1 frames to 127.0.0.1:" + str(port) + "\n")
        await received.wait_frames(1)
        values = [
            args
            for address, args in received.complete_frames()[0]
            if address == "/VMC/Ext/Blend/Val"
        ]
        assert ["笑顔", 0.5] in [list(v) for v in values]


async def test_a_replay_rests_the_receiver_once_nobody_has_been_seen_for_a_while(
    recorded: list[Line],
) -> None:
    """As the server's VMC out: three frames with a pose, then 2.4 s of frames with none
    (the person walked off): once none has had a pose for 2 s, the rest pose, before the
    one at the end. It held the last gesture to the end of the recording."""
    poses = recorded[:3]
    last_ms = poses[-1]["time_ms"]
    away = [
        {"frame": 3 + i, "time_ms": last_ms + 200.0 * (i + 1), "landmarks": {"pose": None}}
        for i in range(12)
    ]
    recording = parse_text(jsonl(poses + away))
    async with vmc_receiver() as (port, received):
        sent = await replay(recording, Target("127.0.0.1", port))
        await received.wait_frames(sent + 2)
        frames = received.complete_frames()
    assert sent == 3
    assert not any(at_rest(f) for f in frames[:3])
    assert len(frames) >= 5  # a rest while away, and the one at the end
    assert all(at_rest(f) for f in frames[3:])
    # Its time, from the first frame's: 2 s or more after the last pose's.
    (rest_time,) = [args[0] for address, args in frames[3] if address == "/VMC/Ext/T"]
    assert rest_time >= (last_ms - poses[0]["time_ms"]) / 1000.0 + UNSEEN_SECONDS - 1e-3


async def test_the_cli_replays_vmc(recorded: list[Line], tmp_path: Path) -> None:
    source = tmp_path / "take.jsonl"
    source.write_text(jsonl(recorded[:10]), encoding="utf-8")
    async with vmc_receiver() as (port, received), vmc_receiver() as (port_2, received_2):
        to = f"127.0.0.1:{port},127.0.0.1:{port_2}"
        code, _, err = await run_cli(str(source), "--to", "vmc", "--target", to)
        await received.wait_frames(10)
        await received_2.wait_frames(10)
    assert code == 0
    assert f"sent 10 frames to 127.0.0.1:{port}, 127.0.0.1:{port_2}" in err
    assert received.messages == received_2.messages


def default_signals() -> None:
    # As from a terminal or a service manager: a test run as a shell's background job would
    # otherwise hand the CLI its ignored SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
async def test_a_stopped_replay_says_so_and_leaves_the_receiver_at_rest(
    recorded: list[Line], tmp_path: Path, signum: signal.Signals, status: int
) -> None:
    """Ctrl-C (or kill) halfway through a replay: one line, 128 + the signal, and the
    avatar at rest rather than frozen in the last frame's gesture."""
    source = tmp_path / "take.jsonl"
    # A frame a second: the signal comes long before the end.
    source.write_text(jsonl([{**line, "time_ms": i * 1000} for i, line in enumerate(recorded)]))
    async with vmc_receiver() as (port, received):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "webapp.export", str(source), "--to", "vmc",
            "--target", f"127.0.0.1:{port}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
            preexec_fn=default_signals,
        )  # fmt: skip
        try:
            await received.wait_frames(2)
            assert not at_rest(received.last_frame())
            process.send_signal(signum)
            async with asyncio.timeout(30):
                out, err = await process.communicate()
            await received.wait_until(lambda: at_rest(received.last_frame()))
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == status
    assert (out.decode(), err.decode()) == ("", f"stopped by {signum.name}\n")
    assert received.frames < len(recorded)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
@pytest.mark.parametrize(("lines", "to"), [(FRAMES, "csv"), (1, "bvh")])
async def test_a_full_standard_output_is_one_line(
    recorded: list[Line], tmp_path: Path, lines: int, to: str
) -> None:
    """A full disk under `> take.csv` is said as -o's is, whether the text fails on its way
    out (the long CSV) or would sit in the buffer until the interpreter's exit (one frame)."""
    source = tmp_path / "take.jsonl"
    source.write_text(jsonl(recorded[:lines]), encoding="utf-8")
    with open("/dev/full", "wb") as full:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "webapp.export", str(source), "--to", to,
            stdout=full, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
        )  # fmt: skip
        _, err = await process.communicate()
    assert process.returncode == 1
    assert err.decode() == "cannot write standard output: [Errno 28] No space left on device\n"


async def test_the_cli_names_the_line_of_a_huge_number_and_reads_a_bom(tmp_path: Path) -> None:
    huge = tmp_path / "huge.jsonl"
    huge.write_text(json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "time_ms": 10**400}) + "\n")
    for to in ("bvh", "csv"):
        code, out, err = await run_cli(str(huge), "--to", to)
        assert (code, out) == (1, "")
        assert "line 2: time_ms must be a finite number within" in err
        assert "Traceback" not in err
    # A byte order mark, as some Windows editors write, before the first line.
    marked = tmp_path / "marked.jsonl"
    marked.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\n")
    code, out, err = await run_cli(str(marked), "--to", "csv")
    assert (code, err) == (0, "")
    assert len(out.splitlines()) == 2
    code, out, err = await run_cli("-", "--to", "bvh", stdin=marked.read_bytes())
    assert (code, err) == (0, "")
    assert Bvh(out).nframes == 1


async def test_a_recording_redirected_by_windows_powershell_is_read(
    recorded: list[Line], tmp_path: Path
) -> None:
    """Windows PowerShell 5's `curl.exe ... /api/video > take.jsonl` writes UTF-16 with its
    mark: the CLI said "'utf-8' codec can't decode byte 0xff in position 0"."""
    plain = tmp_path / "take.jsonl"
    plain.write_text(jsonl(recorded[:3]), encoding="utf-8")
    code, expected, err = await run_cli(str(plain), "--to", "csv")
    assert (code, err) == (0, "")
    text = jsonl(recorded[:3])
    for name, data in [
        ("le", codecs.BOM_UTF16_LE + text.encode("utf-16-le")),
        ("be", codecs.BOM_UTF16_BE + text.encode("utf-16-be")),
    ]:
        wide = tmp_path / f"{name}.jsonl"
        wide.write_bytes(data)
        code, out, err = await run_cli(str(wide), "--to", "csv")
        assert (code, err) == (0, ""), name
        assert out == expected


async def test_the_cli_says_what_is_wrong(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(GOOD) + "\n{oops\n", encoding="utf-8")
    code, out, err = await run_cli(str(bad), "--to", "csv")
    assert (code, out) == (1, "")
    assert "line 2: not valid JSON" in err
    code, _, err = await run_cli(str(tmp_path / "missing.jsonl"), "--to", "bvh")
    assert code == 1
    assert "cannot read" in err
    code, _, err = await run_cli(str(bad), "--to", "fbx")
    assert code == 2
    assert "invalid choice" in err
    code, _, err = await run_cli(str(bad), "--to", "vmc", "--target", "nowhere")
    assert code == 2
    assert "--target" in err
    code, _, err = await run_cli(str(bad), "--to", "vmc", "--target", ",")
    assert code == 2
    assert "--target: name at least one receiver" in err


# -- POST /api/export -------------------------------------------------------------------------

ExportClient = Callable[..., Awaitable[Client]]


@pytest.fixture
def export_client(aiohttp_client: Callable[[web.Application], Awaitable[Client]]) -> ExportClient:
    """The export route alone: it needs no workers."""

    async def build(**settings: Any) -> Client:
        app = web.Application(middlewares=[json_errors])
        app[CONFIG] = Config(**settings)
        setup_export_routes(app)
        return await aiohttp_client(app)

    return build


NDJSON = {"Content-Type": "application/x-ndjson"}


async def test_export_answers_bvh_and_csv(
    export_client: ExportClient, recorded: list[Line]
) -> None:
    client = await export_client()
    body = jsonl(recorded)
    response = await client.post("/api/export?format=bvh", data=body, headers=NDJSON)
    assert response.status == 200
    # Bytes, so no charset (it was "application/octet-stream; charset=utf-8").
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="holotrack-recording.bvh"'
    )
    assert Bvh(await response.text()).nframes == len(recorded)
    response = await client.post("/api/export?format=csv", data=body, headers=NDJSON)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="holotrack-recording.csv"' in response.headers["Content-Disposition"]
    assert len((await response.text()).splitlines()) == 1 + len(recorded)


async def test_export_reads_a_recording_in_utf16_with_its_mark(
    export_client: ExportClient, recorded: list[Line]
) -> None:
    """As Windows PowerShell 5's `>` saved `curl.exe ... /api/video`'s answer: it was 400,
    "the recording is not UTF-8 text"."""
    client = await export_client()
    text = jsonl(recorded[:3])
    expected = await client.post("/api/export?format=csv", data=text, headers=NDJSON)
    wide = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    response = await client.post("/api/export?format=csv", data=wide, headers=NDJSON)
    assert response.status == 200, await response.text()
    assert await response.read() == await expected.read()


async def test_a_broken_utf16_recording_is_not_said_to_be_utf8(
    export_client: ExportClient, recorded: list[Line]
) -> None:
    """A file after UTF-16's mark is read as UTF-16: one cut mid-character was refused as
    "not UTF-8 text", which it never claimed to be."""
    client = await export_client()
    wide = codecs.BOM_UTF16_LE + jsonl(recorded[:3]).encode("utf-16-le")
    response = await client.post("/api/export?format=csv", data=wide[:-1], headers=NDJSON)
    assert response.status == 400
    answer = await response.json()
    assert answer["error"] == "bad_recording"
    cut = len(wide) - 2  # the odd byte left after the cut
    assert answer["detail"] == f"the recording is not UTF-16 text (at byte {cut}): truncated data"
    plain = b"\xff" + jsonl(recorded[:1]).encode()
    response = await client.post("/api/export?format=csv", data=plain, headers=NDJSON)
    detail = (await response.json())["detail"]
    assert detail == "the recording is not UTF-8 text (at byte 0): invalid start byte"


async def test_export_refusals(export_client: ExportClient, recorded: list[Line]) -> None:
    body = jsonl(recorded[:3])
    client = await export_client(max_export_bytes=len(body))

    async def refused(url: str, data: bytes | str, status: int, code: str, **headers: str) -> str:
        response = await client.post(url, data=data, headers=headers or NDJSON)
        assert response.status == status
        answer = await response.json()
        assert answer["error"] == code
        detail: str = answer["detail"]
        return detail

    assert "bvh or csv" in await refused("/api/export", body, 400, "bad_request")
    assert "bvh or csv" in await refused("/api/export?format=fbx", body, 400, "bad_request")
    twice = await refused("/api/export?format=csv&format=bvh", body, 400, "bad_request")
    assert "format once" in twice
    # Taken as if it meant something (the export review), where /api/video says no.
    other = await refused("/api/export?format=bvh&units=cm", body, 400, "bad_request")
    assert other == "unknown query parameter 'units'; the only one is format"
    bad = body + '{"frame": 3, "time_ms": 1}\n'
    client = await export_client(max_export_bytes=len(bad))
    detail = await refused("/api/export?format=bvh", bad, 400, "bad_recording")
    assert detail == "line 4: landmarks must be an object (the shape POST /predict returns)"
    await refused("/api/export?format=csv", b"\xff\xfe" + b"x" * 10, 400, "bad_recording")
    # A client's text with a lone surrogate (a JSON escape), quoted in the refusal or written
    # into the CSV, as an escape: it broke the error's JSON, and the CSV's UTF-8 (500s).
    odd = json.dumps({**GOOD, "rig": {"bones": {"\ud800": [1]}}})
    detail = await refused("/api/export?format=bvh", odd, 400, "bad_recording")
    assert detail.startswith('line 1: rig.bones."\\ud800" must be'), detail
    odd = json.dumps({**GOOD, "fitness": {"exercise": "\ud800", "reps": 1}})
    response = await client.post("/api/export?format=csv", data=odd, headers=NDJSON)
    assert response.status == 200
    assert (await response.text()).splitlines()[1].endswith(",\\ud800,1")
    await refused("/api/export?format=csv", "", 400, "empty")
    await refused(
        "/api/export?format=csv", body, 415, "unsupported_type", **{"Content-Type": "image/png"}
    )
    await refused("/api/export?format=csv", bad + " ", 413, "too_large")

    async def chunks() -> Any:
        # No Content-Length: the limit holds on what arrives.
        for _ in range(3):
            yield bad.encode()

    response = await client.post("/api/export?format=csv", data=chunks(), headers=NDJSON)
    assert response.status == 413


async def test_export_refuses_more_than_its_share_at_once(
    export_client: ExportClient, recorded: list[Line]
) -> None:
    client = await export_client()
    gate = client.app[EXPORTS]
    for slots, limit, doing in (
        (gate.conversions, MAX_EXPORTS, "converting"),
        (gate.uploads, MAX_UPLOADS, "uploading"),
    ):
        slots.running = limit  # as if that many were under way
        response = await client.post(
            "/api/export?format=csv", data=jsonl(recorded[:2]), headers=NDJSON
        )
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert await response.json() == {
            "error": "busy",
            "detail": f"{limit} exports are {doing}; try again in a moment",
        }
        slots.running = 0
    response = await client.post("/api/export?format=csv", data=jsonl(recorded[:2]), headers=NDJSON)
    assert response.status == 200


MINIMAL = json.dumps({"frame": 0, "time_ms": 0, "landmarks": {}}) + "\n"


async def test_export_refuses_more_frames_than_its_limit(export_client: ExportClient) -> None:
    # 2 MB of one-frame lines made a 90 MB CSV, 32 MB (within --max-export-bytes) a 1.4 GB
    # one and 5.6 GB in the server: the frames, not the bytes, set the output's size.
    client = await export_client(max_export_frames=3)
    for fmt in ("bvh", "csv"):
        response = await client.post(f"/api/export?format={fmt}", data=MINIMAL * 4, headers=NDJSON)
        assert response.status == 413
        assert await response.json() == {
            "error": "too_large",
            "detail": "the recording has more than 3 frames (at line 4); the limit is "
            "--max-export-frames",
        }
    # Lines that are not frames (a summary, blank lines) do not count.
    body = MINIMAL * 3 + "\n\n" + json.dumps({"summary": {}}) + "\n"
    response = await client.post("/api/export?format=csv", data=body, headers=NDJSON)
    assert response.status == 200
    assert len((await response.text()).splitlines()) == 4


def test_the_frame_limit_is_a_flag_with_an_environment_twin() -> None:
    assert load_config([], environ={}).max_export_frames == 18_000
    env = {"HOLOTRACK_MAX_EXPORT_FRAMES": "500"}
    assert load_config([], environ=env).max_export_frames == 500
    assert load_config(["--max-export-frames", "40"], environ=env).max_export_frames == 40
    with pytest.raises(SystemExit) as exited:
        load_config(["--max-export-frames", "0"], environ={})
    assert exited.value.code == 2


async def test_export_reads_a_bom_and_names_the_line_of_a_huge_number(
    export_client: ExportClient,
) -> None:
    client = await export_client()
    response = await client.post(
        "/api/export?format=bvh", data=b"\xef\xbb\xbf" + MINIMAL.encode() * 2, headers=NDJSON
    )
    assert response.status == 200
    assert Bvh(await response.text()).nframes == 2
    for line, start in (
        ({**GOOD, "time_ms": 10**400}, "line 2: time_ms must be"),
        ({**GOOD, "rig": {"bones": {"hips": [0, 0, -(10**400), 1]}}}, "line 2: rig.bones.hips"),
        ({**GOOD, "image": {"width": 10**400, "height": 9}}, "line 2: image must be"),
        ({**GOOD, "landmarks": {"pose": [[1e300, 0.5, 0, 1]] * 33}}, "line 2: landmarks.pose"),
    ):
        for fmt in ("bvh", "csv"):
            body = MINIMAL + json.dumps(line) + "\n"
            response = await client.post(f"/api/export?format={fmt}", data=body, headers=NDJSON)
            assert response.status == 400, (line, fmt)
            answer = await response.json()
            assert answer["error"] == "bad_recording"
            assert answer["detail"].startswith(start)


async def test_an_export_after_its_idle_process_was_killed_runs_on_a_new_one(
    export_client: ExportClient,
) -> None:
    """As the OOM killer would between two exports: every later export answered 500
    text/plain with a BrokenProcessPool traceback until the server restarted; then the next
    one still did, said to have died "during the conversion" though none had run."""
    client = await export_client()
    response = await client.post("/api/export?format=csv", data=MINIMAL, headers=NDJSON)
    assert response.status == 200
    executor = client.app[EXPORT_POOL].executor
    (child,) = executor._processes.values()
    child.kill()
    # Its manager thread ends once it has seen the process die: the pool is broken then.
    manager = cast(threading.Thread, executor._executor_manager_thread)
    await asyncio.to_thread(manager.join)
    for fmt in ("csv", "bvh"):
        response = await client.post(f"/api/export?format={fmt}", data=MINIMAL, headers=NDJSON)
        assert response.status == 200


async def test_export_runs_again_after_its_process_is_killed_converting(
    export_client: ExportClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = await export_client()
    pool = client.app[EXPORT_POOL]
    converting = asyncio.Event()
    run = pool.run

    async def killed_converting(fn: Callable[..., Any], *args: object) -> Any:
        pool.run = run  # type: ignore[method-assign]
        running = asyncio.ensure_future(run(time.sleep, 60.0))
        converting.set()
        return await running

    pool.run = killed_converting  # type: ignore[method-assign]
    answer = asyncio.ensure_future(
        client.post("/api/export?format=csv", data=MINIMAL, headers=NDJSON)
    )
    async with asyncio.timeout(30):
        await converting.wait()
    (child,) = pool.executor._processes.values()
    child.kill()
    response = await answer
    assert response.status == 500
    assert await response.json() == {
        "error": "worker_crashed",
        "detail": "the export's process died during the conversion (killed, perhaps out of "
        "memory); it has been restarted, so the next export can run",
    }
    assert "export: the conversion's process died" in caplog.text
    for fmt in ("csv", "bvh"):
        response = await client.post(f"/api/export?format={fmt}", data=MINIMAL, headers=NDJSON)
        assert response.status == 200


async def test_a_terminals_ctrl_c_leaves_the_exports_process_to_the_server() -> None:
    # Ctrl-C goes to the terminal's whole process group: the export's process died of it
    # with a KeyboardInterrupt traceback before the server had begun to close down.
    pool = ExportPool(1, 0)
    try:
        assert await pool.run(signal.getsignal, signal.SIGINT) == signal.SIG_IGN
        pid = await pool.run(os.getpid)
        os.kill(pid, signal.SIGINT)
        assert await pool.run(os.getpid) == pid
    finally:
        await asyncio.to_thread(pool.shutdown)


class WatchedSlots(Slots):
    """The gate's upload slots, telling the test when a handler takes or gives one back."""

    def __init__(self, limit: int, per_client: int = 0) -> None:
        super().__init__(limit, per_client)
        self.changed = asyncio.Event()

    def enter(self, client: str = "") -> bool:
        self.changed.set()
        return super().enter(client)

    def leave(self, client: str = "") -> None:
        super().leave(client)
        self.changed.set()

    async def until(self, running: int) -> None:
        async with asyncio.timeout(10):
            while self.running != running:
                self.changed.clear()
                await self.changed.wait()


async def slow_upload(client: Client) -> asyncio.StreamWriter:
    """An export whose body arrives no further than its first bytes."""
    _, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(
        b"POST /api/export?format=csv HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-ndjson\r\nContent-Length: 1000\r\n\r\n" + b'{"frame":0,'
    )
    await writer.drain()
    return writer


async def test_a_slow_upload_does_not_hold_off_another_export(export_client: ExportClient) -> None:
    # The conversion's slot was taken before the body was read: one client trickling its
    # body kept every other export at 503 for the whole --upload-timeout.
    client = await export_client(upload_timeout=60.0)
    uploads = client.app[EXPORTS].uploads = WatchedSlots(MAX_UPLOADS)
    writer = await slow_upload(client)
    await uploads.until(1)
    response = await client.post("/api/export?format=csv", data=MINIMAL, headers=NDJSON)
    assert response.status == 200
    assert len((await response.text()).splitlines()) == 2
    assert uploads.running == 1  # the slow one is still arriving
    writer.close()
    await writer.wait_closed()
    await uploads.until(0)


async def test_one_address_trickling_uploads_leaves_the_others_room(
    export_client: ExportClient,
) -> None:
    """Four sockets of one client, each trickling its body, kept every export at 503 for
    the whole --upload-timeout; one address now holds at most two upload slots."""
    client = await export_client(upload_timeout=60.0)
    uploads = client.app[EXPORTS].uploads = WatchedSlots(MAX_UPLOADS, MAX_UPLOADS_PER_CLIENT)
    slow = [await slow_upload(client) for _ in range(MAX_UPLOADS_PER_CLIENT)]
    await uploads.until(MAX_UPLOADS_PER_CLIENT)
    response = await client.post("/api/export?format=csv", data=MINIMAL, headers=NDJSON)
    assert response.status == 503
    assert (await response.json())["detail"] == (
        "this address has 2 exports uploading, the most one may; try again when one is in"
    )
    assert uploads.running == MAX_UPLOADS_PER_CLIENT < MAX_UPLOADS  # room for others
    for writer in slow:
        writer.close()
        await writer.wait_closed()
    await uploads.until(0)
    response = await client.post("/api/export?format=csv", data=MINIMAL, headers=NDJSON)
    assert response.status == 200


async def test_a_client_leaving_mid_upload_is_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # It logged "Error handling request" with a ConnectionResetError traceback. A runner of
    # our own that lets the handler run on and read the error (aiohttp's default): the test
    # server and webapp/__main__.py cancel a handler whose client leaves, but the read may
    # still come first.
    caplog.set_level(logging.INFO)
    app = web.Application(middlewares=[json_errors])
    app[CONFIG] = Config()
    setup_export_routes(app)
    uploads = app[EXPORTS].uploads = WatchedSlots(MAX_UPLOADS)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        _, writer = await asyncio.open_connection(host, port)
        writer.write(
            b"POST /api/export?format=csv HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-ndjson\r\nContent-Length: 100000\r\n\r\n"
            + MINIMAL.encode()
        )
        await writer.drain()
        await uploads.until(1)
        writer.close()
        await writer.wait_closed()
        await uploads.until(0)
    finally:
        await runner.cleanup()
    assert "export: the client closed the connection during the upload" in caplog.text
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_conversion_under_way_at_shutdown_is_answered_and_does_not_hold_the_exit() -> None:
    """SIGTERM cut the connection of a 32 MB export converting with no status, 3 s into the
    shutdown, and the server's exit then waited for the conversion's end (11.5 s after
    SIGTERM here; a CSV of 32 MB takes 15 s): a 503 that says why, and the process ended."""
    app = web.Application(middlewares=[json_errors])
    app[CONFIG] = Config()
    setup_export_routes(app)
    # As webapp/__main__.py runs the app.
    runner = web.AppRunner(app, shutdown_timeout=3.0, handler_cancellation=True)
    await runner.setup()
    pool = app[EXPORT_POOL]
    converting = asyncio.Event()
    run = pool.run

    async def a_long_conversion(fn: Callable[..., Any], *args: object) -> Any:
        running = asyncio.ensure_future(run(time.sleep, 60.0))
        converting.set()
        return await running

    pool.run = a_long_conversion  # type: ignore[method-assign]
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        async with aiohttp.ClientSession() as http:
            url = f"http://{host}:{port}/api/export?format=csv"
            response = asyncio.ensure_future(http.post(url, data=MINIMAL, headers=NDJSON))
            async with asyncio.timeout(30):
                await converting.wait()
            processes = list(pool.executor._processes.values())
            assert [p.is_alive() for p in processes] == [True]
            async with asyncio.timeout(20):
                await runner.cleanup()
                answer = await response
                assert answer.status == 503
                assert (await answer.json())["detail"] == (
                    "the server is shutting down: the export stopped; send the recording again"
                )
    finally:
        await runner.cleanup()
    assert [p.is_alive() for p in processes] == [False]


async def test_a_conversion_whose_client_left_holds_its_slot_until_it_ends(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
) -> None:
    """The process cannot be stopped mid-conversion: when its client left, the slot was
    freed at once and the next export queued behind it instead of a 503 (a review: a
    1-line export waited 21 s after five clients had left theirs)."""
    handled = asyncio.Event()

    @web.middleware
    async def note_the_end(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        finally:
            handled.set()

    app = web.Application(middlewares=[json_errors, note_the_end])
    app[CONFIG] = Config()
    setup_export_routes(app)
    client = await aiohttp_client(app)
    conversions = app[EXPORTS].conversions = WatchedSlots(MAX_EXPORTS)
    pool = app[EXPORT_POOL]
    converting, finish = asyncio.Event(), asyncio.Event()
    run = pool.run

    async def the_first_held(fn: Callable[..., Any], *args: object) -> Any:
        if not converting.is_set():
            converting.set()
            await finish.wait()
        return await run(fn, *args)

    pool.run = the_first_held  # type: ignore[method-assign]
    _, writer = await asyncio.open_connection(client.server.host, client.server.port)
    body = MINIMAL.encode()
    writer.write(
        b"POST /api/export?format=csv HTTP/1.1\r\nHost: x\r\nContent-Type: "
        b"application/x-ndjson\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    await writer.drain()
    async with asyncio.timeout(30):
        await converting.wait()
    writer.close()
    await writer.wait_closed()
    async with asyncio.timeout(30):
        await handled.wait()  # its handler cancelled, its conversion still running
    refused = await client.post("/api/export?format=csv", data=MINIMAL, headers=NDJSON)
    assert refused.status == 503
    finish.set()
    await conversions.until(0)
    response = await client.post("/api/export?format=csv", data=MINIMAL, headers=NDJSON)
    assert response.status == 200


async def test_the_export_process_is_in_the_per_process_metrics(
    make_client: MakeClient, recorded: list[Line]
) -> None:
    """The export's process stays after its first export, 80-130 MB of the pod's memory
    limit: /metrics showed the server and its workers only, so the memory alert, summing
    them against the limit, missed it."""
    client = await make_client(Config(workers=1))
    registry = client.app[METRICS].registry
    memory, cpu = "holotrack_process_resident_bytes", "holotrack_process_cpu_seconds_total"
    assert registry.get_sample_value(memory, {"process": "export"}) is None
    response = await client.post("/api/export?format=csv", data=jsonl(recorded), headers=NDJSON)
    assert response.status == 200
    resident = registry.get_sample_value(memory, {"process": "export"})
    assert resident is not None
    assert resident > 20e6  # a Python process with the export's imports
    seconds = registry.get_sample_value(cpu, {"process": "export"})
    assert seconds is not None
    assert seconds > 0
