"""A rig as the VMC protocol's OSC packets, as VSeeFace, VNyan, Warudo and EVMC4U read them.

The rig speaks VRM's normalized, right-handed axes (Y up, the avatar faces +Z, its left is
+X); VMC speaks Unity's left-handed ones, where the same avatar's left is -X. Flipping X
maps one onto the other: positions negate x, quaternions negate y and z (a reflection
turns a rotation's axis like a pseudo-vector). Bones go by Unity's HumanBodyBones names,
the eyes' among them (the gaze, for models that look with eye bones; see rig/eyes.py), and
expressions by VRM 0.x names first, since every VMC receiver knows those (the protocol's
own advice); VRM 1.0 names follow for receivers that read them, then ARKit's blendshapes,
when the session has them, likewise twice: "perfect sync" VRM 0.x avatars name their blend
shape clips after them with a capital first letter (EyeBlinkLeft, as VMagicMirror and the
tools that make such avatars spell them), others as ARKit does (eyeBlinkLeft), and some
UniVRM versions match clip names exactly.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from webapp.analysis.rig.eyes import EYE_OFFSET, eye_rotation
from webapp.analysis.skeleton import REST_OFFSET

# Receivers read one datagram at a time; staying under a typical Ethernet MTU keeps a
# bundle from being fragmented on a home network, where a lost fragment loses the bundle.
MAX_DATAGRAM = 1400

# OSC's float is 32 bits: /VMC/Ext/T keeps within its range, or packing it fails.
FLOAT32_MAX = 3.4028234663852886e38

# VRM 1.0 renamed the thumb: its metacarpal is Unity's proximal, and so on down the chain.
_THUMB = {"ThumbMetacarpal": "ThumbProximal", "ThumbProximal": "ThumbIntermediate"}

VRM0_EXPRESSION = {
    "neutral": "Neutral",
    "aa": "A",
    "ih": "I",
    "ou": "U",
    "ee": "E",
    "oh": "O",
    "blink": "Blink",
    "blinkLeft": "Blink_L",
    "blinkRight": "Blink_R",
    "lookUp": "LookUp",
    "lookDown": "LookDown",
    "lookLeft": "LookLeft",
    "lookRight": "LookRight",
    "happy": "Joy",
    "angry": "Angry",
    "sad": "Sorrow",
    "relaxed": "Fun",
    # VRM 0.x has no preset for it: avatars made for VSeeFace carry a clip of this name.
    "surprised": "Surprised",
}


def unity_bone(vrm_name: str) -> str:
    """`leftUpperArm` -> `LeftUpperArm`; VRM 1.0 thumbs -> Unity's thumb names."""
    for side in ("left", "right"):
        if vrm_name.startswith(side):
            part = vrm_name[len(side) :]
            return side.capitalize() + _THUMB.get(part, part)
    return vrm_name[:1].upper() + vrm_name[1:]


def to_unity_position(p: Sequence[float]) -> tuple[float, float, float]:
    return (-float(p[0]), float(p[1]), float(p[2]))


def to_unity_rotation(q: Sequence[float]) -> tuple[float, float, float, float]:
    return (float(q[0]), -float(q[1]), -float(q[2]), float(q[3]))


# The eye bones' Unity names and rest positions, the same on every frame.
_EYES = {unity_bone(name): to_unity_position(offset) for name, offset in EYE_OFFSET.items()}


def _hips(rig: Mapping[str, Any]) -> tuple[float, float, float]:
    """The rig's hips_position is measured from the image centre, with no depth; receivers
    want the hips above their floor. Only the sideways sway carries over."""
    x, y, z = REST_OFFSET["hips"]
    moved = rig.get("hips_position")
    return (x + float(moved[0]), y, z) if moved else (x, y, z)


@functools.lru_cache(maxsize=128)
def perfect_sync_clip(name: str) -> str:
    """ARKit's eyeBlinkLeft as perfect-sync VRM 0.x avatars name the clip: EyeBlinkLeft."""
    return name[:1].upper() + name[1:]


def vmc_time(seconds: float) -> float:
    """/VMC/Ext/T's value: the protocol's relative time, in seconds, as a 32-bit float.
    Senders pass the time since their first frame, which float32 resolves to a millisecond
    for the first few hours; a clock no float32 can hold is clamped, never an error."""
    if not math.isfinite(seconds):
        return 0.0
    return max(-FLOAT32_MAX, min(FLOAT32_MAX, float(seconds)))


def _message(address: str, *args: Any) -> OscMessage:
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build()


def frame_messages(rig: Mapping[str, Any], seconds: float) -> list[OscMessage]:
    """Every message of one frame, in the order receivers expect: state, time, root, bones,
    expressions, then Apply, which tells the receiver the expressions are complete.
    `seconds` is the frame's relative time (see vmc_time)."""
    messages = [_message("/VMC/Ext/OK", 1), _message("/VMC/Ext/T", vmc_time(seconds))]
    messages.append(_message("/VMC/Ext/Root/Pos", "root", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    bones: Mapping[str, Sequence[float]] = rig.get("bones", {})
    for name, quaternion in bones.items():
        if name not in REST_OFFSET:
            continue
        position = to_unity_position(_hips(rig) if name == "hips" else REST_OFFSET[name])
        rotation = to_unity_rotation(quaternion)
        messages.append(_message("/VMC/Ext/Bone/Pos", unity_bone(name), *position, *rotation))
    expressions: Mapping[str, float] = rig.get("expressions", {})
    eyes = eye_rotation(expressions)
    if eyes is not None:
        rotation = to_unity_rotation(eyes)
        for name, position in _EYES.items():
            messages.append(_message("/VMC/Ext/Bone/Pos", name, *position, *rotation))
    for name, value in expressions.items():
        vrm0 = VRM0_EXPRESSION.get(name)
        if vrm0 is not None:
            messages.append(_message("/VMC/Ext/Blend/Val", vrm0, float(value)))
    for name, value in expressions.items():
        if VRM0_EXPRESSION.get(name) != name:
            messages.append(_message("/VMC/Ext/Blend/Val", name, float(value)))
    blendshapes: Mapping[str, float] = rig.get("blendshapes", {})
    for name, value in blendshapes.items():
        messages.append(_message("/VMC/Ext/Blend/Val", perfect_sync_clip(name), float(value)))
    for name, value in blendshapes.items():
        messages.append(_message("/VMC/Ext/Blend/Val", name, float(value)))
    messages.append(_message("/VMC/Ext/Blend/Apply"))
    return messages


def bundles(messages: Iterable[OscMessage], limit: int = MAX_DATAGRAM) -> list[bytes]:
    """Messages packed in order into as few bundles as fit `limit` bytes each."""
    out: list[bytes] = []
    builder, size = OscBundleBuilder(IMMEDIATELY), 16
    for message in messages:
        if size + 4 + message.size > limit and size > 16:
            out.append(builder.build().dgram)
            builder, size = OscBundleBuilder(IMMEDIATELY), 16
        builder.add_content(message)
        size += 4 + message.size
    if size > 16:
        out.append(builder.build().dgram)
    return out


def encode_frame(rig: Mapping[str, Any], seconds: float) -> list[bytes]:
    """One frame's rig as the datagrams to send, in order."""
    return bundles(frame_messages(rig, seconds))
