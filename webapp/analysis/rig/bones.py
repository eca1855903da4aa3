"""VRM 1.0 humanoid bone names, their parents, and the landmark indices the solver reads.

Rest pose: VRM's normalized T-pose, every bone's rotation the identity. The character faces
+Z with +Y up, its left arm along +X, palms facing -Y, fingers along the arm, thumbs level
at 45 degrees between the arm and +Z, legs along -Y, toes toward +Z.
"""

from __future__ import annotations

from typing import ClassVar

SIDES = ("left", "right")
FINGER_JOINTS = {
    "Thumb": ("Metacarpal", "Proximal", "Distal"),
    "Index": ("Proximal", "Intermediate", "Distal"),
    "Middle": ("Proximal", "Intermediate", "Distal"),
    "Ring": ("Proximal", "Intermediate", "Distal"),
    "Little": ("Proximal", "Intermediate", "Distal"),
}
# MediaPipe hand landmarks along each finger, base to tip: each bone spans two of them.
FINGER_POINTS = {
    "Thumb": (1, 2, 3, 4),
    "Index": (5, 6, 7, 8),
    "Middle": (9, 10, 11, 12),
    "Ring": (13, 14, 15, 16),
    "Little": (17, 18, 19, 20),
}


def _side_bones(side: str) -> dict[str, str]:
    parents = {
        f"{side}Shoulder": "upperChest",
        f"{side}UpperArm": f"{side}Shoulder",
        f"{side}LowerArm": f"{side}UpperArm",
        f"{side}Hand": f"{side}LowerArm",
        f"{side}UpperLeg": "hips",
        f"{side}LowerLeg": f"{side}UpperLeg",
        f"{side}Foot": f"{side}LowerLeg",
    }
    for finger, joints in FINGER_JOINTS.items():
        parent = f"{side}Hand"
        for joint in joints:
            parents[f"{side}{finger}{joint}"] = parent
            parent = f"{side}{finger}{joint}"
    return parents


# Every bone the solver can emit, parent first (the order local rotations are composed in).
PARENT: dict[str, str | None] = {
    "hips": None,
    "spine": "hips",
    "chest": "spine",
    "upperChest": "chest",
    "neck": "upperChest",
    "head": "neck",
    **_side_bones("left"),
    **_side_bones("right"),
}
BONES = frozenset(PARENT)


def other_side(name: str) -> str:
    """leftUpperArm <-> rightUpperArm; central bones are their own mirror image."""
    if name.startswith("left"):
        return "right" + name[4:]
    if name.startswith("right"):
        return "left" + name[5:]
    return name


class Pose:
    """MediaPipe Pose landmark indices (the person's own left and right)."""

    NOSE = 0
    LEFT_EYE = 2
    RIGHT_EYE = 5
    LEFT_EAR = 7
    RIGHT_EAR = 8
    MOUTH_LEFT = 9
    MOUTH_RIGHT = 10
    SHOULDER: ClassVar[dict[str, int]] = {"left": 11, "right": 12}
    ELBOW: ClassVar[dict[str, int]] = {"left": 13, "right": 14}
    WRIST: ClassVar[dict[str, int]] = {"left": 15, "right": 16}
    PINKY: ClassVar[dict[str, int]] = {"left": 17, "right": 18}
    INDEX: ClassVar[dict[str, int]] = {"left": 19, "right": 20}
    HIP: ClassVar[dict[str, int]] = {"left": 23, "right": 24}
    KNEE: ClassVar[dict[str, int]] = {"left": 25, "right": 26}
    ANKLE: ClassVar[dict[str, int]] = {"left": 27, "right": 28}
    HEEL: ClassVar[dict[str, int]] = {"left": 29, "right": 30}
    FOOT_INDEX: ClassVar[dict[str, int]] = {"left": 31, "right": 32}
