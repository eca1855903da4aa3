"""The rig solver on real landmarks (the real model over media/), and its quaternion math."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from bench.recordings import FloatArray, Recording
from tests.landmarks import asl, gesture, pushups, squat, stills
from webapp.analysis import AvatarOptions, AvatarSession
from webapp.analysis.rig import (
    EXPRESSIONS,
    Rig,
    arms,
    face,
    hands,
    mirrored,
    quat,
    solve,
    to_rig_space,
)
from webapp.analysis.rig.arms import RELAXED
from webapp.analysis.rig.bones import PARENT, Pose
from webapp.analysis.rig.calibration import (
    OPEN_MAX,
    OPEN_MIN,
    OPEN_OVER_MEDIAN,
    PRIOR_FRAMES,
    PRIOR_OPENING,
    WINDOW_FRAMES,
    EyeCalibration,
)
from webapp.analysis.rig.solve import POSE_Z_SCALE
from webapp.analysis.rig.straight_ahead import head_in_chest
from webapp.analysis.rig.torso import HEAD_TURN_LIMIT_DEG

# VRM 1.0 humanoid bone names, written out from the specification (VRMC_vrm-1.0 humanoid).
_SIDED = [
    "UpperLeg", "LowerLeg", "Foot", "Toes", "Shoulder", "UpperArm", "LowerArm", "Hand", "Eye",
    "ThumbMetacarpal", "ThumbProximal", "ThumbDistal",
    "IndexProximal", "IndexIntermediate", "IndexDistal",
    "MiddleProximal", "MiddleIntermediate", "MiddleDistal",
    "RingProximal", "RingIntermediate", "RingDistal",
    "LittleProximal", "LittleIntermediate", "LittleDistal",
]  # fmt: skip
VRM_BONES = {"hips", "spine", "chest", "upperChest", "neck", "head", "jaw"} | {
    side + name for side in ("left", "right") for name in _SIDED
}
ALWAYS = {"hips", "spine", "chest", "neck", "head"} | {
    f"{side}{bone}" for side in ("left", "right") for bone in ("UpperArm", "LowerArm", "Hand")
}
VRM_EXPRESSIONS = {
    "happy", "angry", "sad", "relaxed", "surprised", "aa", "ih", "ou", "ee", "oh",
    "blink", "blinkLeft", "blinkRight", "lookUp", "lookDown", "lookLeft", "lookRight", "neutral",
}  # fmt: skip


def all_rigs() -> list[tuple[str, Rig, dict[str, FloatArray | None]]]:
    out = []
    for rec in [asl(), gesture(), pushups(), *stills()]:
        for i in range(len(rec)):
            rig = solve(rec.frame(i), rec.width, rec.height)
            if rig is not None:
                out.append((f"{rec.name}[{i}]", rig, rec.frame(i)))
    return out


def solved_with_points(recs: list[Recording]) -> Iterator[tuple[Rig, FloatArray, list[quat.Vec]]]:
    """Each frame of `recs` with its rig, its pose and the pose's points on the rig's axes
    (every frame of these recordings has a pose)."""
    for rec in recs:
        for i in range(len(rec)):
            lm = rec.frame(i)
            rig = solve(lm, rec.width, rec.height)
            pose = lm["pose"]
            assert rig is not None
            assert pose is not None
            yield rig, pose, to_rig_space(pose, rec.width, rec.height, POSE_Z_SCALE)


def angle_between(a: quat.Quat, b: quat.Quat) -> float:
    return math.degrees(quat.angle(quat.multiply(quat.inverse(a), b)))


def test_every_bone_is_a_vrm_bone_and_every_rotation_a_unit_quaternion() -> None:
    rigs = all_rigs()
    assert len(rigs) > 90
    for name, rig, _ in rigs:
        assert set(rig.bones) <= VRM_BONES, name
        for bone, q in rig.bones.items():
            assert len(q) == 4
            assert all(math.isfinite(c) for c in q), (name, bone)
            assert abs(math.hypot(*q) - 1.0) < 1e-9, (name, bone)
            assert q[3] >= 0.0
        assert set(rig.expressions) <= VRM_EXPRESSIONS
        assert all(0.0 <= v <= 1.0 for v in rig.expressions.values()), name
        assert all(math.isfinite(c) for c in rig.hips_position)


def test_body_arms_and_hands_are_always_there_fingers_only_with_a_hand() -> None:
    for name, rig, lm in all_rigs():
        assert rig.bones.keys() >= ALWAYS, name
        for side in ("left", "right"):
            has_fingers = f"{side}IndexProximal" in rig.bones
            assert has_fingers == (lm[f"{side}_hand"] is not None), name
            if has_fingers:
                assert sum(k.startswith(side) for k in rig.bones) >= 4 + 15


def test_legs_only_when_they_are_in_view() -> None:
    for rig, pose, _ in solved_with_points([asl(), pushups()]):
        for side in ("left", "right"):
            seen = min(pose[[Pose.HIP[side], Pose.KNEE[side], Pose.ANKLE[side]], 3]) >= 0.5
            assert (f"{side}UpperLeg" in rig.bones) == seen
            assert (f"{side}LowerLeg" in rig.bones) == seen
    # The signer's legs are below the frame; the push-ups show the left leg side-on.
    signer = solve(asl().frame(0), 640, 480)
    assert signer is not None
    assert not any("UpperLeg" in k for k in signer.bones)
    legs = [solve(pushups().frame(i), 320, 240) for i in range(len(pushups()))]
    assert sum(rig is not None and "leftUpperLeg" in rig.bones for rig in legs) >= 10


def test_lower_arm_rotation_is_180_minus_the_elbow_angle() -> None:
    checked = 0
    for rig, pose, points in solved_with_points([asl(), pushups()]):
        pts = np.asarray(points)
        for side in ("left", "right"):
            j = [Pose.SHOULDER[side], Pose.ELBOW[side], Pose.WRIST[side]]
            if min(pose[j, 3]) < 0.5:
                continue
            u, v = pts[j[0]] - pts[j[1]], pts[j[2]] - pts[j[1]]
            elbow = math.degrees(math.acos(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v)))
            got = math.degrees(quat.angle(rig.bones[f"{side}LowerArm"]))
            assert got == pytest.approx(180.0 - elbow, abs=1e-6)
            checked += 1
    assert checked > 80


def test_arms_out_of_view_hang_relaxed_instead_of_flailing() -> None:
    relaxed = 0
    for rig, pose, _ in solved_with_points([gesture()]):
        for side in ("left", "right"):
            if min(pose[[Pose.SHOULDER[side], Pose.ELBOW[side]], 3]) < 0.5:
                assert rig.bones[f"{side}UpperArm"] == pytest.approx(RELAXED[side])
                assert rig.bones[f"{side}LowerArm"] == pytest.approx(quat.IDENTITY)
                relaxed += 1
    assert relaxed >= 20


def test_an_arm_whose_wrist_is_unseen_is_straight_along_its_upper_arm() -> None:
    """The signer's real frames with one wrist's visibility taken to 0 (as the model reports
    a hand out of the image): that forearm is not bent toward the model's guess at the
    wrist, it carries straight on from the upper arm (seen, the forearms are bent)."""
    rec = asl()
    for i in range(0, len(rec), 10):
        lm = rec.frame(i)
        assert lm["pose"] is not None
        seen = solve(lm, rec.width, rec.height)
        assert seen is not None
        for side in ("left", "right"):
            pose = lm["pose"].copy()
            pose[Pose.WRIST[side], 3] = 0.0
            rig = solve({**lm, "pose": pose}, rec.width, rec.height)
            assert rig is not None
            assert rig.bones[f"{side}LowerArm"] == pytest.approx(quat.IDENTITY)
            assert math.degrees(quat.angle(seen.bones[f"{side}LowerArm"])) > 10.0


def test_expressions_without_irises_do_not_look_anywhere() -> None:
    rec = asl()
    lm = rec.frame(0)
    assert lm["face"] is not None
    assert len(lm["face"]) == 478
    full = solve(lm, rec.width, rec.height)
    plain = solve({**lm, "face": lm["face"][:468]}, rec.width, rec.height)
    assert full is not None
    assert plain is not None
    assert set(full.expressions) == set(plain.expressions) == set(EXPRESSIONS)
    assert all(plain.expressions[k] == 0.0 for k in ("lookUp", "lookDown", "lookLeft", "lookRight"))
    for k in ("blinkLeft", "blinkRight", "aa", "ih", "ou", "ee", "oh"):
        assert plain.expressions[k] == pytest.approx(full.expressions[k], abs=1e-9)
    # The signer's eyes are open and her mouth closed in the first frame.
    assert full.expressions["blinkLeft"] < 0.3
    assert full.expressions["blinkRight"] < 0.3
    assert full.expressions["aa"] < 0.2


def face_on_the_back_of_the_head() -> tuple[Recording, dict[str, Any]]:
    """The squat's first frame (a man seen from behind) with the signer's face, facing the
    camera, set on his head: a face the model can find on the back of a head."""
    body, signer = squat(), asl()
    lm = body.frame(0)
    pose, face_seen = lm["pose"], signer.frame(0)["face"]
    assert pose is not None
    assert face_seen is not None
    assert lm["face"] is None
    # The signer's face, scaled to the squatter's ear-to-ear span and centred on his nose.
    to_px = np.array([body.width, body.height, body.width])
    from_px = np.array([signer.width, signer.height, signer.width])
    face_px = face_seen * from_px
    ears = np.linalg.norm((pose[Pose.LEFT_EAR, :2] - pose[Pose.RIGHT_EAR, :2]) * to_px[:2])
    span = np.linalg.norm(face_px[454, :2] - face_px[234, :2])
    face_px = (face_px - face_px[1]) * (ears / span) + pose[Pose.NOSE, :3] * to_px
    return body, {**lm, "face": face_px / to_px}


def test_a_face_on_the_back_of_the_head_turns_neither_head_nor_face() -> None:
    """The model can find a face on the back of a head (live, on the squat, seen from
    behind). The avatar looked over its own back (158 degrees from the chest) and blinked
    with that face."""
    body, faced = face_on_the_back_of_the_head()
    lm = {**faced, "face": None}
    world = body.world(0)
    for pose_world in (None, world):
        alone = solve(lm, body.width, body.height, pose_world=pose_world)
        rig = solve(faced, body.width, body.height, pose_world=pose_world)
        assert alone is not None
        assert rig is not None
        turn = head_in_chest(rig.bones)
        assert turn is not None
        assert math.degrees(quat.angle(turn)) <= HEAD_TURN_LIMIT_DEG
        assert rig.bones["head"] == pytest.approx(alone.bones["head"])
        assert rig.bones["neck"] == pytest.approx(alone.bones["neck"])
        assert rig.expressions == alone.expressions
        assert rig.gaze is None


def test_a_face_on_the_back_of_the_head_moves_no_blendshapes() -> None:
    """The worker reads ARKit's blendshapes from whatever face it found: a perfect-sync
    avatar blinked and spoke with a face the rig had set aside as on the back of a head."""
    body, faced = face_on_the_back_of_the_head()
    shapes = {"eyeBlinkLeft": 0.9, "jawOpen": 0.7}
    rig = solve(faced, body.width, body.height, blendshapes=shapes)
    assert rig is not None
    assert rig.blendshapes == {}
    signer = asl()
    seen = solve(signer.frame(0), signer.width, signer.height, blendshapes=shapes)
    assert seen is not None
    assert seen.blendshapes == shapes


def test_no_pose_no_rig_and_the_json_shape() -> None:
    rec = asl()
    assert solve({**rec.frame(0), "pose": None}, rec.width, rec.height) is None
    rig = solve(rec.frame(10), rec.width, rec.height)
    assert rig is not None
    doc = json.loads(json.dumps(rig.to_json()))
    assert set(doc) == {"bones", "hips_position", "expressions"}
    assert all(len(q) == 4 for q in doc["bones"].values())
    assert len(doc["hips_position"]) == 3


def test_world_landmarks_give_the_same_kind_of_rig() -> None:
    rec = asl()
    world = rec.world(30)
    assert world is not None
    rig = solve(rec.frame(30), rec.width, rec.height, pose_world=world)
    image = solve(rec.frame(30), rec.width, rec.height)
    assert rig is not None
    assert image is not None
    assert rig.bones.keys() == image.bones.keys()
    # Same person, same frame: the chest agrees within a few tens of degrees.
    assert angle_between(rig.bones["chest"], image.bones["chest"]) < 30.0


@pytest.mark.parametrize("clip", [asl, squat])
def test_spine_and_neck_each_take_half_of_the_turn(clip: Any) -> None:
    """docs/rig.md: the spine takes half of the turn from the hips to the chest, and the
    neck half of the head's turn from the chest; the other half is the next bone's own."""
    rec = clip()
    turned = 0
    for i in range(len(rec)):
        rig = solve(rec.frame(i), rec.width, rec.height)
        if rig is None:
            continue
        bones = rig.bones
        for first, second in (("spine", "chest"), ("neck", "head")):
            half = quat.angle(bones[first])
            assert half == pytest.approx(quat.angle(bones[second]), abs=1e-6), (i, first)
            turned += half > math.radians(2.0)
    assert turned >= 3  # the shared turns are not all nothing


def test_mirror_swaps_sides_and_reflects() -> None:
    rec = asl()
    rig = solve(rec.frame(20), rec.width, rec.height)
    mirror = solve(rec.frame(20), rec.width, rec.height, mirror=True)
    assert rig is not None
    assert mirror is not None
    assert mirrored(mirror) == rig
    for bone, q in rig.bones.items():
        other = bone.replace("left", "@").replace("right", "left").replace("@", "right")
        assert mirror.bones[other] == quat.mirror(q)
    assert mirror.expressions["blinkLeft"] == rig.expressions["blinkRight"]
    assert mirror.expressions["lookLeft"] == rig.expressions["lookRight"]
    assert mirror.hips_position[0] == -rig.hips_position[0]


def test_mirrored_rig_matches_the_rig_of_the_flipped_photo() -> None:
    """A person's left arm in a photo is the right arm in the photo flipped left to right:
    mirror=True on the photo must come closer to the flipped photo's rig than mirror=False."""
    closer = 0
    for plain, flipped in zip(stills(False), stills(True), strict=True):
        if "000000000536" in plain.name:  # three people: the model may pick another one
            continue
        a = solve(plain.frame(0), plain.width, plain.height, mirror=True)
        b = solve(plain.frame(0), plain.width, plain.height, mirror=False)
        c = solve(flipped.frame(0), flipped.width, flipped.height)
        assert a is not None
        assert b is not None
        assert c is not None
        arms = [f"{s}{b}" for s in ("left", "right") for b in ("UpperArm", "LowerArm")]
        with_mirror = sum(angle_between(a.bones[k], c.bones[k]) for k in arms)
        without = sum(angle_between(b.bones[k], c.bones[k]) for k in arms)
        closer += with_mirror < without
        assert angle_between(a.bones["chest"], c.bones["chest"]) < 20.0
    assert closer == 3


def world_rotations(rig: Rig) -> dict[str, quat.Quat]:
    """Forward kinematics: each bone's world rotation from the local ones, root first."""
    world: dict[str, quat.Quat] = {}
    for bone, parent in PARENT.items():
        if bone in rig.bones:
            local = rig.bones[bone]
            world[bone] = local if parent is None else quat.multiply(world[parent], local)
    return world


LIMBS = [
    (f"{side}{bone}", rest, a[side], b[side])
    for side in ("left", "right")
    for bone, rest, a, b in (
        ("UpperArm", (1.0 if side == "left" else -1.0, 0.0, 0.0), Pose.SHOULDER, Pose.ELBOW),
        ("LowerArm", (1.0 if side == "left" else -1.0, 0.0, 0.0), Pose.ELBOW, Pose.WRIST),
        ("UpperLeg", (0.0, -1.0, 0.0), Pose.HIP, Pose.KNEE),
        ("LowerLeg", (0.0, -1.0, 0.0), Pose.KNEE, Pose.ANKLE),
    )
]


def test_forward_kinematics_puts_each_limb_along_its_landmarks() -> None:
    """Composing the local rotations from the hips down turns each limb's rest direction
    onto the landmarks' direction: the hierarchy, the axes and the sides agree."""
    checked = 0
    for rig, pose, pts in solved_with_points([asl(), pushups(), *stills()]):
        world = world_rotations(rig)
        for bone, rest, a, b in LIMBS:
            if bone not in rig.bones or min(pose[[a, b], 3]) < 0.5:
                continue
            if bone.endswith("LowerArm") and min(pose[[a - 2, a], 3]) < 0.5:
                continue
            seen = quat.unit(quat.sub(pts[b], pts[a]))
            assert quat.dot(quat.rotate(world[bone], rest), seen) == pytest.approx(1.0, abs=1e-6)
            checked += 1
    assert checked > 300


def test_knees_bend_the_shins_backward_and_feet_point_along_the_toes() -> None:
    """On the real squats and push-ups: a bent knee's lower leg swings backward from its
    thigh (a knee bends no other way), and a foot whose heel and toes are seen turns toward
    the toes."""
    bent = feet = 0
    for rig, _, pts in solved_with_points([squat(), pushups()]):
        world = world_rotations(rig)
        for side in ("left", "right"):
            lower = rig.bones.get(f"{side}LowerLeg")
            if lower is not None and math.degrees(quat.angle(lower)) > 20.0:
                assert quat.rotate(lower, (0.0, -1.0, 0.0))[2] < 0.0
                bent += 1
            foot = world.get(f"{side}Foot")
            if foot is not None:
                toes = quat.unit(quat.sub(pts[Pose.FOOT_INDEX[side]], pts[Pose.HEEL[side]]))
                along = quat.dot(quat.rotate(foot, (0.0, 0.0, 1.0)), toes)
                assert along == pytest.approx(1.0, abs=1e-6)
                feet += 1
    assert bent >= 3
    assert feet >= 10


def test_a_hand_is_in_line_with_an_arm_out_of_view() -> None:
    """The elbows are below the frame: the arm hangs relaxed, a guess, and a hand found
    (or the pose's hand points, which it guesses too) turned against it showed a wrist
    folded back on itself (the gesture video, 150-180 degrees)."""
    held = 0
    for rig, pose, _ in solved_with_points([gesture(), pushups()]):
        for side in ("left", "right"):
            arm = [Pose.SHOULDER[side], Pose.ELBOW[side], Pose.WRIST[side]]
            if min(pose[arm, 3]) < 0.5:
                assert rig.bones[f"{side}Hand"] == pytest.approx(quat.IDENTITY)
                held += 1
    assert held >= 20


def test_a_bent_arms_hand_turns_no_further_than_a_forearm_can() -> None:
    """Relative to a bent forearm the hand's twist about its own axis stays within
    TWIST_LIMIT_DEG on real landmarks (a hand model that swaps index and little, as on
    a fist seen from behind, turned the squat's hands 150-180 degrees)."""
    checked = 0
    for rig, pose, pts in solved_with_points([asl(), pushups(), *stills()]):
        for side in ("left", "right"):
            s, e, w = Pose.SHOULDER[side], Pose.ELBOW[side], Pose.WRIST[side]
            if min(pose[[s, e, w], 3]) < 0.5:
                continue
            if arms.twist_weight(quat.sub(pts[e], pts[s]), quat.sub(pts[w], pts[e])) < 1.0:
                continue
            turn = hands.twist(rig.bones[f"{side}Hand"], hands.ALONG[side])
            assert abs(math.degrees(turn)) <= hands.TWIST_LIMIT_DEG + 1e-6
            checked += 1
    assert checked > 50


def synthetic_hand(side: str, bend_deg: float, twist_deg: float) -> tuple[float, hands.Source]:
    """A hand in line with a forearm bent bend_deg toward +Z, turned twist_deg about it
    from the forearm's own roll: the hand bone's local twist (degrees) as solved, and its
    source."""
    out = 1.0 if side == "left" else -1.0
    points: list[quat.Vec] = [(0.0, 0.0, 0.0)] * 33
    visible = [True] * 33
    bend = math.radians(bend_deg)
    points[Pose.ELBOW[side]] = (out, 0.0, 0.0)
    points[Pose.WRIST[side]] = (out * (1.0 + math.cos(bend)), 0.0, math.sin(bend))
    _, lower = arms.arm(points, visible, side, quat.IDENTITY)
    forearm = quat.rotate(lower, hands.ALONG[side])
    across = quat.rotate(
        quat.from_axis_angle(forearm, math.radians(twist_deg)),
        quat.rotate(lower, hands.THUMB_SIDE),
    )
    wrist = points[Pose.WRIST[side]]
    middle = quat.add(wrist, quat.scale(forearm, 0.1))
    found: list[quat.Vec] = [wrist] * 21
    found[hands.MIDDLE_BASE] = middle
    found[hands.INDEX_BASE] = quat.add(middle, quat.scale(across, 0.04))
    found[hands.LITTLE_BASE] = quat.sub(middle, quat.scale(across, 0.04))
    world, source = hands.hand(points, visible, hands.seen(found, side), side, lower)
    local = quat.multiply(quat.inverse(lower), world)
    return math.degrees(hands.twist(local, hands.ALONG[side])), source


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_hand_follows_its_turn_within_reach_and_is_turned_back_beyond(side: str) -> None:
    def check(bend: float, twist: float, solved: float, source: hands.Source) -> None:
        got, came_from = synthetic_hand(side, bend, twist)
        assert got == pytest.approx(solved, abs=1e-6)
        assert came_from is source

    model, turned = hands.Source.MODEL, hands.Source.MODEL_TURNED
    for twist in range(-110, 111, 10):  # pronation to supination, and a little more
        check(90.0, twist, twist, model)
        # A straight arm's roll is the shoulder's, unseen: any turn is taken as seen.
        check(0.0, twist, twist, model)
    for twist in (-170, -135, 120, 150, 175):  # index and little swapped: turned back
        check(90.0, twist, twist - math.copysign(180.0, twist), turned)
        check(0.0, twist, twist, model)


# Pure math, synthetic inputs.


def test_between_takes_a_onto_b_even_when_opposite() -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        a, b = rng.normal(size=3).tolist(), rng.normal(size=3).tolist()
        assert quat.rotate(quat.between(a, b), quat.unit(a)) == pytest.approx(quat.unit(b))
    q = quat.between((1.0, 0.0, 0.0), (-1.0, 0.0, 0.0))
    assert quat.rotate(q, (1.0, 0.0, 0.0)) == pytest.approx((-1.0, 0.0, 0.0))


def test_from_frames_matches_both_directions() -> None:
    rng = np.random.default_rng(2)
    for _ in range(50):
        p, s = rng.normal(size=3).tolist(), rng.normal(size=3).tolist()
        q = quat.from_frames((1.0, 0.0, 0.0), (0.0, 0.0, 1.0), p, s)
        assert quat.rotate(q, (1.0, 0.0, 0.0)) == pytest.approx(quat.unit(p))
        side = quat.rotate(q, (0.0, 0.0, 1.0))
        assert quat.dot(side, quat.unit(p)) == pytest.approx(0.0, abs=1e-9)
        assert quat.dot(side, s) > 0.0


def test_mirror_is_the_reflection_across_yz() -> None:
    rng = np.random.default_rng(3)
    flip = np.array([-1.0, 1.0, 1.0])
    for _ in range(50):
        x, y, z, w = rng.normal(size=4).tolist()
        q = quat.normalize((x, y, z, w))
        v = rng.normal(size=3)
        want = quat.rotate(q, (v * flip).tolist())
        assert quat.rotate(quat.mirror(q), v.tolist()) == pytest.approx(
            (np.array(want) * flip).tolist()
        )


def test_slerp_ends_and_middle() -> None:
    a = quat.IDENTITY
    b = quat.from_axis_angle((0.0, 1.0, 0.0), math.radians(80.0))
    assert quat.slerp(a, b, 0.0) == pytest.approx(a)
    assert quat.slerp(a, b, 1.0) == pytest.approx(b)
    assert math.degrees(quat.angle(quat.slerp(a, b, 0.5))) == pytest.approx(40.0)


def test_slerp_along_the_signs_between_a_rotation_and_its_negative_stays_put() -> None:
    """q and -q are one rotation: interpolated as their signs are (a hand blend's ease),
    every step is that rotation, not a whole turn of the hand about its axis."""
    q = quat.from_axis_angle((0.0, 0.0, 1.0), math.radians(30.0))
    opposite = (-q[0], -q[1], -q[2], -q[3])
    for t in (0.25, 0.5, 0.75):
        step = quat.slerp(q, opposite, t, shortest=False)
        assert quat.canonical(step) == pytest.approx(q)


def test_angle_holds_for_quaternions_rounded_off_unit_length() -> None:
    # A calibrated message's head has six digits: w can be 1e-6 off, which acos read as a
    # tenth of a degree of rotation where there was none.
    for degrees in (0.0, 0.05, 40.0, 179.0):
        q = quat.from_axis_angle((0.6, 0.0, 0.8), math.radians(degrees))
        for scale in (1.0 - 1e-6, 1.0 + 1e-6):
            x, y, z, w = (c * scale for c in q)
            got = math.degrees(quat.angle((x, y, z, w)))
            assert got == pytest.approx(degrees, abs=1e-3)


def blink_pairs(rec: Recording, eyes: EyeCalibration | None) -> dict[str, FloatArray]:
    """Per eye, (minus its opening, the blink the rig gave) over the frames with a rig."""
    rows: dict[str, list[tuple[float, float]]] = {"left": [], "right": []}
    for i in range(len(rec)):
        lm = rec.frame(i)
        rig = solve(lm, rec.width, rec.height, eyes=eyes)
        if rig is None or lm["face"] is None:
            continue
        f = to_rig_space(lm["face"], rec.width, rec.height)
        for side, pairs in rows.items():
            pairs.append((-face.eye_opening(f, side), rig.expressions[f"blink{side.title()}"]))
    return {side: np.array(pairs) for side, pairs in rows.items()}


def test_blinks_follow_each_eye_of_this_person_with_the_sessions_calibration() -> None:
    """The signer's open eyes measure on both sides of the fixed "open" point (0.28): the
    fixed calibration holds blinkRight at 0 on many frames, the session's own follows
    each eye's opening."""
    rec = asl()
    calibrated, fixed = blink_pairs(rec, EyeCalibration()), blink_pairs(rec, None)
    for side in ("left", "right"):
        a = calibrated[side]
        assert len(a) == len(rec)
        assert np.corrcoef(a[:, 0], a[:, 1])[0, 1] >= 0.9
        # Open eyes read as open: a little closed at most, on average.
        assert np.mean(a[:, 1]) < 0.3
    assert np.mean(fixed["right"][:, 1] == 0.0) > np.mean(calibrated["right"][:, 1] == 0.0)


def test_eye_calibration_starts_fixed_learns_the_person_and_never_learns_shut_eyes() -> None:
    eyes = EyeCalibration()
    fixed = (face.EYE_SHUT, face.EYE_OPEN)
    assert eyes.add({"left": 0.33, "right": 0.25})["left"] == pytest.approx(fixed)
    for _ in range(150):  # five seconds, one eye wider than the fixed point, one narrower
        levels = eyes.add({"left": 0.33, "right": 0.25})
    assert levels["left"][1] == pytest.approx(0.33 * OPEN_OVER_MEDIAN)
    assert levels["right"][1] == pytest.approx(0.25 * OPEN_OVER_MEDIAN)
    for side, usual in (("left", 0.33), ("right", 0.25)):
        # Each eye's usual opening reads nearly open, a wider one open, a narrower one less.
        assert 0.0 < face.blink_of(usual, *levels[side]) < 0.15
        assert face.blink_of(usual * OPEN_OVER_MEDIAN, *levels[side]) == 0.0
        assert face.blink_of(usual * 0.7, *levels[side]) > 0.3
    # A minute of raised brows a tenth of the time does not make the usual eye read closed.
    for i in range(WINDOW_FRAMES):
        levels = eyes.add({"left": 0.45 if i % 10 == 0 else 0.33, "right": 0.25})
    assert face.blink_of(0.33, *levels["left"]) < 0.15
    # Then ten seconds with the eyes shut (0.05: what the face mesh measures in the blinks of
    # media/blinks_*).
    for _ in range(WINDOW_FRAMES):
        levels = eyes.add({"left": 0.05, "right": 0.05})
    for side in ("left", "right"):
        assert face.blink_of(0.05, *levels[side]) > 0.9
    eyes.reset()
    assert eyes.add({"left": 0.33, "right": 0.33})["right"] == pytest.approx(fixed)


def test_a_glitch_reading_the_eyes_wider_than_any_eye_opens_is_not_learned() -> None:
    """Ten seconds of a mesh reading the eyes 0.9 open (three times an open eye): the open
    level stops at OPEN_MAX, so a real eye opened wide still reads as open afterwards."""
    eyes = EyeCalibration()
    for _ in range(WINDOW_FRAMES):
        levels = eyes.add({"left": 0.9, "right": 0.9})
    for side in ("left", "right"):
        assert levels[side][1] == OPEN_MAX
        assert face.blink_of(OPEN_MAX, *levels[side]) == 0.0


def session_rig(session: AvatarSession, rec: Recording, i: int) -> dict[str, Any]:
    lm = {k: None if v is None else v.tolist() for k, v in rec.frame(i).items()}
    rig = session.process(lm, float(rec.capture_ms[i]), rec.width, rec.height)[1]
    assert rig is not None
    return rig


def test_a_session_calibrates_its_eyes_and_forgets_them_on_reset() -> None:
    rec = asl()
    fixed = solve(rec.frame(0), rec.width, rec.height)
    assert fixed is not None
    want = {k: round(fixed.expressions[k], 3) for k in ("blinkLeft", "blinkRight")}
    session = AvatarSession(AvatarOptions(smoothing=None, rig=True))
    first = session_rig(session, rec, 0)["expressions"]
    assert {k: first[k] for k in want} == want
    # Unsmoothed, so the session's blinks differ from the stateless solver's only by the
    # calibration: the signer's right eye opens wider than the fixed point.
    calibrated = [session_rig(session, rec, i)["expressions"]["blinkRight"] for i in range(1, 60)]
    stateless = [solve(rec.frame(i), rec.width, rec.height) for i in range(1, 60)]
    assert sum(calibrated) > sum(r.expressions["blinkRight"] for r in stateless if r is not None)
    session.reset()
    again = session_rig(session, rec, 0)["expressions"]
    assert {k: again[k] for k in want} == want


def test_the_open_level_is_a_little_over_the_windows_median() -> None:
    rng = np.random.default_rng(12)
    eyes = EyeCalibration(window=50)
    seen = {side: [PRIOR_OPENING] * PRIOR_FRAMES for side in ("left", "right")}
    for _ in range(400):
        openings = {"left": float(rng.uniform(0.1, 0.5)), "right": float(rng.uniform(0.2, 0.3))}
        levels = eyes.add(openings)
        for side, opening in openings.items():
            seen[side] = [*seen[side], opening][-50:]
            level = OPEN_OVER_MEDIAN * float(np.median(seen[side]))
            want = min(OPEN_MAX, max(OPEN_MIN, level))
            assert levels[side][1] == pytest.approx(want, abs=1e-12)


def _face(left_open: float, right_open: float, iris: tuple[float, float]) -> list[list[float]]:
    """A face mesh in rig space (+X the person's left, +Y up), eyes 2 wide with their
    eyelids `*_open` apart, both irises moved by `iris` (sideways, up) from the eyes' centres;
    the points the expressions do not read at the origin."""
    points = [[0.0, 0.0, 0.0] for _ in range(face.IRIS_POINTS)]
    points[face.FOREHEAD], points[face.CHIN] = [0.0, 5.0, 0.0], [0.0, -5.0, 0.0]
    for side, x, opening in (("right", -3.0, right_open), ("left", 3.0, left_open)):
        a, b = face.EYE_CORNERS[side]
        points[a], points[b] = [x - 1.0, 0.0, 0.0], [x + 1.0, 0.0, 0.0]
        lids = zip(face.EYE_UPPER[side], face.EYE_LOWER[side], (-0.5, 0.0, 0.5), strict=True)
        for up, down, dx in lids:
            points[up], points[down] = [x + dx, opening, 0.0], [x + dx, -opening, 0.0]
        points[face.IRIS[side]] = [x + iris[0], iris[1], 0.0]
    return points


@pytest.mark.parametrize(
    ("iris", "looks"),
    [
        ((0.4, 0.0), {"lookLeft"}),
        ((-0.4, 0.0), {"lookRight"}),
        ((0.0, 0.4), {"lookUp"}),
        ((0.0, -0.4), {"lookDown"}),
        ((0.01, -0.01), set()),  # inside the dead zone
    ],
)
def test_irises_toward_the_persons_left_or_up_look_that_way(
    iris: tuple[float, float], looks: set[str]
) -> None:
    mesh = _face(0.3, 0.3, iris)
    got = face.expressions(mesh, gaze=face.gaze(mesh))
    for k in ("lookLeft", "lookRight", "lookUp", "lookDown"):
        assert got[k] == (1.0 if k in looks else 0.0), k
