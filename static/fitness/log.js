// The workout log: every set of this page's workouts, from the server's `workout` messages
// (each one the whole workout so far), as a table and as a CSV file. A workout is known by
// its watch link: a reconnect that keeps the link keeps the workout, in its next session.

import { clock, titleOf } from "./words.js";

export const CSV_COLUMNS = [
  "set", "session", "exercise", "reps", "partial_reps", "time_s", "range_of_motion_deg", "rep_s", "quality",
];

function fixed(value, digits) {
  return Number.isFinite(value) ? value.toFixed(digits) : "";
}

// One record per set, in order: what the table shows and the CSV holds.
// workouts: {session, sets} each, the session being the one the workout began in.
export function setRecords(workouts) {
  const records = [];
  for (const { session, sets } of workouts) {
    for (const set of sets) {
      records.push({
        set: records.length + 1,
        session,
        exercise: set.exercise,
        reps: set.reps,
        partial_reps: set.partial_reps ?? 0,
        sides: set.sides ?? null,
        time_ms: set.duration_ms,
        range_of_motion: set.range_of_motion,
        rep_ms: set.rep_ms,
        quality: set.quality,
      });
    }
  }
  return records;
}

function csvField(value) {
  const text = value === null || value === undefined ? "" : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function toCsv(records) {
  const rows = records.map((r) => [
    r.set,
    r.session,
    r.exercise,
    r.reps,
    r.partial_reps,
    fixed(r.time_ms / 1000, 1),
    fixed(r.range_of_motion, 1),
    fixed(r.rep_ms / 1000, 2),
    fixed(r.quality, 2),
  ]);
  return [CSV_COLUMNS, ...rows].map((row) => row.map(csvField).join(",")).join("\r\n") + "\r\n";
}

export class WorkoutLog {
  constructor({ body, empty, download, exercises }) {
    this.body = body;
    this.empty = empty;
    this.download = download;
    this.exercises = exercises; // [{name, title}], for the titles
    this.workouts = new Map(); // watch link -> {session, sets}, in the order they began
    download.addEventListener("click", () => this.save());
    this.render();
  }

  // The workout `message` of session `session`, whose watch link is `link`.
  update(link, session, message) {
    if (!Array.isArray(message.sets)) return;
    const began = this.workouts.get(link)?.session ?? session;
    this.workouts.set(link, { session: began, sets: message.sets });
    this.render();
  }

  records() {
    return setRecords(this.workouts.values());
  }

  render() {
    const records = this.records();
    this.body.replaceChildren(
      ...records.map((r) => {
        const row = document.createElement("tr");
        const sides = r.sides ? ` (${Object.entries(r.sides).map(([s, n]) => `${s} ${n}`).join(", ")})` : "";
        const cells = [
          String(r.set),
          titleOf(this.exercises, r.exercise),
          `${r.reps}${sides}${r.partial_reps ? `, ${r.partial_reps} partial` : ""}`,
          clock(r.time_ms),
          Number.isFinite(r.range_of_motion) ? `${Math.round(r.range_of_motion)}°` : "–",
          Number.isFinite(r.rep_ms) ? `${(r.rep_ms / 1000).toFixed(1)} s` : "–",
        ];
        for (const text of cells) {
          const cell = document.createElement("td");
          cell.textContent = text;
          row.append(cell);
        }
        return row;
      }),
    );
    this.empty.hidden = records.length > 0;
    this.download.disabled = records.length === 0;
  }

  save() {
    const records = this.records();
    if (!records.length) return;
    const blob = new Blob([toCsv(records)], { type: "text/csv;charset=utf-8" });
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = `holotrack-workout-${new Date().toISOString().slice(0, 10)}.csv`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
}
