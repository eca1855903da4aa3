"""VMC out: what reaches a real OSC receiver, the operator's allow list, the axes."""

from __future__ import annotations

import asyncio
import functools
import itertools
import math
from typing import Any

import pytest

from tests.vmc_receiver import VMC_TYPE_TAGS, vmc_receiver
from webapp.analysis.rig import quat
from webapp.analysis.rig.bones import PARENT
from webapp.analysis.rig.eyes import FULL_TURN_DEGREES
from webapp.analysis.rig.idle import IDLE_BONES, UNSEEN_SECONDS
from webapp.analysis.skeleton import BONES, REST_OFFSET
from webapp.vmc.encode import (
    MAX_DATAGRAM,
    bundles,
    frame_messages,
    to_unity_position,
    to_unity_rotation,
    unity_bone,
)
from webapp.vmc.relay_config import parse as relay_parse
from webapp.vmc.rest_later import RestLater
from webapp.vmc.sender import Target, VmcSender, allowed, parse_allow, parse_target
from webapp.vmc.settle import REST_S, Settle

# Unity's HumanBodyBones, the names every VMC receiver looks bones up by.
HUMAN_BODY_BONES = {
    "Hips", "LeftUpperLeg", "RightUpperLeg", "LeftLowerLeg", "RightLowerLeg", "LeftFoot",
    "RightFoot", "Spine", "Chest", "UpperChest", "Neck", "Head", "LeftShoulder",
    "RightShoulder", "LeftUpperArm", "RightUpperArm", "LeftLowerArm", "RightLowerArm",
    "LeftHand", "RightHand", "LeftToes", "RightToes", "LeftEye", "RightEye", "Jaw",
    *(f"{side}{finger}{joint}" for side in ("Left", "Right")
      for finger in ("Thumb", "Index", "Middle", "Ring", "Little")
      for joint in ("Proximal", "Intermediate", "Distal")),
}  # fmt: skip

# A rig of the shape the solver sends: a quarter turn about Y for the left upper arm.
HALF = math.sqrt(0.5)
RIG = {
    "bones": {
        "hips": [0.0, 0.0, 0.0, 1.0],
        "leftUpperArm": [0.0, HALF, 0.0, HALF],
        "leftThumbMetacarpal": [0.0, 0.0, 0.0, 1.0],
        "notABone": [0.0, 0.0, 0.0, 1.0],
    },
    "hips_position": [0.1, 0.9, 0.2],
    "expressions": {"aa": 0.5, "blinkLeft": 1.0, "lookUp": 0.25},
}


def test_every_vrm_bone_has_a_unity_name() -> None:
    assert {unity_bone(b) for b in BONES} <= HUMAN_BODY_BONES
    assert len({unity_bone(b) for b in BONES}) == len(BONES)
    assert unity_bone("leftThumbMetacarpal") == "LeftThumbProximal"
    assert unity_bone("rightThumbDistal") == "RightThumbDistal"
    assert unity_bone("upperChest") == "UpperChest"


def test_axes_flip_x_for_unity() -> None:
    assert to_unity_position([0.3, 1.0, 0.5]) == (-0.3, 1.0, 0.5)
    # A turn about Y reverses its sense in a mirrored frame; one about X keeps it.
    assert to_unity_rotation([0.0, HALF, 0.0, HALF]) == (0.0, -HALF, 0.0, HALF)
    assert to_unity_rotation([HALF, 0.0, 0.0, HALF]) == (HALF, 0.0, 0.0, HALF)


def test_a_frame_is_ordered_and_bundles_fit_a_datagram() -> None:
    addresses = [m.address for m in frame_messages(RIG, 1.5)]
    assert addresses[:3] == ["/VMC/Ext/OK", "/VMC/Ext/T", "/VMC/Ext/Root/Pos"]
    assert addresses[-1] == "/VMC/Ext/Blend/Apply"
    # The unknown bone is left out; the gaze adds the two eyes.
    assert addresses.count("/VMC/Ext/Bone/Pos") == 5
    many = {"bones": {b: [0.0, 0.0, 0.0, 1.0] for b in BONES}, "expressions": {}}
    packed = bundles(frame_messages(many, 0.0))
    assert len(packed) > 1
    assert all(len(d) <= MAX_DATAGRAM and d.startswith(b"#bundle\x00") for d in packed)


async def test_a_real_receiver_reads_the_frame() -> None:
    async with vmc_receiver() as (port, received):
        sender = await VmcSender.open(Target("127.0.0.1", port))
        try:
            sender.send(RIG, 2.0)
            sender.send(RIG, 2.5)
            await received.wait_frames(2)
        finally:
            sender.close()
    assert received.type_tags == VMC_TYPE_TAGS
    frame = received.last_frame()
    by_address: dict[str, list[tuple[Any, ...]]] = {}
    for address, args in frame:
        by_address.setdefault(address, []).append(args)
    assert by_address["/VMC/Ext/OK"] == [(1,)]
    # The protocol's relative time: since the sender's first frame.
    assert by_address["/VMC/Ext/T"] == [(0.5,)]
    bones = {args[0]: args[1:] for args in by_address["/VMC/Ext/Bone/Pos"]}
    assert set(bones) == {"Hips", "LeftUpperArm", "LeftThumbProximal", "LeftEye", "RightEye"}
    # Sideways sway on the rest height: the rig's hips are measured from the image centre.
    assert bones["Hips"][:3] == pytest.approx((-0.1, 0.95, 0.0))
    assert bones["LeftUpperArm"][3:] == pytest.approx((0.0, -HALF, 0.0, HALF))
    for values in bones.values():
        assert math.fsum(v * v for v in values[3:]) == pytest.approx(1.0)
    blends = {name: value for name, value in by_address["/VMC/Ext/Blend/Val"]}
    assert blends["A"] == pytest.approx(0.5)
    assert blends["aa"] == pytest.approx(0.5)
    assert blends["Blink_L"] == pytest.approx(1.0)
    assert blends["LookUp"] == pytest.approx(0.25)


async def test_a_sender_cancelled_as_it_opens_closes_the_sockets_it_opened(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client that hangs up just after a hello naming two receivers has its handler
    cancelled while the second receiver's socket opens: the first's is closed too."""
    loop = asyncio.get_running_loop()
    open_endpoint = loop.create_datagram_endpoint
    opened: list[asyncio.BaseTransport] = []

    async def endpoint(*args: Any, **kwargs: Any) -> Any:
        if opened:
            opening.cancel()
        transport, protocol = await open_endpoint(*args, **kwargs)
        opened.append(transport)
        return transport, protocol

    monkeypatch.setattr(loop, "create_datagram_endpoint", endpoint)
    opening = asyncio.create_task(VmcSender.open(Target("127.0.0.1", 9), Target("127.0.0.1", 10)))
    with pytest.raises(asyncio.CancelledError):
        await opening
    assert len(opened) == 1
    assert opened[0].is_closing()


async def test_the_time_stays_precise_on_a_long_running_clock() -> None:
    # A capture clock 347 days into a monotonic clock (3e10 ms): float32 holds it only to
    # the nearest 2 s, so its absolute value would give 15 fps frames one T between them.
    start = 3.0e7
    async with vmc_receiver() as (port, received):
        sender = await VmcSender.open(Target("127.0.0.1", port))
        try:
            for i in range(30):
                sender.send(RIG, start + i / 15)
            await received.wait_frames(30)
        finally:
            sender.close()
    times = [args[0] for address, args in received.messages if address == "/VMC/Ext/T"]
    assert len(times) == 30
    assert all(b > a for a, b in itertools.pairwise(times))
    assert times[-1] == pytest.approx(29 / 15, abs=1e-4)


@pytest.mark.parametrize("clocks", [(1e42, 1e42 + 1.0), (0.0, 1e42), (1e42, -1e42)])
async def test_no_clock_breaks_the_encoding(clocks: tuple[float, float]) -> None:
    async with vmc_receiver() as (port, received):
        sender = await VmcSender.open(Target("127.0.0.1", port))
        try:
            for seconds in clocks:
                sender.send(RIG, seconds)
            await received.wait_frames(2)
        finally:
            sender.close()
    times = [args[0] for address, args in received.messages if address == "/VMC/Ext/T"]
    assert len(times) == 2
    assert all(math.isfinite(t) for t in times)
    assert frame_messages(RIG, math.inf)[1].params == [0.0]


def _eyes(expressions: dict[str, float]) -> dict[str, tuple[Any, ...]]:
    messages = frame_messages({"bones": {}, "expressions": expressions}, 0.0)
    return {m.params[0]: tuple(m.params[1:]) for m in messages if m.address == "/VMC/Ext/Bone/Pos"}


@pytest.mark.parametrize(
    ("looks", "toward"),
    [
        # Unity's axes: the avatar faces +Z, its own left is -X.
        ({"lookLeft": 1.0}, (-1, 0)),
        ({"lookRight": 1.0}, (1, 0)),
        ({"lookUp": 1.0}, (0, 1)),
        ({"lookDown": 1.0}, (0, -1)),
        ({"lookLeft": 1.0, "lookUp": 1.0}, (-1, 1)),
    ],
)
def test_the_gaze_turns_both_eye_bones(looks: dict[str, float], toward: tuple[int, int]) -> None:
    eyes = _eyes({"lookUp": 0.0, "lookDown": 0.0, "lookLeft": 0.0, "lookRight": 0.0, **looks})
    assert set(eyes) == {"LeftEye", "RightEye"}
    assert eyes["LeftEye"][3:] == eyes["RightEye"][3:]
    # Each eye sits on its own side of the head: the left one at -X in Unity's axes.
    assert eyes["LeftEye"][0] < 0 < eyes["RightEye"][0]
    x, y, z, w = eyes["LeftEye"][3:]
    gaze = quat.rotate((x, y, z, w), (0.0, 0.0, 1.0))
    assert (int(math.copysign(1, gaze[0])) if abs(gaze[0]) > 1e-6 else 0) == toward[0]
    assert (int(math.copysign(1, gaze[1])) if abs(gaze[1]) > 1e-6 else 0) == toward[1]
    # A full look, one way, turns the eyes UniVRM's default range.
    if sum(map(abs, toward)) == 1:
        assert math.degrees(2 * math.acos(w)) == pytest.approx(FULL_TURN_DEGREES, abs=1e-3)


def test_no_gaze_no_eye_bones_and_a_straight_look_is_identity() -> None:
    assert _eyes({"aa": 0.5}) == {}
    still = _eyes(dict.fromkeys(("lookUp", "lookDown", "lookLeft", "lookRight"), 0.0))
    assert still["LeftEye"][3:] == pytest.approx((0.0, 0.0, 0.0, 1.0))


def test_the_allow_list_is_exact() -> None:
    allow = parse_allow("127.0.0.1:39539, [::1]:39540,localhost:39541")
    assert allowed(allow, "127.0.0.1", 39539) == Target("127.0.0.1", 39539)
    assert allowed(allow, "0:0::1", 39540) == Target("::1", 39540)
    assert allowed(allow, "LOCALHOST", 39541) == Target("localhost", 39541)
    for host, port in [
        ("127.0.0.1", 39540),
        ("127.0.0.2", 39539),
        ("127.0.0.1", "39539"),
        ("127.0.0.1", True),
        (None, 39539),
        ("x" * 300, 39539),
    ]:
        assert allowed(allow, host, port) is None
    assert allowed(parse_allow(""), "127.0.0.1", 39539) is None


@pytest.mark.parametrize(
    "text",
    [
        "127.0.0.1",
        ":39539",
        "host:0",
        "host:70000",
        "host:x",
        "a b:1",
        "a\tb:1",
        "[1:x]:1",
        "127.0.0.1:3953\u00b2",
        "127.0.0.1:\u2460",
    ],
)
def test_bad_allow_entries_are_refused(text: str) -> None:
    """A host with a space or a tab, or an IPv6 address that is none, was taken at start,
    and no hello could ever name it: each session asking then got a 1008. A port with a
    digit int() cannot read (superscript two, a circled one) was Python's own ValueError."""
    with pytest.raises(ValueError, match=r"is not HOST:PORT|no port|no IP address or host name"):
        parse_target(text)


@pytest.mark.parametrize("text", ["::1", "fe80::1:2", "::1:39539", "2001:db8::1:39539"])
def test_an_ipv6_receiver_without_brackets_is_refused(text: str) -> None:
    """Its last colon was taken for the port's: "fe80::1:2", an address, was fe80::1 at
    port 2, and "::1" alone was "':' is no IP address or host name"."""
    with pytest.raises(ValueError, match=r"an IPv6 address goes in brackets, as \[::1\]:39539"):
        parse_target(text)
    assert parse_target("[fe80::1:2]:39539") == Target("fe80::1:2", 39539)


def test_an_ipv6_receiver_in_brackets_without_a_port_is_told_of_its_port() -> None:
    """A bracketed "[::1]" was told to put the address in brackets, which it had."""
    with pytest.raises(ValueError, match="has no port between 1 and 65535"):
        parse_target("[::1]")


def test_a_port_in_other_decimal_digits_is_read() -> None:
    """Full-width digits, as a Japanese keyboard types them, are digits int() reads."""
    assert parse_target("127.0.0.1:\uff13\uff19\uff15\uff13\uff19") == Target("127.0.0.1", 39539)


def test_the_relay_sends_to_every_receiver_named_once() -> None:
    config = relay_parse(
        [
            "--watch",
            "ws://h/ws",
            "--token",
            "t",
            "--to",
            "127.0.0.1:39539, [::1]:39540,127.0.0.1:39539",
        ]
    )
    assert config.to == (Target("127.0.0.1", 39539), Target("::1", 39540))
    assert relay_parse(["--watch", "ws://h/ws", "--token", "t"]).to == (Target("127.0.0.1", 39539),)
    # A token is base64url: one in 64 begins with "-", which only the = form can pass.
    assert relay_parse(["--watch", "ws://h/ws", "--token=-Ab3"]).token == "-Ab3"


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--to", ","], "name at least one receiver"),
        (["--to", "127.0.0.1:1,nowhere"], "is not HOST:PORT"),
        (["--watch", "http://h/ws"], "must be a ws:// or wss:// URL"),
        (["--watch", "ws://"], "'ws://' names no host"),
        (["--watch", "ws://[::1"], "'ws://[::1' is not a URL"),
        (["--watch", "ws://h:99999/ws"], "is not a URL"),
        (["--watch", "ws://h h/ws"], "'h h' is not a host name or address"),
        (["--watch", "ws://%zz/ws"], "'%zz' is not a host name or address"),
        (["--watch", "ws://127.0.0.1:0/ws"], "port 0 is no server's port"),
        (["--token", ""], "--token [HOLOTRACK_RELAY_TOKEN] is empty or missing"),
        (["--token", "  "], "--token [HOLOTRACK_RELAY_TOKEN] is empty or missing"),
        (["--retry-max", "0"], "--retry-max [HOLOTRACK_RELAY_RETRY_MAX]: must be a positive"),
        (["--retry-max", "-1"], "--retry-max [HOLOTRACK_RELAY_RETRY_MAX]: must be a positive"),
        (["--retry-max", "nan"], "must be a positive number"),
        (["--retry-max", "inf"], "must be a positive number"),
        (["--retry-max", "soon"], "argument --retry-max: 'soon' is not a number"),
    ],
)
def test_the_relay_refuses_bad_arguments_in_words(
    argv: list[str], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        relay_parse(["--watch", "ws://h/ws", "--token", "t", *argv])
    assert stopped.value.code == 2
    assert reason in capsys.readouterr().err


def _pose(frame: list[tuple[str, tuple[Any, ...]]]) -> dict[str, tuple[Any, ...]]:
    return {args[0]: args[4:] for address, args in frame if address == "/VMC/Ext/Bone/Pos"}


async def test_nobody_seen_for_a_while_and_the_end_leave_the_receiver_at_rest() -> None:
    """A receiver keeps the last pose it was sent: the avatar would stand frozen mid-gesture
    in VSeeFace while its person is away. Frames without a rig, once none has come for
    UNSEEN_SECONDS, and rest() at the session's end, send the rest pose: every bone (a head
    left turned would stay turned), the arms down, every expression (a held emotion's too)
    and blendshape 0: every one ever sent, though the last frame before the end no longer
    carried them (its face was lost first)."""
    shaped = {
        **RIG,
        "expressions": {"aa": 0.5, "blinkLeft": 1.0, "lookUp": 0.25, "happy": 0.8},
        "blendshapes": {"jawOpen": 0.7, "eyeBlinkLeft": 0.4},
    }
    async with vmc_receiver() as (port, received):
        sender = await VmcSender.open(Target("127.0.0.1", port))
        try:
            sender.rest()  # nothing sent yet: nothing to undo
            sender.send(shaped, 10.0)
            sender.unseen(10.0 + UNSEEN_SECONDS / 2)  # a moment's miss is not away
            await received.wait_frames(1)
            sender.unseen(10.0 + UNSEEN_SECONDS)
            await received.wait_frames(2)
            sender.send(shaped, 13.0)
            sender.send(RIG, 13.1)
            sender.rest()
            await received.wait_frames(5)
        finally:
            sender.close()
    assert (sender.sent, sender.rested) == (3, 2)
    moving, resting, again, faceless, ended = received.complete_frames()
    faceless_blends = {args[0]: args[1] for a, args in faceless if a == "/VMC/Ext/Blend/Val"}
    assert faceless_blends["A"] == pytest.approx(0.5)
    # The face's blendshapes lost a tenth of a second ago: on their way to 0 (settle.py).
    assert faceless_blends["jawOpen"] == pytest.approx(0.7 * math.exp(-0.1 / REST_S), rel=1e-5)
    assert _pose(moving)["LeftUpperArm"] == pytest.approx((0.0, -HALF, 0.0, HALF))
    for frame in (resting, ended):
        pose = _pose(frame)
        assert set(pose) >= {unity_bone(name) for name in PARENT if name in REST_OFFSET}
        assert pose["LeftUpperArm"] == pytest.approx(to_unity_rotation(IDLE_BONES["leftUpperArm"]))
        assert pose["Head"] == pytest.approx((0.0, 0.0, 0.0, 1.0))
        blends = {args[0]: args[1] for address, args in frame if address == "/VMC/Ext/Blend/Val"}
        assert {"A", "Blink_L", "Joy", "happy", "jawOpen", "JawOpen", "eyeBlinkLeft"} <= set(blends)
        assert set(blends.values()) == {0.0}
    times = [args[0] for frame in (resting, ended) for a, args in frame if a == "/VMC/Ext/T"]
    assert times == pytest.approx([UNSEEN_SECONDS, 3.1])
    assert again != resting


async def test_what_a_frame_leaves_out_eases_to_rest_in_the_receiver() -> None:
    """A receiver holds what it was sent: legs that left the picture stayed bent in
    VSeeFace, and a face lost behind a hand kept its half-closed eye, for as long as they
    were out of view. What the rig leaves out is sent again, nearer rest each frame (as the
    avatar page eases it), then at rest once more, then no longer."""
    knee = quat.from_axis_angle((1.0, 0.0, 0.0), math.radians(40.0))
    carried = {"hips": [0.0, 0.0, 0.0, 1.0], "leftUpperArm": [0.0, HALF, 0.0, HALF]}
    seen: dict[str, Any] = {
        **RIG,
        "bones": {**carried, "leftLowerLeg": list(knee)},
        "blendshapes": {"eyeBlinkLeft": 0.6, "jawOpen": 0.3},
    }
    frames = 75  # 2.5 s at 30 fps: rest within AT_REST takes about 2
    async with vmc_receiver() as (port, received):
        sender = await VmcSender.open(Target("127.0.0.1", port))
        try:
            sender.send(seen, 0.0)
            for n in range(1, frames + 1):
                sender.send(RIG, n / 30)
            await received.wait_frames(frames + 1)
        finally:
            sender.close()
    _, *later = received.complete_frames()
    angles = []
    blinks = []
    for frame in later:
        bones = _pose(frame)
        assert bones.keys() >= {"Hips", "LeftUpperArm"}  # what the rig carries, as it is
        angles.append(quat.angle(bones["LeftLowerLeg"]) if "LeftLowerLeg" in bones else None)
        blends = {args[0]: args[1] for a, args in frame if a == "/VMC/Ext/Blend/Val"}
        assert ("EyeBlinkLeft" in blends) == ("eyeBlinkLeft" in blends)
        blinks.append(blends.get("eyeBlinkLeft"))
    for series, start in ((angles, math.radians(40.0)), (blinks, 0.6)):
        sent = [value for value in series if value is not None]
        # Each frame nearer rest, by the page's time constant, from what was sent last.
        assert sent[0] == pytest.approx(start * math.exp(-1 / 30 / REST_S), rel=1e-3)
        assert all(b < a for a, b in itertools.pairwise(sent[:-1]))
        assert sent[-1] == 0.0  # once at rest exactly, then forgotten
        assert series[: len(sent)] == sent
        assert series[len(sent) :] != []
        assert all(value is None for value in series[len(sent) :])


def test_a_clock_that_goes_back_does_not_stop_the_easing() -> None:
    knee = list(quat.from_axis_angle((1.0, 0.0, 0.0), math.radians(60.0)))
    settle = Settle()
    settle.fill({"bones": {"leftLowerLeg": knee}}, 100.0)
    eased = [
        quat.angle(settle.fill({"bones": {}}, seconds)["bones"]["leftLowerLeg"])
        for seconds in (10.0, 10.5, 11.0)
    ]
    assert eased[0] == pytest.approx(math.radians(60.0))  # no time passed that it knows of
    assert eased[2] < eased[1] < eased[0] / 2


async def test_a_sender_rests_its_receivers_when_frames_stop_coming() -> None:
    """No frame at all (the camera's network gone, or the relay's server): nothing calls
    unseen(), and the sender watches the wall clock itself. The rest pose comes about
    UNSEEN_SECONDS after the last rig, timed on as though the frames' clock ran on."""
    async with vmc_receiver() as (port, received):
        sender = await VmcSender.open(Target("127.0.0.1", port))
        try:
            sender.send(RIG, 100.0)
            await received.wait_frames(1)
            sent = asyncio.get_running_loop().time()
            await received.wait_frames(2)
            waited = asyncio.get_running_loop().time() - sent
        finally:
            sender.close()
    assert sender.rested >= 1
    assert UNSEEN_SECONDS - 0.1 <= waited < UNSEEN_SECONDS + 2.0
    first, resting = received.complete_frames()[:2]
    assert _pose(first)["LeftUpperArm"] == pytest.approx((0.0, -HALF, 0.0, HALF))
    assert _pose(resting)["LeftUpperArm"] == pytest.approx(
        to_unity_rotation(IDLE_BONES["leftUpperArm"])
    )
    (rest_time,) = [args[0] for address, args in resting if address == "/VMC/Ext/T"]
    assert UNSEEN_SECONDS <= rest_time < UNSEEN_SECONDS + 2.0


async def camera_back(later: RestLater, target: tuple[Target, ...]) -> tuple[VmcSender, VmcSender]:
    """A session's sender that sent a pose, put down as a paused session's is; and its
    camera's next session's, which takes the receivers over at its first rig."""
    old = await VmcSender.open(*target)
    old.send(RIG, 1.0)
    later.put_down(target, old)
    new = await VmcSender.open(*target)
    new.on_first_rig = functools.partial(later.taken, target)
    return old, new


async def test_a_session_that_sent_no_pose_leaves_the_last_ones_rest_in_place() -> None:
    """A session put down waits to rest its receivers; the camera's next session ends
    before it sent them any pose (Stop, Start, Stop within a second on the avatar page).
    It took the receivers over and closed the first sender unrested, and never rested them
    itself: VSeeFace was left in the last gesture for good."""
    later = RestLater(delay=0.2)
    async with vmc_receiver() as (port, received):
        target = (Target("127.0.0.1", port),)
        old, new = await camera_back(later, target)
        later.put_down(target, new)
        await received.wait_frames(2)
        frames = received.complete_frames()
    assert (old.rested, new.rested, len(later)) == (1, 0, 0)
    assert _pose(frames[1])["LeftUpperArm"] == pytest.approx(
        to_unity_rotation(IDLE_BONES["leftUpperArm"])
    )


async def test_a_camera_back_with_a_receiver_fewer_rests_only_the_one_it_left() -> None:
    """A session sending to two receivers pauses; the camera's next one sends to one of
    them only (the other removed on the avatar page). The one it kept must not get the
    last sender's rest pose in the middle of the new session's frames (a flash to rest and
    back); the one it left rests as it would have."""
    later = RestLater(delay=0.2)
    async with vmc_receiver() as (kept_port, kept), vmc_receiver() as (left_port, left):
        both = (Target("127.0.0.1", kept_port), Target("127.0.0.1", left_port))
        old = await VmcSender.open(*both)
        old.send(RIG, 1.0)
        later.put_down(both, old)
        new = await VmcSender.open(both[0])
        new.on_first_rig = functools.partial(later.taken, both[:1])
        new.send(RIG, 5.0)
        assert len(later) == 1  # the one left still waits for its rest
        await left.wait_frames(2)  # its frame, then the rest pose after the delay
        assert (old.rested, len(later)) == (1, 0)
        new.send(RIG, 5.1)
        await kept.wait_frames(3)  # the old frame and the new session's two
        new.close()
    assert _pose(left.complete_frames()[1])["LeftUpperArm"] == pytest.approx(
        to_unity_rotation(IDLE_BONES["leftUpperArm"])
    )
    assert [_pose(f)["LeftUpperArm"] for f in kept.complete_frames()] == [
        pytest.approx((0.0, -HALF, 0.0, HALF))
    ] * 3


async def test_a_camera_back_at_once_takes_over_without_a_rest_in_between() -> None:
    """A paused or lost session's sender is put down; a new session's first rig to the same
    receivers takes over before the rest goes out (no flash to rest and back in VSeeFace);
    with nobody taking over, the receivers rest after the delay."""
    later = RestLater(delay=0.2)
    async with vmc_receiver() as (port, received):
        target = (Target("127.0.0.1", port),)
        old, new = await camera_back(later, target)
        new.send(RIG, 5.0)
        assert len(later) == 0
        assert old.rested == 0
        await received.wait_frames(2)
        # Put down again with nobody to take over: it rests, by itself.
        later.put_down(target, new)
        await received.wait_frames(3)
        assert (new.rested, len(later)) == (1, 0)
        frames = received.complete_frames()
    assert [_pose(f)["LeftUpperArm"] for f in frames[:2]] == [
        pytest.approx((0.0, -HALF, 0.0, HALF))
    ] * 2
    assert _pose(frames[2])["LeftUpperArm"] == pytest.approx(
        to_unity_rotation(IDLE_BONES["leftUpperArm"])
    )
