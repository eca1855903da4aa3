// The fitness page: the live page's camera session with hello "exercise" counts reps on the
// server; this page shows the count, the angles and the cues, times the set, keeps the
// workout log and offers the coach's watch link.

import { CameraChoice } from "../camera_choice.js";
import { swapEnabled } from "../focus.js";
import { duration, showStatus } from "../format.js";
import { keepInputs } from "../kept_inputs.js";
import { VideoOverlay } from "../overlay.js";
import { Recorder } from "../record.js";
import { CameraRun } from "../run.js";
import { CoachCode } from "./coach_code.js";
import { markExercise } from "./marks.js";
import { FitnessSession } from "./connection.js";
import { WorkoutLog } from "./log.js";
import { RepReadout } from "./readout.js";
import { WatchShare } from "../share.js";
import { onSettledInput } from "../settled.js";
import { RepTarget } from "./target.js";
import { SetTimer } from "./timer.js";
import { Voice } from "./voice.js";
import { loadExercises, pluralOf, titleOf } from "./words.js";

const FPS = 15;
const FRAME_WIDTH = 480;
// Stop asks for the workout first; this long without an answer, it stops anyway.
const SUMMARY_WAIT_MS = 2500;
// The log also asks for it this often, so the current set's time keeps up.
const SUMMARY_EVERY_MS = 5000;

const $ = (id) => document.getElementById(id);
const startButton = $("fitness-start");
const stopButton = $("fitness-stop");
const newSetButton = $("fitness-new-set");
const exerciseSelect = $("fitness-exercise");
const status = $("fitness-status");
const notice = $("fitness-notice");
const stage = $("fitness-stage");
const video = $("fitness-video");
const setTitle = $("fitness-set-title");
const cameraTip = $("fitness-camera");
const trackChoices = [...document.querySelectorAll('input[name="fitness-track"]')];
const targetInput = $("fitness-target");
// The exercise is kept by the address (?exercise=), the rest by the browser.
keepInputs("holotrack.fitness.controls", [...trackChoices, targetInput]);
// The skeleton over the video shows what the counter sees (a limb out of view, a wrong pose).
const overlay = new VideoOverlay($("fitness-overlay"), video);
let overlayReady = false;

const readout = new RepReadout({
  reps: $("fitness-reps"),
  unit: $("fitness-rep-unit"),
  sides: $("fitness-sides"),
  phase: $("fitness-phase"),
  angles: $("fitness-angles"),
  cues: $("fitness-cues"),
  lastRep: $("fitness-last-rep"),
});
const target = new RepTarget({ input: targetInput, line: $("fitness-to-go"), note: $("fitness-target-note") });
// The server keeps the set's target too: a coach watching sees it, and the log keeps it.
// Told as it is typed, as the page shows it: typed mid-set and the box never left (the
// hands back on the floor), the page read "3 to go of 4" while the coach's card and the
// log had no target at all.
function aim() {
  const session = run.session;
  if (session && (session.options.target ?? null) !== target.goal) session.aim(target.goal);
}
// A number typed is told once the keys stop (or the box is left): told at every key, "12"
// was a target of 1 for a moment, "1 of 1 reps" on the coach's card.
onSettledInput(targetInput, aim);
const timer = new SetTimer($("fitness-timer"));
const voice = new Voice({ box: $("fitness-voice"), note: $("fitness-voice-note") });
const share = new WatchShare({ box: $("coach-share"), link: $("coach-link"), button: $("coach-copy"), status: $("coach-share-status"), view: "/coach" });
const coachCode = new CoachCode({
  box: $("coach-code-box"),
  code: $("coach-code"),
  words: $("coach-code-words"),
  address: $("coach-address"),
  pair: { button: $("coach-pair-offer"), box: $("coach-pair-offered"), code: $("coach-pair-code"), page: $("coach-pair-page"), status: $("coach-pair-status") },
});

const recorder = new Recorder({ button: $("fitness-record"), status: $("fitness-record-status"), name: "fitness" });
// A reload mid-workout goes on with the workout and the coach's link; Stop ends both.
const run = new CameraRun({ video, status, notice, setRunning, cameraClosed, Session: FitnessSession, keepLink: true, stopKeepsLink: false, camera: new CameraChoice($("fitness-camera-choice")) });

let exercises = [];
let log = null;
let results = 0;
let reps = 0;
let stopping = null; // the timer of a Stop waiting for its workout
let summaries = null;
// A Start's first workout sets the timer: the set may be one a reload left going.
let timeFromWorkout = false;
// Counts down the words that a reload's set is kept (showKeptSet).
let keptSetTicks = null;
let keptExercise = null; // that set's exercise

function track() {
  return trackChoices.find((choice) => choice.checked)?.value ?? "pose";
}

function setRunning(running) {
  const states = [[startButton, running || exercises.length === 0], [stopButton, !running]];
  swapEnabled(states, [stopButton, startButton]);
  newSetButton.disabled = !running;
  recorder.available(running);
  for (const choice of trackChoices) choice.disabled = running;
  document.body.dataset.running = String(running);
}

function showSet(name) {
  setTitle.textContent = titleOf(exercises, name);
  document.body.dataset.exercise = name;
  const camera = exercises.find((e) => e.name === name)?.camera;
  cameraTip.textContent = camera ? `Camera: ${camera}` : "";
}

// A new set has started on the server (reps 0): the page follows.
function startSet(name) {
  timeFromWorkout = false;
  reps = 0;
  readout.reset(exercises.find((e) => e.name === name)?.joints);
  target.reset();
  timer.reset();
  voice.reset();
  showSet(name);
}

function onResult(message) {
  results += 1;
  stage.dataset.results = String(results);
  recorder.add(message);
  const fitness = message.fitness;
  if (overlayReady) {
    overlay.draw(message.landmarks);
    markExercise(overlay.canvas, message.landmarks, fitness, exercises);
  }
  if (!fitness) {
    showStatus(notice, "The server's results carry no rep count: this server does not count exercises yet.", "error");
    return;
  }
  // Sent before the server heard of the set begun here (another exercise chosen, or a
  // New set of the same, while results were on their way): the last set's. Shown, it put
  // back that set's title and count, and its angles took rows in the new set's list.
  if (run.session?.ofLastSet(message)) return;
  timer.running();
  readout.show(fitness);
  voice.show(fitness, target.show(fitness.reps));
  if (fitness.exercise !== document.body.dataset.exercise) showSet(fitness.exercise);
  if (fitness.reps !== reps) {
    reps = fitness.reps;
    run.session?.summary(); // the log follows each rep
  }
}

function openSession() {
  // This session's, for its workouts: one that comes after a Stop (the answer to ending it
  // by request) belongs in its own log row, though another Start has begun meanwhile.
  let sessionId = "";
  let link = ""; // its watch link, which its workout keeps across reconnects
  const own = run.open({
    track: track(),
    fps: FPS,
    options: { exercise: exerciseSelect.value, target: target.goal },
    handlers: {
      ready: (message) => {
        sessionId = message.session;
        link = typeof message.watch === "string" ? message.watch : message.session;
        if (message.resumed === false) {
          // A new workout: the server no longer had the last session (its grace ran out, or
          // it restarted), so the set starts at 0, its timer too (it ran on from the old
          // set's time, ahead of the log's). Harmless on a first Start, which did the same.
          // The hello's exercise: the list may show another not yet started (New set).
          log?.begin(link);
          startSet(own.options.exercise);
        }
        document.body.dataset.session = message.session;
        showCounting();
        share.show(message.watch, { watchers: message.max_watchers });
        // A coach is a watcher: with none allowed a code would only be refused.
        const watchable = typeof message.watch === "string" && message.max_watchers !== 0;
        coachCode.show(watchable ? message.watch : null);
      },
      result: onResult,
      paired: (message) => coachCode.used(message.code),
      forgotten: () => coachCode.pair.renew(),
      workout: (message) => {
        if (sessionId) log.update(link, sessionId, message);
        if (timeFromWorkout && run.session === own && Array.isArray(message.sets)) {
          timeFromWorkout = false;
          timer.atLeast(message.sets.at(-1)?.duration_ms);
        }
        if (stopping !== null && run.session === own && own.finalAsked) own.stop("Stopped.");
      },
    },
  });
  clearInterval(summaries);
  summaries = setInterval(() => run.session?.summary(), SUMMARY_EVERY_MS);
}

function cameraClosed() {
  clearTimeout(stopping);
  stopping = null;
  clearInterval(summaries);
  summaries = null;
  timer.stop();
  voice.stop();
  overlay.clear();
  share.hide();
  coachCode.show(null);
  delete document.body.dataset.session;
  setRunning(false);
}

async function start() {
  clearInterval(keptSetTicks);
  keptExercise = null;
  voice.prime();
  run.begin();
  results = 0;
  stage.dataset.results = "0";
  startSet(exerciseSelect.value);
  timeFromWorkout = true;
  // Without the bone tables the count goes on; only the drawing is missing, and said so.
  const refused = overlayReady ? null : await overlay.load();
  overlayReady = refused === null;
  if (!(await run.openCamera(FRAME_WIDTH))) return;
  if (refused) showStatus(notice, `${refused} Counting goes on without the skeleton.`, "error");
  openSession();
}

// Asks for the workout first, so the log has the last set's final figures.
function stop() {
  const own = run.session;
  if (!own) {
    run.stop();
    return;
  }
  if (stopping !== null) return;
  showStatus(status, "Stopping…", "busy");
  if (own.windDown()) {
    stopping = setTimeout(() => own.stopUnanswered("Stopped."), SUMMARY_WAIT_MS);
  } else {
    own.stop("Stopped.");
  }
}

function showCounting() {
  // No rate: the server changes it every few seconds, and a figure only the ready set would go stale.
  showStatus(status, `Counting ${pluralOf(exercises, exerciseSelect.value)}.`, "ok");
}

function newSet() {
  // While reconnecting, the set starts once the connection is back (connection.js).
  if (!run.session?.newSet(exerciseSelect.value)) return;
  startSet(exerciseSelect.value);
  // The status named the exercise the session began with; a Stop under way says so
  // instead, and a pause (the camera gave no picture) too: "Counting" hid it.
  if (stopping === null && run.holds.size === 0) showCounting();
}

// Reloaded mid-workout, the page shows 0 reps and the first visit's words, as if the set
// were lost; but the server keeps the paused session a while, and Start goes on with it
// (run.js, kept_link.js). The page says so, and says when the server has let it go. The
// seconds are read again each second: "kept for 58 s" said a minute on, it read as a fault.
function showKeptSet() {
  if ((run.link?.secondsLeft() ?? 0) <= 0) return;
  // The address kept the set's exercise through the reload.
  keptExercise = exerciseSelect.value;
  sayKeptSet();
  keptSetTicks = setInterval(sayKeptSet, 1000);
}

function sayKeptSet() {
  const left = run.link.secondsLeft();
  if (left <= 0) {
    clearInterval(keptSetTicks);
    showStatus(status, "Your set from before the reload has ended, not resumed in time: press Start to begin a new one.", "info");
  } else if (exerciseSelect.value === keptExercise) {
    showStatus(status, `Your set from before the reload is kept for ${duration(left)}: press Start to go on with it, with its count and your coach's link.`, "info", { ticking: true });
  } else {
    // The server goes on with the workout, but another exercise is a new set, from 0.
    showStatus(status, `Your workout from before the reload is kept for ${duration(left)}: press Start to go on with it and your coach's link, with a new set of ${pluralOf(exercises, exerciseSelect.value)} from 0 (your ${pluralOf(exercises, keptExercise)} keep their count in the workout).`, "info", { ticking: true });
  }
}

function fillExercises(list) {
  exerciseSelect.replaceChildren(
    ...list.map((e) => {
      const option = document.createElement("option");
      option.value = e.name;
      option.textContent = e.title;
      return option;
    }),
  );
  const wanted = new URLSearchParams(window.location.search).get("exercise");
  if (wanted && list.some((e) => e.name === wanted)) {
    exerciseSelect.value = wanted;
  } else if (wanted) {
    // An old bookmark, or a name from another server: the address says what is shown.
    nameInAddress(exerciseSelect.value);
    showStatus(notice, `This server counts no exercise called “${wanted}”: showing ${pluralOf(list, exerciseSelect.value)}.`, "info");
  }
  exerciseSelect.disabled = false;
  showSet(exerciseSelect.value);
}

function nameInAddress(name) {
  const address = new URL(window.location.href);
  address.searchParams.set("exercise", name);
  history.replaceState(null, "", address);
}

startButton.addEventListener("click", start);
stopButton.addEventListener("click", stop);
newSetButton.addEventListener("click", newSet);
// While running, another exercise is a new set of it; otherwise the next Start's. The
// address names it (?exercise=), so a reload or a bookmark comes back to it.
exerciseSelect.addEventListener("change", () => {
  nameInAddress(exerciseSelect.value);
  if (run.session) {
    newSet();
    return;
  }
  showSet(exerciseSelect.value);
  // Not at the next tick: a second of the kept set's words, wrong now.
  if (keptExercise !== null && (run.link?.secondsLeft() ?? 0) > 0) sayKeptSet();
});

setRunning(false);
try {
  exercises = await loadExercises();
  fillExercises(exercises);
  showKeptSet();
} catch (error) {
  showStatus(status, `Cannot load the exercises from the server: ${error.message}.`, "error");
}
log = new WorkoutLog({
  body: $("log-body"),
  empty: $("log-empty"),
  download: $("log-download"),
  clear: $("log-clear"),
  kept: $("log-kept"),
  exercises,
});
setRunning(false);
document.body.dataset.fitnessReady = "true";
