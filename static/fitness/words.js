// Words and numbers shared by the fitness page and the coach's view.

const PHASES = {
  up: "Up",
  down: "Down",
  ready: "Getting ready: hold the start position",
  out_of_view: "Out of view: step back until the camera sees the whole movement",
};

export function phaseText(phase) {
  return PHASES[phase] ?? (phase ? String(phase) : "–");
}

// "left_body_line" -> "Left body line"
export function measureLabel(name) {
  const words = String(name).replaceAll("_", " ");
  return words[0].toUpperCase() + words.slice(1);
}

// Ratios (knee and feet spread) have no unit; every other measure is in degrees.
export function measureValue(name, value) {
  if (!Number.isFinite(value)) return "–";
  return name.endsWith("_spread") ? `${value.toFixed(2)}×` : `${Math.round(value)}°`;
}

// A two-sided exercise's count of each side, {left: 3, right: 2} -> "left 3 · right 2";
// "" for a one-sided one (no sides).
export function sidesText(sides) {
  return sides ? Object.entries(sides).map(([side, n]) => `${side} ${n}`).join(" · ") : "";
}

// 5 and {left: 3, right: 2} -> "5 (left 3 · right 2)"; 5 alone for a one-sided exercise.
function repsAndSides(reps, sides) {
  const each = sidesText(sides);
  return each ? `${reps} (${each})` : String(reps);
}

// 6, 10 -> "6 of 10"; without a target, the reps alone (with their sides).
export function repsOfTarget(reps, sides, target) {
  const done = repsAndSides(reps, sides);
  return Number.isInteger(target) ? `${done} of ${target}` : done;
}

// 1 -> "rep", anything else -> "reps"
export function repsWord(count) {
  return count === 1 ? "rep" : "reps";
}

// 65400 -> "1:05"
export function clock(ms) {
  if (!Number.isFinite(ms) || ms < 0) return "0:00";
  const seconds = Math.floor(ms / 1000);
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

// GET /api/exercises, as [{name, title, joints, ...}] in the server's order.
export async function loadExercises() {
  const response = await fetch("/api/exercises");
  if (!response.ok) throw new Error(`the server answered ${response.status}`);
  const body = await response.json();
  if (!Array.isArray(body.exercises)) throw new Error("the server's answer has no exercises");
  return body.exercises;
}

export function titleOf(exercises, name) {
  return exercises.find((e) => e.name === name)?.title ?? name ?? "–";
}

// "Shoulder press" -> "shoulder presses", "Squat" -> "squats": a title with an "s" added
// read "Counting shoulder presss.", and exercises.toml may add a "Crunch" with no code.
export function pluralOf(exercises, name) {
  const title = titleOf(exercises, name).toLowerCase();
  return /(s|x|z|ch|sh)$/.test(title) ? `${title}es` : `${title}s`;
}
