// The workout log: every set of this browser's workouts, from the server's `workout`
// messages (each one the whole workout so far), as a table and as a CSV file. It is kept in
// the browser's storage, so a reload or tomorrow's visit still shows it; nothing about it is
// kept on the server. A workout is known by its watch link while it runs: a reconnect or a
// reload that keeps the link keeps the workout, in its next session.

import { clock, repsOfTarget, titleOf } from "./words.js";
import { saveFile } from "../files.js";
import { localDateTime } from "../format.js";

const CSV_COLUMNS = [
  "date", "set", "session", "exercise", "reps", "target", "partial_reps", "time_s", "range_of_motion_deg", "rep_s", "quality",
];
const STORAGE = "holotrack.workoutLog.v1";
// Older workouts give way: storage is small (about 5 MB) and a log this long is a CSV's job.
const KEPT_WORKOUTS = 200;

// per: a unit to divide by first, so that a missing figure (null) stays empty, not 0.
function fixed(value, digits, per = 1) {
  return Number.isFinite(value) ? (value / per).toFixed(digits) : "";
}

// 2026-12-02 17:05, in the browser's own time zone.
function localTime(ms) {
  return localDateTime(ms).slice(0, 16);
}

// workouts: {began, session, sets}, in order; one record per set, numbered in its workout.
export function setRecords(workouts) {
  const records = [];
  for (const { began, session, sets, from = 0 } of workouts) {
    sets.forEach((set, i) => {
      records.push({
        // Its own start: the workout's dated a set begun after midnight the day before.
        date: localTime(set.began ?? began),
        set: from + i + 1,
        session,
        exercise: set.exercise,
        reps: set.reps,
        target: Number.isInteger(set.target) ? set.target : null,
        partial_reps: set.partial_reps ?? 0,
        sides: set.sides ?? null,
        time_ms: set.duration_ms,
        range_of_motion: set.range_of_motion,
        rep_ms: set.rep_ms,
        quality: set.quality,
      });
    });
  }
  return records;
}

function csvField(value) {
  const text = value === null || value === undefined ? "" : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function toCsv(records) {
  const rows = records.map((r) => [
    r.date,
    r.set,
    r.session,
    r.exercise,
    r.reps,
    r.target,
    r.partial_reps,
    fixed(r.time_ms, 1, 1000),
    fixed(r.range_of_motion, 1),
    fixed(r.rep_ms, 2, 1000),
    fixed(r.quality, 2),
  ]);
  return [CSV_COLUMNS, ...rows].map((row) => row.map(csvField).join(",")).join("\r\n") + "\r\n";
}

// A count as the server gives one: 1e21 and -4 passed Number.isInteger.
const isCount = (n) => Number.isSafeInteger(n) && n >= 0;

const isTime = (ms) => typeof ms === "number" && Number.isFinite(new Date(ms).getTime());

// A set's counts as the server gives them; a side's count that was an object showed as
// "left [object Object]", a string of sides as "0 a · 1 b".
function validSet(s) {
  const sides = s?.sides;
  return (
    typeof s?.exercise === "string" &&
    isCount(s.reps) &&
    (s.began === undefined || isTime(s.began)) &&
    (s.partial_reps === undefined || s.partial_reps === null || isCount(s.partial_reps)) &&
    (sides === undefined || sides === null || (typeof sides === "object" && !Array.isArray(sides) && Object.values(sides).every(isCount)))
  );
}

// A stored workout as this page wrote it; anything else (another version, a hand edit) is
// left out rather than trusted. A `began` past what a Date holds read "NaN-NaN-NaN NaN:NaN"
// in the table and the CSV.
function valid(entry) {
  return (
    typeof entry?.id === "string" &&
    typeof entry.session === "string" &&
    (entry.link === undefined || typeof entry.link === "string") &&
    isTime(entry.began) &&
    (entry.from === undefined || isCount(entry.from)) &&
    Array.isArray(entry.sets) &&
    entry.sets.every(validSet)
  );
}

function stored() {
  try {
    const list = JSON.parse(localStorage.getItem(STORAGE) ?? "[]");
    return Array.isArray(list) ? list.filter(valid) : [];
  } catch {
    return []; // unreadable or refused: the log starts empty
  }
}

function newId() {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

export class WorkoutLog {
  constructor({ body, empty, download, clear, kept, exercises }) {
    this.body = body;
    this.empty = empty;
    this.download = download;
    this.clearButton = clear;
    this.kept = kept;
    this.exercises = exercises; // [{name, title}], for the titles
    // Each cell carries its column's name: on a phone the rows stack and say it themselves.
    this.labels = [...body.closest("table").tHead.rows[0].cells].map((th) => th.textContent);
    this.workouts = stored(); // {id, began, session, link, sets, from?}, oldest first
    this.running = new Map(); // watch link -> its workout, for this page's sessions
    this.fresh = new Set(); // links whose next workout is a new one (begin())
    this.written = new Set(); // ids of the workouts this tab has stored
    download.addEventListener("click", () => this.save());
    clear.addEventListener("click", () => this.clear());
    // Another tab of this browser kept a workout, or cleared the log. Unheard, a tab open
    // since before downloaded a CSV without the sets done in the other, and its running
    // workout put back every set a Clear there had taken, at its next rep.
    window.addEventListener("storage", (event) => {
      if (event.key === STORAGE || event.key === null) this.follow();
    });
    this.say(true);
    this.render();
  }

  // A session whose ready says it carries nothing over: its next workout is a new row,
  // though its link may be one a row has (a link opened again after the server's grace).
  begin(link) {
    this.running.delete(link);
    this.fresh.add(link);
  }

  // The workout `message` of session `session`, whose watch link is `link`.
  update(link, session, message) {
    if (!Array.isArray(message.sets)) return;
    // A reload forgot which workouts run; the last stored one with this link goes on.
    let workout = this.fresh.delete(link) ? null : (this.running.get(link) ?? this.workouts.findLast((w) => w.link === link));
    // The server lists a workout's last 100 sets, the first of them its set `first_set`:
    // past 100, the log lost its first sets and numbered the rest from 1.
    const first = isCount(message.first_set - 1) ? message.first_set - 1 : 0;
    if (!workout) {
      workout = { id: newId(), began: Date.now(), session, link, sets: [], ...(first ? { from: first } : {}) };
      this.workouts.push(workout);
    }
    this.running.set(link, workout);
    // Cleared mid-workout, the sets done before the Clear (`from`) stay cleared; those no
    // longer listed stay as kept.
    const from = workout.from ?? 0;
    const known = workout.sets;
    const kept = known.slice(0, Math.max(0, first - from));
    // A set is dated when the log first hears of it (a new set's workout comes at once);
    // the server's times are the camera's clock, not the day's.
    const now = Date.now();
    const listed = message.sets.slice(Math.max(0, from - first)).map((set, i) => {
      const before = known[kept.length + i];
      const began = before ? before.began : now;
      return began === undefined ? set : { ...set, began };
    });
    workout.sets = [...kept, ...listed];
    this.keep(workout);
    this.render();
  }

  // Written back merged with what other tabs kept meanwhile, by id, newest last.
  keep(workout) {
    const others = stored().filter((w) => w.id !== workout.id);
    const all = [...others, workout].sort((a, b) => a.began - b.began).slice(-KEPT_WORKOUTS);
    try {
      localStorage.setItem(STORAGE, JSON.stringify(all));
      this.written.add(workout.id);
      this.say(true);
    } catch {
      this.say(false);
    }
  }

  say(kept) {
    this.kept.textContent = kept
      ? `Kept in this browser (its last ${KEPT_WORKOUTS} workouts); the server keeps none of it.`
      : "This browser does not let the page keep the log: download it before you leave.";
    this.kept.dataset.kept = String(kept);
  }

  clear() {
    if (!window.confirm("Clear the workout log in this browser? Download it first to keep a copy.")) return;
    try {
      localStorage.removeItem(STORAGE);
    } catch {
      // nothing was kept
    }
    // The set under way goes on: it is back at the workout's next message. Each running
    // workout stays, empty, with how many sets the Clear took, and is stored so at once: a
    // reload before that message would bring them all back.
    this.workouts = [...this.running.values()].map((w) => ({
      ...w,
      id: newId(),
      sets: [],
      from: (w.from ?? 0) + Math.max(0, w.sets.length - 1),
    }));
    this.running = new Map(this.workouts.map((w) => [w.link, w]));
    for (const workout of this.workouts) this.keep(workout);
    this.render();
  }

  // The log as the other tab left it, this tab's running workouts as this tab has them; one
  // that is gone from it was cleared there mid-workout, as by this tab's Clear.
  follow() {
    const kept = stored();
    const ids = new Set(kept.map((w) => w.id));
    for (const [link, w] of this.running) {
      // One this tab could not store (storage full) was never there to clear.
      if (ids.has(w.id) || !this.written.has(w.id)) continue;
      const cleared = { ...w, id: newId(), sets: [], from: (w.from ?? 0) + Math.max(0, w.sets.length - 1) };
      this.running.set(link, cleared);
      // Stored at once: the next change there would find it gone again, and clear it again.
      this.keep(cleared);
    }
    const own = new Set([...this.running.values()].map((w) => w.id));
    this.workouts = [...kept.filter((w) => !own.has(w.id)), ...this.running.values()].sort((a, b) => a.began - b.began);
    this.render();
  }

  records() {
    return setRecords(this.workouts);
  }

  render() {
    // The newest workout on top, its sets in the order they were done.
    const records = setRecords([...this.workouts].reverse());
    this.body.replaceChildren(
      ...records.map((r) => {
        const row = document.createElement("tr");
        const cells = [
          r.date,
          String(r.set),
          titleOf(this.exercises, r.exercise),
          `${repsOfTarget(r.reps, r.sides, r.target)}${r.partial_reps ? `, ${r.partial_reps} partial` : ""}`,
          clock(r.time_ms),
          Number.isFinite(r.range_of_motion) ? `${Math.round(r.range_of_motion)}°` : "–",
          Number.isFinite(r.rep_ms) ? `${(r.rep_ms / 1000).toFixed(1)} s` : "–",
        ];
        cells.forEach((text, i) => {
          const cell = document.createElement("td");
          cell.textContent = text;
          cell.dataset.label = this.labels[i];
          row.append(cell);
        });
        return row;
      }),
    );
    this.empty.hidden = records.length > 0;
    this.download.disabled = records.length === 0;
    this.clearButton.disabled = records.length === 0;
  }

  save() {
    const records = this.records();
    if (!records.length) return;
    const blob = new Blob([toCsv(records)], { type: "text/csv;charset=utf-8" });
    // Today as the log's dates read it: the UTC date named an evening's file in America,
    // and a morning's in Asia, after the next day or the last.
    saveFile(`holotrack-workout-${localTime(Date.now()).slice(0, 10)}.csv`, blob);
  }
}
