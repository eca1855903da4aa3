"""VRM files made for the tests from the shipped avatar (or from nothing): a glTF without
VRM, a perfect-sync copy and a copy whose lookAt turns eye bones. Each is the real model's
bytes with its glTF JSON edited, so three-vrm loads it as it would a user's file."""

from __future__ import annotations

import json
import struct
from typing import Any

from webapp.avatar_page import AvatarPaths

AVATAR = AvatarPaths().default_avatar
GLB_MAGIC, JSON_CHUNK = 0x46546C67, 0x4E4F534A


def _glb(doc: dict[str, Any], binary: bytes = b"") -> bytes:
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    header = struct.pack("<III", GLB_MAGIC, 2, 12 + 8 + len(text) + len(binary))
    return header + struct.pack("<II", len(text), JSON_CHUNK) + text + binary


def _edited(edit: Any) -> bytes:
    """The shipped avatar with edit(its glTF JSON) applied; its binary chunk unchanged."""
    glb = AVATAR.read_bytes()
    (size,) = struct.unpack_from("<I", glb, 12)
    doc = json.loads(glb[20 : 20 + size])
    edit(doc)
    return _glb(doc, glb[20 + size :])


def plain_glb() -> bytes:
    """A valid binary glTF with an empty scene and no VRM extension."""
    return _glb({"asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": []}]})


# Perfect-sync names as VSeeFace spells them (capitalised), on morphs Godette already has.
PERFECT_SYNC = {"JawOpen": "A", "EyeBlinkLeft": "Blink_L", "EyeBlinkRight": "Blink_R"}


def perfect_sync_vrm(clips: dict[str, str] = PERFECT_SYNC) -> bytes:
    """The shipped avatar with `clips` added as VRM 0.x blend shape groups, each moving the
    same morph targets as the group it names: a perfect-sync model in little."""

    def edit(doc: dict[str, Any]) -> None:
        groups = doc["extensions"]["VRM"]["blendShapeMaster"]["blendShapeGroups"]
        binds = {g["name"]: g["binds"] for g in groups}
        for name, like in clips.items():
            groups.append(
                {
                    "name": name,
                    "presetName": "unknown",
                    "binds": binds[like],
                    "materialValues": [],
                    "isBinary": False,
                }
            )

    return _edited(edit)


def eye_bones_vrm() -> bytes:
    """The shipped avatar given eye bones (two nodes under its head, where eyes sit) and a
    lookAt of type Bone with VRM's default ranges, as VRoid models have: its look blend
    shapes stay, but three-vrm turns the eye bones instead."""

    def edit(doc: dict[str, Any]) -> None:
        vrm = doc["extensions"]["VRM"]
        bones = vrm["humanoid"]["humanBones"]
        head = next(b["node"] for b in bones if b["bone"] == "head")
        for bone, x in (("leftEye", -0.03), ("rightEye", 0.03)):  # VRM 0.x faces -Z
            doc["nodes"].append({"name": bone, "translation": [x, 0.06, -0.08]})
            doc["nodes"][head].setdefault("children", []).append(len(doc["nodes"]) - 1)
            bones.append({"bone": bone, "node": len(doc["nodes"]) - 1, "useDefaultValues": True})
        first_person = vrm["firstPerson"]
        first_person["lookAtTypeName"] = "Bone"
        for way in ("HorizontalInner", "HorizontalOuter", "VerticalDown", "VerticalUp"):
            first_person[f"lookAt{way}"] = {
                "curve": [0, 0, 0, 1, 1, 1, 1, 0],
                "xRange": 90,
                "yRange": 10,
            }

    return _edited(edit)


def surprised_vrm() -> bytes:
    """The shipped avatar (VRM 0.x) with a "Surprised" clip, as avatars made for VSeeFace
    carry one: VRM 0.x has no preset for it, so it is a custom group of that name, here
    moving the same morph targets as Joy."""

    def edit(doc: dict[str, Any]) -> None:
        groups = doc["extensions"]["VRM"]["blendShapeMaster"]["blendShapeGroups"]
        joy = next(g for g in groups if g["name"] == "Joy")
        groups.append({**joy, "name": "Surprised", "presetName": "unknown"})

    return _edited(edit)
