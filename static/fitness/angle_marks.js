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
  const marks = [];
  for (const [side, indices] of Object.entries(points)) {
    const value = fitness.angles[`${side}_${exercise.angle}`];
    const limbs = indices.map((i) => pose[i]);
    if (Number.isFinite(value) && limbs.every(seen)) {
      marks.push({ label: measureValue(exercise.angle, value), at: limbs.map((p) => [p[0] * width, p[1] * height]) });
    }
  }
  const s = strokeScale(width, height);
  const ctx = canvas.getContext("2d");
  ctx.save();
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.strokeStyle = MARK_COLOR;
  ctx.lineWidth = 5 * s;
  for (const { at } of marks) {
    ctx.beginPath();
    ctx.moveTo(...at[0]);
    ctx.lineTo(...at[1]);
    ctx.lineTo(...at[2]);
    ctx.stroke();
  }
  // The stage mirrors the canvas with CSS; its words must read the right way round.
  const mirror = canvas.closest(".mirrored") !== null ? -1 : 1;
  ctx.font = `bold ${Math.round(16 * s)}px system-ui, sans-serif`;
  ctx.textBaseline = "middle";
  ctx.fillStyle = MARK_COLOR;
  ctx.strokeStyle = "#000000";
  ctx.lineWidth = 4 * s;
  const gap = 10 * s;
  const lineHeight = 20 * s;
  const placed = []; // [x, y, width] of each label drawn: side-on, the two joints are close
  for (const { label, at } of marks) {
    const [x] = at[1];
    let [, y] = at[1];
    const w = ctx.measureText(label).width + gap;
    const overlaps = () => placed.some(([px, py, pw]) => Math.abs(px - x) < Math.max(pw, w) && Math.abs(py - y) < lineHeight);
    while (overlaps()) y += lineHeight;
    placed.push([x, y, w]);
    ctx.setTransform(mirror, 0, 0, 1, x, y);
    ctx.strokeText(label, gap, 0);
    ctx.fillText(label, gap, 0);
  }
  ctx.restore();
}
