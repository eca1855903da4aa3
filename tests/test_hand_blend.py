"""A hand bone eased across a change of its source, on the real model's landmarks: the ASL
signer's right hand, which the hand model loses and finds every few frames."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest

from bench.recordings import Recording
from tests.landmarks import asl
from webapp.analysis import AvatarOptions, AvatarSession
from webapp.analysis.rig import Rig, mirrored, quat, solve
from webapp.analysis.rig.hand_blend import BLEND_MS, HandBlend
from webapp.analysis.rig.hands import Source


def turn(a: quat.Quat, b: quat.Quat) -> float:
    return math.degrees(quat.angle(quat.multiply(quat.inverse(a), b)))


def as_quat(bone: list[float]) -> quat.Quat:
    x, y, z, w = bone
    return (x, y, z, w)


def rigs(rec: Recording) -> list[tuple[float, Rig]]:
    out = []
    for i in range(len(rec)):
        rig = solve(rec.frame(i), rec.width, rec.height)
        assert rig is not None
        out.append((float(rec.capture_ms[i]), rig))
    return out


def test_a_change_of_source_is_eased_and_one_source_is_followed() -> None:
    """Each change of the right hand's source (the model's hand, the pose's points) starts
    a turn from the bone last sent to the new source's, along the shortest way, a share
    of it for each ms since that frame; BLEND_MS on, the bone is the source's own."""
    blend = HandBlend()
    sent: quat.Quat | None = None
    last_ms = 0.0
    source: Source | None = None
    start: tuple[quat.Quat, float] | None = None  # where an easing began, and when
    changes = followed = 0
    for ms, rig in rigs(asl()):
        out = blend(rig, ms)
        solved, now = rig.bones["rightHand"], rig.hand_sources["right"]
        assert out.bones["leftHand"] == rig.bones["leftHand"]  # one source all along
        if sent is not None and now is not source:
            changes += 1
            start = (sent, last_ms)
        if start is not None and ms - start[1] < BLEND_MS:
            share = (ms - start[1]) / BLEND_MS
            expected = quat.slerp(start[0], solved, share)
            assert turn(out.bones["rightHand"], expected) == pytest.approx(0.0, abs=1e-6)
            assert turn(sent or solved, out.bones["rightHand"]) < turn(sent or solved, solved)
        else:
            start = None
            assert out.bones["rightHand"] == solved
            followed += 1
        sent, last_ms, source = out.bones["rightHand"], ms, now
    assert changes >= 10  # media/PROVENANCE.md: the signer's right hand, lost and found
    assert followed >= 10


def test_the_hands_turn_far_less_between_frames_eased() -> None:
    """Between the model's hand and the pose's points the solved right hand jumped 45-96
    degrees from one frame to the next on this clip; eased, no step is a third of that."""

    def largest_step(bones: list[quat.Quat]) -> float:
        return max(turn(a, b) for a, b in itertools.pairwise(bones))

    solved = rigs(asl())
    blend = HandBlend()
    eased = [blend(rig, ms).bones["rightHand"] for ms, rig in solved]
    raw = largest_step([rig.bones["rightHand"] for _, rig in solved])
    assert raw > 60.0
    assert largest_step(eased) < raw / 3


def test_after_a_gap_the_hand_is_as_solved() -> None:
    """Nothing recent to turn from: a frame BLEND_MS or more after the last (the person
    out of view, a stalled camera) or before it (a clock run back) is sent as solved."""
    solved = rigs(asl())
    changed = next(
        i
        for i in range(1, len(solved))
        if solved[i][1].hand_sources["right"] is not solved[i - 1][1].hand_sources["right"]
    )
    for shift in (BLEND_MS + 1.0, -1000.0):
        blend = HandBlend()
        blend(solved[changed - 1][1], solved[changed - 1][0])
        ms, rig = solved[changed]
        assert blend(rig, solved[changed - 1][0] + shift).bones == rig.bones
        # Right after, the same change is eased.
        blend = HandBlend()
        blend(solved[changed - 1][1], solved[changed - 1][0])
        assert blend(rig, ms).bones["rightHand"] != rig.bones["rightHand"]


def test_easing_to_a_hand_turned_back_keeps_its_way_round() -> None:
    """A hand turned back is half a turn from the hand before it. The target, moving a
    little either side of half a turn about the forearm, flipped the short way round from
    one frame to the next, and the eased hand with it (a step of 118 degrees here); it
    now keeps the way it set out on (40 degrees, the easing and the target's own move)."""
    _, rig = rigs(asl())[0]

    def frame(degrees: float, source: Source) -> Rig:
        turned = quat.from_axis_angle((1.0, 0.0, 0.0), math.radians(degrees))
        bones = {**rig.bones, "leftHand": quat.canonical(turned)}
        return replace(rig, bones=bones, hand_sources={**rig.hand_sources, "left": source})

    blend = HandBlend()
    sent = [
        blend(frame(degrees, source), ms).bones["leftHand"]
        for ms, degrees, source in [
            (0.0, 0.0, Source.MODEL),
            (33.0, 179.0, Source.MODEL_TURNED),
            (66.0, 181.0, Source.MODEL_TURNED),
        ]
    ]
    steps = [turn(a, b) for a, b in itertools.pairwise(sent)]
    assert steps[0] == pytest.approx(179.0 * 33.0 / BLEND_MS, abs=0.5)
    assert steps[1] < 60.0, steps


def test_mirrored_sources_follow_their_bones() -> None:
    """Mirrored, the person's right hand is the avatar's left: its source goes with it."""
    _, rig = rigs(asl())[0]
    rig = replace(rig, hand_sources={"left": Source.FOREARM, "right": Source.MODEL})
    assert mirrored(rig).hand_sources == {"left": Source.MODEL, "right": Source.FOREARM}


def test_a_session_eases_only_with_smoothing_on() -> None:
    """ "smoothing": "off" sends the rig of the model's own landmarks, hands too."""
    rec = asl()
    off = AvatarSession(AvatarOptions(rig=True, smoothing=None))
    on = AvatarSession(AvatarOptions(rig=True))
    steps: dict[str, list[float]] = {"off": [], "on": []}
    last: dict[str, quat.Quat | None] = {"off": None, "on": None}
    for i in range(len(rec)):
        for name, session in (("off", off), ("on", on)):
            _, rig = session.process(rec.frame(i), float(rec.capture_ms[i]), rec.width, rec.height)
            assert rig is not None
            bone = as_quat(rig["bones"]["rightHand"])
            if name == "off":
                alone = solve(rec.frame(i), rec.width, rec.height)
                assert alone is not None
                assert bone == pytest.approx(alone.bones["rightHand"], abs=1e-4)
            before = last[name]
            if before is not None:
                steps[name].append(turn(before, bone))
            last[name] = bone
    assert max(steps["on"]) < max(steps["off"]) / 3
