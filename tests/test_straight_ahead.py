"""The head's straight ahead (webapp/analysis/rig/straight_ahead.py), on the rigs of the
real model's landmarks of the shared videos."""

from __future__ import annotations

import math

import pytest

from tests.landmarks import asl, gesture
from webapp.analysis import AvatarOptions, AvatarSession
from webapp.analysis.rig import face, quat, solve
from webapp.analysis.rig.eyes import LOOKS
from webapp.analysis.rig.quat import Quat
from webapp.analysis.rig.straight_ahead import from_rest, head_in_chest

UP = (0.0, 1.0, 0.0)


def degrees_between(a: Quat, b: Quat) -> float:
    return math.degrees(quat.angle(quat.multiply(quat.inverse(a), b)))


def turn(bones: dict[str, Quat]) -> Quat:
    found = head_in_chest(bones)
    assert found is not None
    return found


@pytest.mark.parametrize("mirror", [False, True], ids=["plain", "mirror"])
def test_the_frame_calibrated_on_looks_straight_ahead(mirror: bool) -> None:
    rec = gesture()
    for i in range(len(rec)):
        rig = solve(rec.frame(i), rec.width, rec.height, mirror=mirror)
        assert rig is not None
        rest = head_in_chest(rig.bones, mirror)
        assert rest is not None
        assert math.degrees(quat.angle(rest)) > 2.0  # not straight ahead already
        bones = from_rest(rig.bones, rest, mirror)
        assert degrees_between(turn(bones), quat.IDENTITY) < 1e-4
        for name in ("neck", "head"):
            assert math.sqrt(sum(c * c for c in bones[name])) == pytest.approx(1.0)
        assert {k: v for k, v in bones.items() if k not in ("neck", "head")} == {
            k: v for k, v in rig.bones.items() if k not in ("neck", "head")
        }


def test_a_turn_is_measured_from_the_rest_about_the_chests_upright() -> None:
    """Calibrated looking down at a screen, then turning 30 degrees: a 30-degree turn about
    the upright, shared half and half by neck and head, as solve() shares a turn."""
    rig = solve(asl().frame(0), asl().width, asl().height)
    assert rig is not None
    rest = turn(rig.bones)
    yaw = quat.from_axis_angle(UP, math.radians(30))
    seen = quat.multiply(yaw, rest)
    neck = quat.slerp(quat.IDENTITY, seen, 0.5)
    turned = {**rig.bones, "neck": neck, "head": quat.multiply(quat.inverse(neck), seen)}
    out = from_rest(turned, rest)
    assert degrees_between(turn(out), yaw) < 1e-4
    assert degrees_between(out["neck"], quat.from_axis_angle(UP, math.radians(15))) < 1e-4
    assert degrees_between(out["head"], quat.from_axis_angle(UP, math.radians(15))) < 1e-4


def test_one_calibration_serves_the_mirror_image() -> None:
    """The rest is the person's own: taken from a mirrored rig, it sets a plain one
    straight, and applied to a mirrored rig it gives the plain result's mirror image."""
    rec = gesture()
    mirrored_rig = solve(rec.frame(0), rec.width, rec.height, mirror=True)
    plain = solve(rec.frame(5), rec.width, rec.height)
    assert mirrored_rig is not None
    assert plain is not None
    rest = head_in_chest(mirrored_rig.bones, mirror=True)
    assert rest is not None
    assert degrees_between(rest, turn(plain.bones)) > 0.5  # two frames, two heads
    mirror_of_five = solve(rec.frame(5), rec.width, rec.height, mirror=True)
    assert mirror_of_five is not None
    straight = solve(rec.frame(0), rec.width, rec.height)
    assert straight is not None
    assert degrees_between(turn(from_rest(straight.bones, rest)), quat.IDENTITY) < 1e-4
    a = from_rest(plain.bones, rest)
    b = from_rest(mirror_of_five.bones, rest, mirror=True)
    for side in ("neck", "head"):
        assert degrees_between(quat.mirror(a[side]), b[side]) < 1e-4


def test_a_session_calibrates_on_its_last_frame_and_keeps_it() -> None:
    rec = gesture()
    session = AvatarSession(AvatarOptions(rig=True, smoothing=None))
    assert session.calibrate_now() is None  # no frame yet
    _, before = session.process(rec.frame(3), 0.0, rec.width, rec.height)
    assert before is not None
    rest = session.calibrate_now()
    assert rest is not None
    assert session.rest == rest
    assert rest.gaze is not None  # the mesh has its irises
    _, after = session.process(rec.frame(3), 40.0, rec.width, rec.height)
    assert after is not None
    bones = {k: tuple(v) for k, v in after["bones"].items()}
    assert degrees_between(turn(bones), quat.IDENTITY) < 0.05  # rounded to 4 digits
    assert max(after["expressions"][look] for look in LOOKS) == 0.0
    session.reset()  # the tracking restarts; the person is the same
    assert session.rest == rest
    session.rest = None
    _, again = session.process(rec.frame(3), 80.0, rec.width, rec.height)
    assert again == before


def test_the_gaze_calibrated_on_reads_straight_ahead_and_others_from_it() -> None:
    """On the gesture clip, where she looks about: calibrated on one frame, that frame
    looks nowhere, and every frame's gaze is its own less the rest (before the dead zone)."""
    rec = gesture()
    rigs = [solve(rec.frame(i), rec.width, rec.height) for i in range(len(rec))]
    gazes = [r.gaze for r in rigs if r is not None and r.gaze is not None]
    assert len(gazes) == len(rec)
    looking = [i for i, r in enumerate(rigs) if r and max(r.expressions[k] for k in LOOKS) > 0.2]
    assert looking  # she does look aside or up in some frames
    rest = gazes[looking[0]]
    calibrated = solve(rec.frame(looking[0]), rec.width, rec.height, gaze_rest=rest)
    assert calibrated is not None
    assert max(calibrated.expressions[k] for k in LOOKS) == 0.0
    assert calibrated.gaze == rest  # what was seen, for the next calibration
    for i in range(len(rec)):
        plain = solve(rec.frame(i), rec.width, rec.height, gaze_rest=rest)
        assert plain is not None
        assert plain.gaze is not None
        left, up = plain.gaze[0] - rest[0], plain.gaze[1] - rest[1]
        assert plain.expressions["lookLeft"] == face.ramp(left, face.GAZE_DEAD, face.GAZE_SIDE)
        assert plain.expressions["lookDown"] == face.ramp(-up, face.GAZE_DEAD, face.GAZE_DOWN)
