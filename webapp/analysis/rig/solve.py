"""One frame's landmarks in, a VRM pose out: local bone rotations, hips offset, expressions.

Stateless: smoothing is the caller's (webapp.analysis.smoothing), done on the landmarks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from webapp.analysis.rig import arms, face, hands, legs, quat, torso
from webapp.analysis.rig.bones import PARENT, SIDES, Pose, other_side
from webapp.analysis.rig.calibration import EyeCalibration
from webapp.analysis.rig.face import Gaze
from webapp.analysis.rig.quat import V3, Quat, Vec

MIN_VISIBILITY = 0.5
# The pose's image z overstates depth: scaled by this, elbow angles from image points come
# closest to those from pose_world_landmarks (bench/README.md: 12 degrees rms, 47 at 1.0).
POSE_Z_SCALE = 0.4
# Assumed shoulder width (m) that turns image distances into the hips offset's metres.
SHOULDER_WIDTH_M = 0.36
_TO_RIG = np.array([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class Rig:
    """bones: local rotations [x, y, z, w] relative to the parent, in VRM's normalized
    T-pose; hips_position: metres from the image centre on the rig's axes (z is 0: one
    camera gives no depth); expressions: VRM presets, 0..1 (all 0 without a face);
    blendshapes: ARKit's, 0..1, when the session asked for them and the face was found;
    gaze: the irises' face.gaze() as seen (the person's own, mirror or not, no rest taken
    off), None without irises, for calibrating; hand_sources: where each side's hand bone
    came from (the bones' sides, mirrored with them), for easing a change; not sent."""

    bones: dict[str, Quat]
    hips_position: V3
    expressions: dict[str, float]
    blendshapes: dict[str, float] = field(default_factory=dict)
    gaze: Gaze | None = None
    hand_sources: dict[str, hands.Source] = field(default_factory=dict)

    def to_json(self, digits: int = 4) -> dict[str, Any]:
        quats: list[list[float]] = np.round(list(self.bones.values()), digits).tolist()
        out = {
            "bones": dict(zip(self.bones, quats, strict=True)),
            "hips_position": np.round(self.hips_position, digits).tolist(),
            "expressions": {k: round(v, 3) for k, v in self.expressions.items()},
        }
        if self.blendshapes:
            out["blendshapes"] = {k: round(v, 3) for k, v in self.blendshapes.items()}
        return out


def to_rig_space(points: ArrayLike, width: int, height: int, z_scale: float = 1.0) -> list[Vec]:
    """MediaPipe normalized image points (x right, y down, z away from the camera, z on x's
    scale) to pixels on the rig's axes: +X the image's right, +Y up, +Z toward the camera.
    A person facing a camera whose image is not mirrored then has their left at +X, as
    the avatar does."""
    scale = np.array([width, height, width * z_scale]) * _TO_RIG
    p = np.asarray(points, dtype=np.float64)[:, :3] * scale
    rows: list[Vec] = p.tolist()
    return rows


def mesh_points(
    points: ArrayLike, indices: Sequence[int], width: int, height: int
) -> dict[int, Vec]:
    """to_rig_space() of only these of the points, by index: the face mesh has 478 and a
    frame reads 40 of them, and converting all cost a tenth of a millisecond, twice."""
    rows = to_rig_space(np.asarray(points)[list(indices)], width, height)
    return dict(zip(indices, rows, strict=True))


def _locals(world: dict[str, Quat], local: dict[str, Quat]) -> dict[str, Quat]:
    """Every bone's local rotation, parents first: those in `local` as they are, the others
    from their world rotations (a child's is inverse(parent's world rotation) * its own)."""
    out: dict[str, Quat] = {}
    for bone, parent in PARENT.items():
        if bone in local:
            out[bone] = local[bone]
        elif bone in world:
            q = (
                world[bone]
                if parent is None
                else quat.multiply(quat.inverse(world[parent]), world[bone])
            )
            out[bone] = quat.canonical(quat.normalize(q))
    return out


def solve(
    landmarks: Mapping[str, ArrayLike | None],
    width: int,
    height: int,
    *,
    mirror: bool = False,
    pose_world: ArrayLike | None = None,
    min_visibility: float = MIN_VISIBILITY,
    eyes: EyeCalibration | None = None,
    expression_face: ArrayLike | None = None,
    blendshapes: Mapping[str, float] | None = None,
    gaze_rest: Gaze = (0.0, 0.0),
) -> Rig | None:
    """The rig for one result's landmarks (the protocol's parts, lists or arrays), or None
    without a pose. width and height are the image's, which normalized points need.

    pose_world, MediaPipe's pose_world_landmarks (metres, hips-centred), replaces the image
    points for the body when given: its depth is better. mirror: the avatar moves like a
    mirror image (left and right swapped). eyes: the session's eye calibration, updated
    with this frame's face (the fixed calibration without). expression_face: the face the
    expressions are read from when it is not landmarks["face"] (a smoothed session's
    unsmoothed one); the head's rotation always comes from landmarks["face"]. blendshapes:
    ARKit's, as the worker read them from the face, passed through (and mirrored).
    gaze_rest: the gaze that reads as looking straight ahead (a session's calibration).
    """
    pose_raw = landmarks.get("pose")
    if pose_raw is None:
        return None
    pose = np.asarray(pose_raw, dtype=np.float64)
    visible: list[bool] = (pose[:, 3] >= min_visibility).tolist()
    image_points = to_rig_space(pose, width, height, POSE_Z_SCALE)
    if pose_world is not None:
        points: list[Vec] = (np.asarray(pose_world, dtype=np.float64)[:, :3] * _TO_RIG).tolist()
    else:
        points = image_points
    face_raw = landmarks.get("face")
    face_points = None
    expression_points = None
    irises = False
    if face_raw is not None:
        mesh = np.asarray(face_raw, dtype=np.float64)
        face_points = mesh_points(mesh, torso.HEAD_FACE_POINTS, width, height)
        if expression_face is not None:
            mesh = np.asarray(expression_face, dtype=np.float64)
        irises = len(mesh) >= face.IRIS_POINTS
        expression_points = mesh_points(mesh, face.points_read(irises), width, height)

    world = torso.torso(points, visible)
    if face_points is not None and not torso.within_neck(
        torso.face_head(face_points), world["chest"]
    ):
        # A face turned further than a neck turns is the model's guess on the back of a
        # head: neither the head, the eyes nor the mouth follow it, nor the blendshapes the
        # worker read from it (a perfect-sync avatar blinked and spoke with it).
        face_points = expression_points = None
        irises = False
        blendshapes = None
    local: dict[str, Quat] = {}
    sources: dict[str, hands.Source] = {}
    world.update(torso.head(points, face_points, world["chest"]))
    for side in SIDES:
        world[f"{side}Shoulder"] = world["upperChest"]
        upper, lower = arms.arm(points, visible, side, world["chest"])
        world[f"{side}UpperArm"], world[f"{side}LowerArm"] = upper, lower
        hand_raw = landmarks.get(f"{side}_hand")
        hand_points = None if hand_raw is None else to_rig_space(hand_raw, width, height)
        shown = None if hand_points is None else hands.seen(hand_points, side)
        world[f"{side}Hand"], sources[side] = hands.hand(points, visible, shown, side, lower)
        if hand_points is not None and shown is not None:
            # Relative to the hand as its own landmarks show it: the fingers keep the
            # model's shape when hand() turned or held the hand bone.
            local.update(hands.fingers(hand_points, side, shown))
        world.update(legs.leg(points, visible, side))

    seen = face.gaze(expression_points) if expression_points is not None and irises else None
    rig = Rig(
        bones=_locals(world, local),
        hips_position=_hips_position(image_points, width, height),
        expressions=dict.fromkeys(face.EXPRESSIONS, 0.0)
        if expression_points is None
        else face.expressions(
            expression_points,
            None if eyes is None else eyes.update(expression_points),
            None if seen is None else (seen[0] - gaze_rest[0], seen[1] - gaze_rest[1]),
        ),
        blendshapes=dict(blendshapes or {}),
        gaze=seen,
        hand_sources=sources,
    )
    return mirrored(rig) if mirror else rig


def _hips_position(points: list[Vec], width: int, height: int) -> V3:
    hips = quat.mid(points[Pose.HIP["left"]], points[Pose.HIP["right"]])
    shoulders = quat.norm(quat.sub(points[Pose.SHOULDER["left"]], points[Pose.SHOULDER["right"]]))
    metres_per_px = SHOULDER_WIDTH_M / max(shoulders, 1.0)
    return ((hips[0] - width / 2.0) * metres_per_px, (hips[1] + height / 2.0) * metres_per_px, 0.0)


def mirrored(rig: Rig) -> Rig:
    """The mirror image: left and right bones and expressions swapped, rotations reflected
    across the YZ plane, the hips' x negated. mirrored(mirrored(r)) == r."""
    return Rig(
        bones={other_side(k): quat.mirror(q) for k, q in rig.bones.items()},
        hips_position=(-rig.hips_position[0], rig.hips_position[1], rig.hips_position[2]),
        expressions={_swap_expression(k): v for k, v in rig.expressions.items()},
        blendshapes={_swap_expression(k): v for k, v in rig.blendshapes.items()},
        gaze=rig.gaze,
        hand_sources={other_side(k): v for k, v in rig.hand_sources.items()},
    )


def _swap_expression(name: str) -> str:
    for a, b in (("Left", "Right"), ("Right", "Left")):
        if name.endswith(a):
            return name[: -len(a)] + b
    return name
