// What the counter measures, marked on the person over the skeleton: the angle that counts
// the reps (its two limbs, its value beside the joint), so the number in the readout has a
// place; and while a form cue shows, the limbs it is about, in the cue's colour.

import { MIN_VISIBILITY, strokeScale } from "../draw.js";
import { measureValue } from "./words.js";

export const MARK_COLOR = "#ffd400";
export const CUE_COLOR = "#ff2d2d";

function seen(point) {
  return Array.isArray(point) && (point.length < 4 || point[3] >= MIN_VISIBILITY);
}

// Round ends and joins: a limb's two segments meet without a notch at the joint.
function pen(canvas, color, width) {
  const ctx = canvas.getContext("2d");
  ctx.save();
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  return ctx;
}

function onCanvas(points, width, height) {
  return points.map((p) => [p[0] * width, p[1] * height]);
}

function polyline(ctx, points) {
  ctx.beginPath();
  ctx.moveTo(...points[0]);
  for (const p of points.slice(1)) ctx.lineTo(...p);
  ctx.stroke();
}

// Both marks for one result, over the skeleton already on `canvas`; exercises: the list of
// GET /api/exercises, in which the result's exercise is looked up.
export function markExercise(canvas, landmarks, fitness, exercises) {
  const exercise = exercises.find((e) => e.name === fitness?.exercise);
  markCues(canvas, landmarks, fitness, exercise);
  markCountedAngle(canvas, landmarks, fitness, exercise);
}

// exercise: its entry of GET /api/exercises (cue_lines, and cue_side_lines for a cue that
// names its side: a curl's drifting left elbow is the left arm's alone).
function markCues(canvas, landmarks, fitness, exercise) {
  const pose = landmarks?.pose;
  const lines = exercise?.cue_lines;
  if (!pose || !lines || !fitness?.cues?.length) return;
  const sideLines = exercise.cue_side_lines ?? {};
  const { width, height } = canvas;
  const ctx = pen(canvas, CUE_COLOR, 7 * strokeScale(width, height));
  for (const cue of fitness.cues) {
    const own = cue.side ? sideLines[cue.code]?.[cue.side] : undefined;
    for (const indices of own ?? lines[cue.code] ?? []) {
      const points = indices.map((i) => pose[i]);
      if (points.every(seen)) polyline(ctx, onCanvas(points, width, height));
    }
  }
  ctx.restore();
}

// exercise: its entry of GET /api/exercises (angle, angle_points).
function markCountedAngle(canvas, landmarks, fitness, exercise) {
  const pose = landmarks?.pose;
  const points = exercise?.angle_points;
  if (!pose || !fitness?.angles || !points) return;
  const { width, height } = canvas;
  const marks = [];
  for (const [side, indices] of Object.entries(points)) {
    const value = fitness.angles[`${side}_${exercise.angle}`];
    const limbs = indices.map((i) => pose[i]);
    if (Number.isFinite(value) && limbs.every(seen)) {
      marks.push({ label: measureValue(exercise.angle, value), at: onCanvas(limbs, width, height) });
    }
  }
  const s = strokeScale(width, height);
  const ctx = pen(canvas, MARK_COLOR, 5 * s);
  for (const { at } of marks) polyline(ctx, at);
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
    // Beside the joint on the side the picture has room on: a joint near the frame's edge
    // had its value cut there, "16" of "167°" (a phone held upright frames a person tightly).
    const fits = mirror === 1 ? x + w <= width : x - w >= 0;
    const start = fits ? gap : -w;
    ctx.setTransform(mirror, 0, 0, 1, x, y);
    ctx.strokeText(label, start, 0);
    ctx.fillText(label, start, 0);
  }
  ctx.restore();
}
