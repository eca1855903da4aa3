"""A recording as CSV: a header row, then one row per frame, for a spreadsheet or a trainer.

Columns: time_ms and frame; every landmark coordinate (pose by MediaPipe's names with
visibility, face and hands by index), empty where the part was not found; the main joint
angles in degrees, measured as the fitness counter measures them (in pixels, in the image
plane unless the line's exercise weighs depth in; empty where a point is not seen); ARKit's
blendshapes by their names when the recording's rigs carry them (a session or a video asked
for them), empty on a frame without a face; and exercise and reps when the recording has
them.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Sequence

from webapp.analysis.fitness import load_exercises
from webapp.analysis.fitness.angles import INDEX, LANDMARKS, SIDES, angle, seen, to_points
from webapp.export.recording import PARTS, Frame, Recording

# A line without a known exercise is measured as the exercises' defaults measure.
MIN_VISIBILITY = 0.5
DEPTH = 0.0
# Each angle is at the middle point of three (exercises.toml's measures of the same names).
JOINTS: dict[str, tuple[str, str, str]] = {
    "elbow": ("shoulder", "elbow", "wrist"),
    "shoulder": ("hip", "shoulder", "elbow"),
    "hip": ("shoulder", "hip", "knee"),
    "knee": ("hip", "knee", "ankle"),
}
ANGLES = [f"{side}_{joint}" for joint in JOINTS for side in SIDES]
_AXES = ("x", "y", "z", "visibility")


FORMULA_STARTS = frozenset("=+-@\t\r")


def landmark_columns() -> list[str]:
    columns = [f"pose_{name}_{axis}" for name in LANDMARKS for axis in _AXES]
    for part in ("face", "left_hand", "right_hand"):
        count, width = PARTS[part]
        columns += [f"{part}_{i}_{axis}" for i in range(count) for axis in _AXES[:width]]
    return columns


def header(with_fitness: bool, blendshapes: Sequence[str] = ()) -> list[str]:
    extra = ["exercise", "reps"] if with_fitness else []
    angles = [f"{a}_deg" for a in ANGLES]
    return ["time_ms", "frame", *landmark_columns(), *angles, *blendshapes, *extra]


def blendshape_names(recording: Recording) -> list[str]:
    """Every blendshape name the recording's rigs carry, in the order first met."""
    names: dict[str, None] = {}
    for frame in recording.frames:
        names.update(dict.fromkeys((frame.rig or {}).get("blendshapes", {})))
    return list(names)


def _coordinates(frame: Frame) -> list[str]:
    cells: list[str] = []
    for part, (count, width) in PARTS.items():
        points = frame.landmarks.get(part)
        if points is None:
            cells.extend([""] * (count * width))
            continue
        # Python's floats: str() of numpy's is several times slower.
        cells.extend(map(str, points.ravel().tolist()))
    return cells


def joint_angles(
    pose: Sequence[Sequence[float]] | None,
    size: tuple[int, int],
    *,
    depth: float = DEPTH,
    min_visibility: float = MIN_VISIBILITY,
) -> list[str]:
    """The ANGLES of one frame, rounded to 0.1 degree, "" where not all three points are seen
    or two of them coincide (no angle: a spreadsheet would read "nan" as text).
    `depth` weighs z in, as an exercise that sets it does (angles.to_points)."""
    if pose is None:
        return [""] * len(ANGLES)
    cells = []
    for name in ANGLES:
        side, joint = name.split("_", 1)
        indices = [INDEX[f"{side}_{point}"] for point in JOINTS[joint]]
        if seen(pose, min_visibility, indices) != set(indices):
            cells.append("")
            continue
        points = to_points(pose, size, depth, indices)
        degrees = angle(*(points[i] for i in indices))
        cells.append(f"{degrees:.1f}" if math.isfinite(degrees) else "")
    return cells


def _measured_as(frame: Frame) -> tuple[float, float]:
    """(depth, min_visibility) of the counter for this line: a squat's knee bends toward a
    camera in front, so its counter adds z, and the image plane alone read up to 40 degrees
    off the line's own fitness angles."""
    name = (frame.fitness or {}).get("exercise")
    exercise = load_exercises().get(name) if isinstance(name, str) else None
    if exercise is None:
        return DEPTH, MIN_VISIBILITY
    return exercise.depth, exercise.min_visibility


def rows(recording: Recording) -> Iterator[list[str]]:
    with_fitness = any(f.fitness is not None for f in recording.frames)
    shapes = blendshape_names(recording)
    yield header(with_fitness, shapes)
    for frame in recording.frames:
        row = [f"{frame.time_ms:.3f}", str(frame.frame), *_coordinates(frame)]
        pose = frame.landmarks.get("pose")
        depth, min_visibility = _measured_as(frame)
        row += joint_angles(
            None if pose is None else pose.tolist(),
            frame.size,
            depth=depth,
            min_visibility=min_visibility,
        )
        weights = (frame.rig or {}).get("blendshapes", {})
        row += [str(weights[name]) if name in weights else "" for name in shapes]
        if with_fitness:
            fitness = frame.fitness or {}
            reps = fitness.get("reps")
            row += [as_text(fitness.get("exercise") or ""), "" if reps is None else str(reps)]
        yield row


def as_text(value: str) -> str:
    """A cell of text a spreadsheet shows as text: one starting with =, +, -, @ or a control
    character it would take for a formula (OWASP's "CSV injection"): a recording's
    exercise named "=cmd|' /C calc'!A0" went into the file as it was. A quote keeps it text."""
    return "'" + value if value[:1] in FORMULA_STARTS else value


def to_csv(recording: Recording) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows(rows(recording))
    return out.getvalue()
