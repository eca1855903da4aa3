// The live view: camera frames to GET /ws, skeletons drawn over the video, and a readout.

import { cameraError, closeCamera, FrameEncoder, openCamera } from "./capture.js";
import { drawSkeleton, loadSkeleton } from "./draw.js";
import { showStatus } from "./format.js";
import { Average, RateMeter } from "./meter.js";
import { describeError, socketUrl } from "./protocol.js";
import { Recorder } from "./record.js";
import { LiveSession } from "./session.js";

const $ = (id) => document.getElementById(id);
const startButton = $("live-start");
const stopButton = $("live-stop");
const mirror = $("live-mirror");
const widthChoice = $("live-width");
const fpsChoice = $("live-fps");
const stage = $("live-stage");
const video = $("live-video");
const overlay = $("live-overlay");
const status = $("live-status");
const notice = $("live-notice");
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

let stream = null;
let session = null;
let skeleton = null;
let encoder = null;
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
  readout.sent.textContent = figures.sent.rate(now).toFixed(1);
  readout.received.textContent = figures.received.rate(now).toFixed(1);
  readout.latency.textContent = figures.latency.value === null ? "–" : `${Math.round(figures.latency.value)} ms`;
  readout.dropped.textContent = String(figures.earlier.dropped + figures.dropped);
  readout.errors.textContent = String(figures.earlier.errors + figures.errors);
  readout.results.textContent = String(figures.results);
  readout.granted.textContent = figures.granted === null ? "–" : figures.granted.toFixed(1);
  readout.session.textContent = figures.session || "–";
  stage.dataset.sent = String(figures.frames);
  stage.dataset.turns = String(figures.turns);
  stage.dataset.sentOnTurn = String(figures.onTurn);
}

function clearOverlay() {
  overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
}

function draw(landmarks) {
  if (overlay.width !== video.videoWidth || overlay.height !== video.videoHeight) {
    overlay.width = video.videoWidth;
    overlay.height = video.videoHeight;
  }
  const ctx = overlay.getContext("2d");
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  drawSkeleton(ctx, landmarks, skeleton, overlay.width, overlay.height);
}

function setRunning(running) {
  startButton.disabled = running;
  stopButton.disabled = !running;
  recorder.available(running);
  stage.dataset.running = String(running);
}

function openSession() {
  const previous = session;
  session = null; // so its "ended" does not stop the camera
  previous?.stop("");
  const own = new LiveSession({
    url: socketUrl(),
    track: track(),
    fps: Number(fpsChoice.value),
    grab: () => encoder.grab(video),
    handlers: {
      status: (text, kind) => showStatus(status, text, kind),
      ready: (message) => {
        figures.earlier.dropped += figures.dropped;
        figures.earlier.errors += figures.errors;
        figures.dropped = figures.errors = 0;
        figures.granted = message.fps;
        figures.session = message.session;
        showStatus(status, `Tracking (${message.track}) at up to ${message.fps} fps.`, "ok");
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
        draw(message.landmarks);
        recorder.add(message);
        showReadout();
      },
      stats: (message) => {
        figures.dropped = message.dropped;
        figures.errors = message.errors;
        figures.granted = message.fps;
        showReadout();
      },
      error: (message) => showStatus(notice, describeError(message), "error"),
      ended: (text, kind) => {
        if (session !== own) return; // replaced by a restart
        session = null;
        stopCamera();
        if (text) showStatus(status, text, kind);
      },
    },
  });
  session = own;
  own.start();
}

function stopCamera() {
  clearInterval(refresh);
  refresh = null;
  closeCamera(video, stream);
  stream = null;
  clearOverlay();
  setRunning(false);
  showReadout();
}

async function start() {
  setRunning(true);
  showStatus(notice, "");
  showStatus(status, "Asking for the camera…", "busy");
  figures = newFigures();
  showReadout();
  try {
    skeleton = await loadSkeleton();
  } catch (error) {
    setRunning(false);
    showStatus(status, `Cannot load the bone tables from the server: ${error.message}.`, "error");
    return;
  }
  try {
    stream = await openCamera(video);
  } catch (error) {
    closeCamera(video, video.srcObject);
    setRunning(false);
    showStatus(status, cameraError(error), "error");
    return;
  }
  for (const camera of stream.getVideoTracks()) {
    camera.addEventListener("ended", () => session?.stop("The camera stopped."));
  }
  encoder = new FrameEncoder(Number(widthChoice.value));
  refresh = setInterval(showReadout, 500);
  openSession();
}

function stop() {
  if (session) {
    session.stop("Stopped.");
  } else {
    stopCamera();
    showStatus(status, "Stopped.", "info");
  }
}

// Track and frame rate are fixed by the hello, so changing them starts a new session.
function restartIfRunning() {
  if (session && stream) openSession();
}

startButton.addEventListener("click", start);
stopButton.addEventListener("click", stop);
mirror.addEventListener("change", () => stage.classList.toggle("mirrored", mirror.checked));
widthChoice.addEventListener("change", () => {
  if (encoder) encoder.width = Number(widthChoice.value);
});
fpsChoice.addEventListener("change", restartIfRunning);
for (const choice of document.querySelectorAll('input[name="live-track"]')) {
  choice.addEventListener("change", restartIfRunning);
}
window.addEventListener("pagehide", () => session?.stop(""));

stage.classList.toggle("mirrored", mirror.checked);
setRunning(false);
document.body.dataset.liveReady = "true";
