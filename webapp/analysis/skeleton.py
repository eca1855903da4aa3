"""The VRM 1.0 humanoid skeleton: each bone's parent and its rest offset in a T-pose.

Axes are VRM's normalized ones (glTF, right-handed): Y up, the character faces +Z, so its
left hand points along +X. Offsets are in metres for a person about 1.6 m tall: they give
a skeleton its shape where one must be written out (VMC bone positions, BVH). A VMC
receiver poses its own model with the rotations; one that also writes the positions it is
sent (EVMC4U's default) reshapes that model to these offsets (docs/protocol.md, "VMC out").
"""

from __future__ import annotations

from collections.abc import Iterator

Vec3 = tuple[float, float, float]

_CENTRE: dict[str, tuple[str | None, Vec3]] = {
    "hips": (None, (0.0, 0.95, 0.0)),
    "spine": ("hips", (0.0, 0.10, 0.0)),
    "chest": ("spine", (0.0, 0.12, 0.0)),
    "upperChest": ("chest", (0.0, 0.12, 0.0)),
    "neck": ("upperChest", (0.0, 0.13, 0.0)),
    "head": ("neck", (0.0, 0.10, 0.0)),
}
# One side, written for the left (+X); the right is its mirror image.
_SIDE: dict[str, tuple[str, Vec3]] = {
    "Shoulder": ("upperChest", (0.03, 0.10, 0.0)),
    "UpperArm": ("Shoulder", (0.10, 0.0, 0.0)),
    "LowerArm": ("UpperArm", (0.26, 0.0, 0.0)),
    "Hand": ("LowerArm", (0.24, 0.0, 0.0)),
    "UpperLeg": ("hips", (0.09, -0.06, 0.0)),
    "LowerLeg": ("UpperLeg", (0.0, -0.42, 0.0)),
    "Foot": ("LowerLeg", (0.0, -0.40, 0.0)),
    "Toes": ("Foot", (0.0, -0.05, 0.12)),
    "ThumbMetacarpal": ("Hand", (0.02, -0.01, 0.03)),
    "ThumbProximal": ("ThumbMetacarpal", (0.025, 0.0, 0.02)),
    "ThumbDistal": ("ThumbProximal", (0.02, 0.0, 0.015)),
    "IndexProximal": ("Hand", (0.09, 0.0, 0.03)),
    "IndexIntermediate": ("IndexProximal", (0.035, 0.0, 0.0)),
    "IndexDistal": ("IndexIntermediate", (0.025, 0.0, 0.0)),
    "MiddleProximal": ("Hand", (0.09, 0.0, 0.01)),
    "MiddleIntermediate": ("MiddleProximal", (0.04, 0.0, 0.0)),
    "MiddleDistal": ("MiddleIntermediate", (0.025, 0.0, 0.0)),
    "RingProximal": ("Hand", (0.085, 0.0, -0.01)),
    "RingIntermediate": ("RingProximal", (0.035, 0.0, 0.0)),
    "RingDistal": ("RingIntermediate", (0.025, 0.0, 0.0)),
    "LittleProximal": ("Hand", (0.08, 0.0, -0.03)),
    "LittleIntermediate": ("LittleProximal", (0.03, 0.0, 0.0)),
    "LittleDistal": ("LittleIntermediate", (0.02, 0.0, 0.0)),
}


def _sides() -> Iterator[tuple[str, str | None, Vec3]]:
    for side, sign in (("left", 1.0), ("right", -1.0)):
        for part, (parent, (x, y, z)) in _SIDE.items():
            named_parent = parent if parent in _CENTRE else side + parent
            yield side + part, named_parent, (sign * x, y, z)


PARENT: dict[str, str | None] = {name: parent for name, (parent, _) in _CENTRE.items()}
REST_OFFSET: dict[str, Vec3] = {name: offset for name, (_, offset) in _CENTRE.items()}
for _name, _parent, _offset in _sides():
    PARENT[_name] = _parent
    REST_OFFSET[_name] = _offset
BONES: tuple[str, ...] = tuple(PARENT)


def children(bone: str) -> list[str]:
    return [name for name, parent in PARENT.items() if parent == bone]
