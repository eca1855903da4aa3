// The angle that counts the reps, marked on the person: its two limbs drawn over the
// skeleton and its value beside the joint, so the number in the readout has a place.

import { MIN_VISIBILITY, strokeScale } from "../draw.js";
import { measureValue } from "./words.js";

export const MARK_COLOR = "#ffd400";

function seen(point) {
  return Array.isArray(point) && (point.length < 4 || point[3] >= MIN_VISIBILITY);
}

// canvas: the overlay, already holding this result's skeleton; exercise: its entry of
// GET /api/exercises (angle, angle_points).
export function markCountedAngle(canvas, landmarks, fitness, exercise) {
  const pose = landmarks?.pose;
  const points = exercise?.angle_points;
  if (!pose || !fitness?.angles || !points) return;
  const { width, height } = canvas;
  const s = strokeScale(width, height);
  const ctx = canvas.getContext("2d");
  // The stage mirrors the canvas with CSS; its words must read the right way round.
  const mirrored = canvas.closest(".mirrored") !== null;
  ctx.save();
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.font = `bold ${Math.round(16 * s)}px system-ui, sans-serif`;
  ctx.textBaseline = "middle";
  for (const [side, indices] of Object.entries(points)) {
    const value = fitness.angles[`${side}_${exercise.angle}`];
    const [a, b, c] = indices.map((i) => pose[i]);
    if (!Number.isFinite(value) || ![a, b, c].every(seen)) continue;
    ctx.strokeStyle = MARK_COLOR;
    ctx.lineWidth = 5 * s;
    ctx.beginPath();
    ctx.moveTo(a[0] * width, a[1] * height);
    ctx.lineTo(b[0] * width, b[1] * height);
    ctx.lineTo(c[0] * width, c[1] * height);
    ctx.stroke();
    const label = measureValue(exercise.angle, value);
    ctx.save();
    ctx.translate(b[0] * width, b[1] * height);
    if (mirrored) ctx.scale(-1, 1);
    ctx.lineWidth = 4 * s;
    ctx.strokeStyle = "#000000";
    ctx.strokeText(label, 10 * s, 0);
    ctx.fillStyle = MARK_COLOR;
    ctx.fillText(label, 10 * s, 0);
    ctx.restore();
  }
  ctx.restore();
}
