// The live view: camera frames to GET /ws, skeletons drawn over the video, and a readout.

import { CameraChoice } from "./camera_choice.js";
import { swapEnabled } from "./focus.js";
import { showStatus } from "./format.js";
import { keepInputs } from "./kept_inputs.js";
import { Average, RateMeter } from "./meter.js";
import { VideoOverlay } from "./overlay.js";
import { Recorder } from "./record.js";
import { CameraRun } from "./run.js";
import { onSettledChange } from "./settled.js";

const $ = (id) => document.getElementById(id);
const startButton = $("live-start");
const stopButton = $("live-stop");
const mirror = $("live-mirror");
const widthChoice = $("live-width");
const fpsChoice = $("live-fps");
const stage = $("live-stage");
const video = $("live-video");
const status = $("live-status");
const notice = $("live-notice");
const trackChoices = [...document.querySelectorAll('input[name="live-track"]')];
keepInputs("holotrack.live.controls", [mirror, widthChoice, fpsChoice, ...trackChoices]);
const readout = {
  sent: $("live-fps-sent"),
  received: $("live-fps-received"),
  latency: $("live-latency"),
  dropped: $("live-dropped"),
  errors: $("live-errors"),
  results: $("live-results"),
  granted: $("live-fps-granted"),
  session: $("live-session"),
};

const recorder = new Recorder({ button: $("live-record"), status: $("live-record-status"), name: "live" });
const overlay = new VideoOverlay($("live-overlay"), video);
const run = new CameraRun({ video, status, notice, setRunning, cameraClosed, camera: new CameraChoice($("live-camera")) });

let figures = null;
let refresh = null;

function track() {
  return document.querySelector('input[name="live-track"]:checked').value;
}

function newFigures() {
  return {
    sent: new RateMeter(),
    received: new RateMeter(),
    latency: new Average(),
    results: 0,
    // Frames sent, turns received and frames sent on a turn; shown as data attributes only.
    frames: 0,
    turns: 0,
    onTurn: 0,
    // The server counts per session; sessions that ended are folded into `earlier`.
    dropped: 0,
    errors: 0,
    earlier: { dropped: 0, errors: 0 },
    granted: null,
    session: "",
  };
}

function showReadout() {
  if (!figures) return;
  const now = performance.now();
  // Stopped, the rates are no one's: the last ones stayed on screen beside "Stopped."
  // Between connections too (a reconnect's countdown, a pause): a latency and a granted
  // rate, and a skeleton frozen over the moving video, stayed beside "Cannot reach the
  // server" for up to a minute. And on a connection that has stalled: the last answer's
  // "180 ms" stood beside "No answer from the server for 9 s".
  const live = stage.dataset.running === "true" && Boolean(run.session?.ready);
  const answering = live && !run.stalled;
  if (!answering) overlay.clear();
  recorder.connected(live);
  readout.sent.textContent = live ? figures.sent.rate(now).toFixed(1) : "–";
  readout.received.textContent = live ? figures.received.rate(now).toFixed(1) : "–";
  readout.latency.textContent = !answering || figures.latency.value === null ? "–" : `${Math.round(figures.latency.value)} ms`;
  readout.dropped.textContent = String(figures.earlier.dropped + figures.dropped);
  readout.errors.textContent = String(figures.earlier.errors + figures.errors);
  readout.results.textContent = String(figures.results);
  readout.granted.textContent = !live || figures.granted === null ? "–" : figures.granted.toFixed(1);
  readout.session.textContent = figures.session || "–";
  stage.dataset.sent = String(figures.frames);
  stage.dataset.turns = String(figures.turns);
  stage.dataset.sentOnTurn = String(figures.onTurn);
}

function setRunning(running) {
  swapEnabled([[startButton, running], [stopButton, !running]], [stopButton, startButton]);
  recorder.available(running);
  stage.dataset.running = String(running);
}

function openSession() {
  // This hello carries the controls as they are now: a keyed change still settling would
  // start a second session.
  dropSettling();
  run.open({
    track: track(),
    fps: Number(fpsChoice.value),
    handlers: {
      ready: (message) => {
        figures.earlier.dropped += figures.dropped;
        figures.earlier.errors += figures.errors;
        figures.dropped = figures.errors = 0;
        figures.granted = message.fps;
        figures.session = message.session;
        // No rate here: the server changes it every few seconds; the readout shows it.
        showStatus(status, `Tracking (${message.track}).`, "ok");
        showReadout();
      },
      turn: () => {
        figures.turns += 1;
      },
      sent: (seq, bytes, onTurn) => {
        figures.sent.tick();
        figures.frames += 1;
        if (onTurn) figures.onTurn += 1;
      },
      result: (message, latencyMs) => {
        figures.results += 1;
        figures.received.tick();
        figures.latency.add(latencyMs);
        overlay.draw(message.landmarks);
        recorder.add(message);
        showReadout();
      },
      stats: (message) => {
        figures.dropped = message.dropped;
        figures.errors = message.errors;
        figures.granted = message.fps;
        showReadout();
      },
    },
  });
}

function cameraClosed() {
  clearInterval(refresh);
  refresh = null;
  overlay.clear();
  setRunning(false);
  showReadout();
}

async function start() {
  run.begin();
  figures = newFigures();
  showReadout();
  const refused = await overlay.load();
  if (refused) return run.fail(refused);
  if (!(await run.openCamera(Number(widthChoice.value)))) return;
  refresh = setInterval(showReadout, 500);
  openSession();
}

// Track and frame rate are fixed by the hello, so changing them starts a new session.
function restartIfRunning() {
  if (run.session && run.stream) openSession();
}

startButton.addEventListener("click", start);
stopButton.addEventListener("click", () => {
  run.stop();
  // The notice tells of the run Stop ended (a pause it came back from, a camera opened
  // instead, a frame error): left up, "Tracking went on by itself" stood under "Stopped."
  showStatus(notice, "");
});
mirror.addEventListener("change", () => stage.classList.toggle("mirrored", mirror.checked));
widthChoice.addEventListener("change", () => {
  if (run.encoder) run.encoder.width = Number(widthChoice.value);
});
const dropSettling = onSettledChange([fpsChoice, ...trackChoices], restartIfRunning);

stage.classList.toggle("mirrored", mirror.checked);
setRunning(false);
document.body.dataset.liveReady = "true";
