"""Draws docs/rig.png: the rig's axes, rest pose and sides (the PNG is committed).

.venv/bin/python -m bench.rig_picture
"""

import argparse
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import Circle, FancyArrowPatch, Rectangle

if __name__ == "__main__":
    # Before any drawing: --help must not redraw the committed docs/rig.png.
    argparse.ArgumentParser(prog="python -m bench.rig_picture", description=__doc__).parse_args()

fig, axes = plt.subplots(1, 3, figsize=(15, 5.6))
L, R = "#1f77b4", "#d62728"


def arrow(
    ax: Any,
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    color: str = "k",
    text: str | None = None,
    dx: float = 0.0,
    dy: float = 0.0,
    lw: float = 2,
) -> None:
    ax.add_patch(
        FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=16, color=color, lw=lw)
    )
    if text:
        ax.text(x1 + dx, y1 + dy, text, color=color, fontsize=11, ha="center", va="center")


def dot(
    ax: Any,
    x: float,
    y: float,
    text: str | None = None,
    color: str = "k",
    below: bool = True,
    side: str | None = None,
) -> None:
    ax.plot(x, y, "o", color=color, ms=5)
    if text:
        if side:
            ax.text(
                x + (0.1 if side == "right" else -0.1),
                y,
                text,
                color=color,
                fontsize=7,
                ha="left" if side == "right" else "right",
                va="center",
            )
        else:
            ax.text(
                x,
                y + (-0.12 if below else 0.12),
                text,
                color=color,
                fontsize=7,
                ha="center",
                va="top" if below else "bottom",
                rotation=-35 if below else 0,
            )


# 1. Front view: the T-pose as the camera sees the avatar (and the person).
ax = axes[0]
ax.set_title(
    "Rest pose (VRM normalized T-pose), front view\n"
    "the camera looks along -Z; +Z comes out of the page",
    fontsize=10,
)
ax.plot([0, 0], [0.9, 2.3], "k-", lw=3)  # spine
ax.add_patch(Circle((0, 2.55), 0.22, fill=False, lw=2))
ax.plot([0, 1.6], [2.1, 2.1], "-", color=L, lw=3)
ax.plot([0, -1.6], [2.1, 2.1], "-", color=R, lw=3)
ax.plot([0.15, 0.25], [0.9, -0.6], "-", color=L, lw=3)
ax.plot([-0.15, -0.25], [0.9, -0.6], "-", color=R, lw=3)
for x, t, c in ((0.55, "leftUpperArm", L), (1.15, "leftLowerArm", L), (1.6, "leftHand", L)):
    dot(ax, x, 2.1, t, c)
for x, t, c in ((-0.55, "rightUpperArm", R), (-1.15, "rightLowerArm", R), (-1.6, "rightHand", R)):
    dot(ax, x, 2.1, t, c)
dot(ax, 0, 0.9, "hips", side="right")
dot(ax, 0, 1.5, "spine, chest", side="right")
dot(ax, 0.2, 0.15, "leftLowerLeg", L, side="right")
dot(ax, -0.2, 0.15, "rightLowerLeg", R, side="left")
ax.text(
    1.15,
    2.45,
    "character's LEFT\n= the person's left\n= MediaPipe left_*\n(image right)",
    color=L,
    ha="center",
    fontsize=9,
)
ax.text(-1.15, 2.45, "character's right\n= the person's right", color=R, ha="center", fontsize=9)
arrow(ax, -1.8, 0.6, -1.1, 0.6, text="+X", dx=0.0, dy=0.15)
arrow(ax, -1.8, 0.6, -1.8, 1.3, text="+Y", dy=0.12)
ax.plot(-1.8, 0.6, "o", mfc="white", mec="k", ms=11)
ax.plot(-1.8, 0.6, "k.", ms=5)
ax.text(-1.8, 0.45, "+Z (out)", fontsize=9, ha="center", va="top")
ax.text(
    0,
    -1.25,
    "palms face -Y, fingers along the arm, thumbs level at 45 deg\n"
    "between the arm and +Z; feet point +Z. Every bone's rest rotation\n"
    "is the identity; each quaternion [x, y, z, w] is relative to its parent.",
    ha="center",
    fontsize=8.5,
)
ax.set_xlim(-2.1, 2.1)
ax.set_ylim(-1.6, 3.0)
ax.set_aspect("equal")
ax.axis("off")

# 2. Camera image to rig space.
ax = axes[1]
ax.set_title("From the camera image to the rig's axes", fontsize=10)
ax.add_patch(Rectangle((-1.5, 0.2), 3.0, 2.2, fill=False, lw=1.5))
ax.text(-1.45, 2.3, "camera image (not mirrored)", fontsize=8, va="top")
arrow(ax, -1.5, 2.4, -0.9, 2.4, text="x", dy=0.1)
arrow(ax, -1.5, 2.4, -1.5, 1.8, text="y", dx=-0.12)
ax.text(-1.35, 1.75, "z: away from camera", fontsize=7)
ax.add_patch(Circle((0, 1.75), 0.18, fill=False))
ax.plot([0, 0], [1.57, 0.8], "k-")
ax.plot([0, 0.7], [1.45, 1.05], color=L, lw=2)
ax.plot([0, -0.7], [1.45, 1.05], color=R, lw=2)
ax.text(0.75, 0.95, "person's LEFT\nhand", color=L, fontsize=8, ha="center", va="top")
ax.text(-0.75, 0.95, "person's right\nhand", color=R, fontsize=8, ha="center", va="top")
ax.text(
    0,
    -0.25,
    "rig point = (x * width, -y * height, -z * width)\n"
    "(pose_world_landmarks: (x, -y, -z), metres)\n\n"
    "mirror=false: the avatar's left follows the person's left;\n"
    "seen from the front it moves like the (unmirrored) video.\n"
    "mirror=true: left and right bones swap and every rotation is\n"
    "reflected across the YZ plane, (x, y, z, w) -> (x, -y, -z, w):\n"
    "the avatar moves like the person's mirror image.",
    ha="center",
    va="top",
    fontsize=8.5,
)
ax.set_xlim(-1.8, 1.8)
ax.set_ylim(-2.2, 2.8)
ax.set_aspect("equal")
ax.axis("off")

# 3. Side view: which way joints bend.
ax = axes[2]
ax.set_title("Side view (from the character's left, +X toward you)", fontsize=10)
ax.plot([0, 0], [0.9, 2.3], "k-", lw=3)
ax.add_patch(Circle((0, 2.55), 0.22, fill=False, lw=2))
ax.plot([0, 0.55, 0.95], [2.1, 1.55, 1.95], "-", color=L, lw=3)
ax.text(0.95, 2.05, "a bending elbow moves\nthe forearm toward +Z", color=L, fontsize=8, ha="left")
ax.plot([0, 0.25, -0.2], [0.9, 0.1, -0.6], "-", color=L, lw=3)
ax.text(-0.3, 0.05, "a bending knee moves\nthe shin toward -Z", color=L, fontsize=8, ha="right")
ax.plot([-0.2, 0.25], [-0.6, -0.65], "-", color=L, lw=3)
ax.text(0.3, -0.75, "toes +Z", fontsize=8)
arrow(ax, -1.4, 2.6, -0.8, 2.6, text="+Z (front)", dy=0.15)
arrow(ax, -1.4, 2.6, -1.4, 3.2, text="+Y", dy=0.12)
ax.text(
    0,
    -1.15,
    "lowerArm / lowerLeg rotate only relative to their parent: their\n"
    "rotation angle is the bend, 180 deg minus the joint's angle.\n"
    "Arms out of view hang 70 deg below the T; legs out of view are absent.",
    ha="center",
    fontsize=8.5,
)
ax.set_xlim(-2.0, 2.0)
ax.set_ylim(-1.5, 3.4)
ax.set_aspect("equal")
ax.axis("off")

fig.tight_layout()
fig.savefig(Path(__file__).resolve().parent.parent / "docs" / "rig.png", dpi=90)
