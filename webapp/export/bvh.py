"""A recording as BVH: the VRM humanoid skeleton, hips as root, as many motion frames as
lines, each the line nearest its time.

Axes are the rig's (VRM normalized: Y up, the figure faces +Z, its left along +X), which are
BVH's usual Y-up axes; Blender's importer turns them to Z-up itself. Units are metres, so
Blender's default scale gives a figure about 1.6 m tall. Every joint's rest rotation is the
identity (VRM's T-pose), so a joint's BVH rotation is exactly the rig's local quaternion,
written as Euler angles in degrees in the order Z, X, Y (R = Rz * Rx * Ry), the same for
every joint. Of the angles that give a rotation, each frame's are the nearest to the frame
before's (a turn of 360 degrees added where it keeps a channel within 180 of its last
value, and the other solution, z + 180, 180 - x, y + 180, where it is nearer), so a reader
that interpolates between frames never spins a bone the long way round.

The eyes are VRM's leftEye and rightEye under the head, turned by the rig's gaze (its look
expressions, as VMC turns them: rig/eyes.py), for figures whose eyes are bones; a face
without irises looks straight ahead. The rest of the face (blinks, the mouth) has no place
in BVH: the recording keeps it.

A bone the rig leaves out on some frame (legs out of view, a hand not found) keeps its
last rotation, or rests until it is first seen. The hips move sideways with the rig's
sway and up and down relative to the first frame (one camera gives no depth), but never
so low that a foot goes through the floor: the image's scale (from the shoulders' width)
shrinks as a body turns or bends from the camera, and the squat video's hips dropped 0.66
m where the legs' bends allow about 0.45, its ankles and toes up to 0.25 m under the floor
on 123 of 213 frames. The floor is where the lowest toe tip is at rest. BVH has one
frame time: the recording's mean interval, so the file lasts as long as the recording, and
each motion frame is the line nearest its time on that clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from webapp.analysis.rig import quat
from webapp.analysis.rig.eyes import EYE_OFFSET, eye_rotation
from webapp.analysis.skeleton import PARENT, REST_OFFSET, Vec3
from webapp.export.recording import Recording, RecordingError
from webapp.export.rigs import rig_of

ROOT = "hips"
ROTATION_CHANNELS = ("Zrotation", "Xrotation", "Yrotation")
POSITION_CHANNELS = ("Xposition", "Yposition", "Zposition")
# A recording of one frame has no interval; this is BVH's most common frame time (30 fps).
SINGLE_FRAME_S = 1.0 / 30.0
# The shortest Frame Time six decimals can write. A recording whose lines average under a
# microsecond apart (stamped alike but for one) was written "Frame Time: 0.000000", which
# readers divide by to get a rate.
SHORTEST_FRAME_S = 1e-6
# The skeleton written out: VRM's, with its eye bones.
JOINT_PARENT: dict[str, str | None] = {**PARENT, **{eye: "head" for eye in EYE_OFFSET}}
JOINT_OFFSET: dict[str, Vec3] = {**REST_OFFSET, **EYE_OFFSET}
# An eye's End Site is straight ahead of it, so its bone shows where it looks.
_EYE_TIP = (0.0, 0.0, 0.02)
# An End Site continues a leaf bone this far along its own offset.
_TIP = 0.8

Quat = Sequence[float]


def euler_zxy(q: Quat) -> tuple[float, float, float]:
    """(z, x, y) in degrees with R(q) = Rz(z) * Rx(x) * Ry(y)."""
    x, y, z, w = (float(v) for v in q)
    n = math.sqrt(x * x + y * y + z * z + w * w) or 1.0
    x, y, z, w = x / n, y / n, z / n, w / n
    r01 = 2.0 * (x * y - z * w)
    r11 = 1.0 - 2.0 * (x * x + z * z)
    r20 = 2.0 * (x * z - y * w)
    r21 = 2.0 * (y * z + x * w)
    r22 = 1.0 - 2.0 * (x * x + y * y)
    sx = max(-1.0, min(1.0, r21))
    ax = math.asin(sx)
    if abs(sx) < 0.999999:
        az = math.atan2(-r01, r11)
        ay = math.atan2(-r20, r22)
    else:
        # Gimbal lock: only z + y (or z - y) is defined; put it all in z.
        r00 = 1.0 - 2.0 * (y * y + z * z)
        r10 = 2.0 * (x * y + z * w)
        az = math.atan2(r10, r00)
        ay = 0.0
    return math.degrees(az), math.degrees(ax), math.degrees(ay)


def _near(angle: float, last: float) -> float:
    """`angle` plus the whole turns that bring it within 180 degrees of `last`."""
    return angle + 360.0 * round((last - angle) / 360.0)


def continued(
    angles: tuple[float, float, float], last: tuple[float, float, float] | None
) -> tuple[float, float, float]:
    """The ZXY angles of the same rotation as `angles` nearest to `last`. A bone turning
    from 179 to -179 degrees was written so, and a reader interpolating frames (Blender's,
    a game engine's) spun it 358 degrees the other way: 26 such steps in the squat clip."""
    if last is None:
        return angles
    z, x, y = angles
    other = (z + 180.0, 180.0 - x, y + 180.0)
    nearest = [
        (_near(a, last[0]), _near(b, last[1]), _near(c, last[2])) for a, b, c in (angles, other)
    ]
    return min(nearest, key=lambda near: sum(abs(p - q) for p, q in zip(near, last, strict=True)))


def joints() -> list[str]:
    """Every joint in the order BVH lists them (depth first from the hips)."""
    order: list[str] = []

    def visit(bone: str) -> None:
        order.append(bone)
        for child in children(bone):
            visit(child)

    visit(ROOT)
    return order


def children(bone: str) -> list[str]:
    return [name for name, parent in JOINT_PARENT.items() if parent == bone]


def _scaled(v: Vec3, s: float) -> Vec3:
    return (v[0] * s, v[1] * s, v[2] * s)


def _fmt(values: Sequence[float]) -> str:
    return " ".join(f"{v:.6f}" for v in values)


def _hierarchy(bone: str, depth: int) -> Iterator[str]:
    pad = "\t" * depth
    if JOINT_PARENT[bone] is None:
        yield f"ROOT {bone}"
        yield "{"
        yield f"\tOFFSET {_fmt((0.0, 0.0, 0.0))}"
        yield f"\tCHANNELS 6 {' '.join(POSITION_CHANNELS + ROTATION_CHANNELS)}"
    else:
        yield f"{pad}JOINT {bone}"
        yield f"{pad}{{"
        yield f"{pad}\tOFFSET {_fmt(JOINT_OFFSET[bone])}"
        yield f"{pad}\tCHANNELS 3 {' '.join(ROTATION_CHANNELS)}"
    kids = children(bone)
    for child in kids:
        yield from _hierarchy(child, depth + 1)
    if not kids:
        tip = _EYE_TIP if bone in EYE_OFFSET else _scaled(JOINT_OFFSET[bone], _TIP)
        yield f"{pad}\tEnd Site"
        yield f"{pad}\t{{"
        yield f"{pad}\t\tOFFSET {_fmt(tip)}"
        yield f"{pad}\t}}"
    yield f"{pad}}}"


# The joints that place the feet: their chains from the hips.
_LEGS = [
    f"{side}{bone}"
    for side in ("left", "right")
    for bone in ("UpperLeg", "LowerLeg", "Foot", "Toes")
]


def _lowest(held: Mapping[str, Quat]) -> float:
    """How far below the hips' joint the lowest ankle, toe joint or toe tip is, with the
    hips and legs turned as `held` says (unheld: at rest)."""

    def turn(bone: str) -> quat.Quat:
        # As euler_zxy reads them: a quaternion twice unit length put the hips 0.38 m low.
        x, y, z, w = held.get(bone, quat.IDENTITY)
        return quat.normalize((x, y, z, w))

    turned = {ROOT: turn(ROOT)}
    at: dict[str, Vec3] = {ROOT: (0.0, 0.0, 0.0)}
    heights = []
    for bone in _LEGS:
        parent = JOINT_PARENT[bone] or ROOT
        at[bone] = quat.add(at[parent], quat.rotate(turned[parent], JOINT_OFFSET[bone]))
        turned[bone] = quat.multiply(turned[parent], turn(bone))
        heights.append(at[bone][1])
        if bone.endswith("Toes"):
            tip = quat.rotate(turned[bone], _scaled(JOINT_OFFSET[bone], _TIP))
            heights.append(at[bone][1] + tip[1])
    return -min(heights)


# At rest, the figure stands on the floor.
_REST_LOWEST = _lowest({})


def frame_time_s(recording: Recording) -> float:
    count = len(recording.frames)
    if count < 2 or recording.duration_ms <= 0.0:
        return SINGLE_FRAME_S
    return max(recording.duration_ms / 1000.0 / (count - 1), SHORTEST_FRAME_S)


def _hips_xy(rig: Mapping[str, Any] | None) -> tuple[float, float] | None:
    moved = None if rig is None else rig.get("hips_position")
    return None if not moved else (float(moved[0]), float(moved[1]))


def motion(recording: Recording) -> Iterator[list[float]]:
    """One row of channel values per frame, in the hierarchy's order."""
    order = joints()
    held: dict[str, Quat] = {}
    rest = REST_OFFSET[ROOT]
    first_y: float | None = None
    sway = (0.0, 0.0)
    written: dict[str, tuple[float, float, float]] = {}
    for frame in recording.frames:
        rig = rig_of(frame)
        if rig is not None:
            held.update(rig.get("bones", {}))
            eyes = eye_rotation(rig.get("expressions", {}))
            if eyes is not None:
                held.update(dict.fromkeys(EYE_OFFSET, eyes))
        hips = _hips_xy(rig)
        if hips is not None:
            first_y = hips[1] if first_y is None else first_y
            sway = (hips[0], hips[1] - first_y)
        # Not below where the legs, as they are bent, put the feet on the floor.
        standing = rest[1] - _REST_LOWEST + _lowest(held)
        row = [rest[0] + sway[0], max(rest[1] + sway[1], standing), rest[2]]
        for bone in order:
            q = held.get(bone)
            angles = (0.0, 0.0, 0.0) if q is None else euler_zxy(q)
            written[bone] = continued(angles, written.get(bone))
            row.extend(written[bone])
        # BVH readers refuse inf and nan; the recording's bounds keep them out, and this
        # keeps them out of the file should a bound ever be loosened. The terms are degrees
        # and positions within MAX_MAGNITUDE, so the sum itself cannot overflow.
        if not math.isfinite(sum(row)):
            reason = "the rig gives a rotation or position that is not finite"
            raise RecordingError(0, f"frame {frame.frame}: {reason}")
        yield row


def on_the_clock(times_ms: Sequence[float]) -> list[int]:
    """For each motion frame k, at the first time plus k mean intervals, the index of the
    line nearest that time (the later of two as near). BVH plays its frames evenly: a
    phone's variable-rate video (25 lines in its first second, then one every 120 ms) was
    written a line a frame, and its first second played over three. Evenly timed lines map
    to themselves."""
    count = len(times_ms)
    first, span = times_ms[0], times_ms[-1] - times_ms[0]
    if count < 2 or span <= 0.0:
        return list(range(count))
    step = span / (count - 1)
    picked, at = [], 0
    for k in range(count):
        due = first + k * step
        while at + 1 < count and abs(times_ms[at + 1] - due) <= abs(times_ms[at] - due):
            at += 1
        picked.append(at)
    return picked


def to_bvh(recording: Recording) -> str:
    lines = ["HIERARCHY", *_hierarchy(ROOT, 0), "MOTION"]
    lines.append(f"Frames: {len(recording.frames)}")
    lines.append(f"Frame Time: {frame_time_s(recording):.6f}")
    # Every line goes through motion(), so held bones and continued angles see them all.
    rows = [_fmt(row) for row in motion(recording)]
    lines.extend(rows[i] for i in on_the_clock([frame.time_ms for frame in recording.frames]))
    return "\n".join(lines) + "\n"
