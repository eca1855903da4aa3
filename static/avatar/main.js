// The avatar page: the live page's camera session (protocol v1 with "rig": true) drives a
// VRM avatar; the camera with its skeleton, the readout and the OBS link sit beside it.

import { cameraError, closeCamera, FrameEncoder, openCamera } from "../capture.js";
import { drawSkeleton, loadSkeleton } from "../draw.js";
import { showStatus } from "../format.js";
import { Average, RateMeter } from "../meter.js";
import { describeError, socketUrl } from "../protocol.js";
import { Recorder } from "../record.js";
import { LiveSession } from "../session.js";
import { Controls } from "./controls.js";
import { setupPicker } from "./picker.js";
import { WatchShare } from "../share.js";
import { AvatarView } from "./view.js";

// Holistic: the rig's hands and face need the hand and face landmarks.
const TRACK = "holistic";
const FPS = 15;
const FRAME_WIDTH = 480;

const $ = (id) => document.getElementById(id);
const startButton = $("avatar-start");
const stopButton = $("avatar-stop");
const status = $("avatar-status");
const notice = $("avatar-notice");
const stage = $("avatar-stage");
const video = $("avatar-video");
const overlay = $("avatar-overlay");
const readout = {
  sent: $("avatar-fps-sent"),
  received: $("avatar-fps-received"),
  latency: $("avatar-latency"),
  session: $("avatar-session"),
};

const controls = new Controls($);
const view = new AvatarView($("avatar-view"));
const share = new WatchShare({ box: $("watch-share"), link: $("watch-link"), button: $("watch-copy"), status: $("watch-share-status") });

const recorder = new Recorder({ button: $("avatar-record"), status: $("avatar-record-status"), name: "avatar" });

let stream = null;
let session = null;
let skeleton = null;
let encoder = null;
let figures = null;
let refresh = null;

function newFigures() {
  return { sent: new RateMeter(), received: new RateMeter(), latency: new Average(), results: 0, rigs: 0, session: "", warnedNoRig: false };
}

function showReadout() {
  if (!figures) return;
  const now = performance.now();
  readout.sent.textContent = figures.sent.rate(now).toFixed(1);
  readout.received.textContent = figures.received.rate(now).toFixed(1);
  readout.latency.textContent = figures.latency.value === null ? "–" : `${Math.round(figures.latency.value)} ms`;
  readout.session.textContent = figures.session || "–";
  // For the tests: how many results and rigs came, without parsing the readout.
  stage.dataset.results = String(figures.results);
  stage.dataset.rigs = String(figures.rigs);
}

function drawOverlay(landmarks) {
  if (!controls.showCamera.checked) return;
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
    track: TRACK,
    fps: FPS,
    options: controls.helloOptions(),
    grab: () => encoder.grab(video),
    handlers: {
      status: (text, kind) => showStatus(status, text, kind),
      ready: (message) => {
        figures.session = message.session;
        document.body.dataset.session = message.session;
        showStatus(status, `Driving the avatar at up to ${message.fps} fps.`, "ok");
        share.show(message.watch);
        showReadout();
      },
      sent: () => figures.sent.tick(),
      result: (message, latencyMs) => {
        figures.results += 1;
        figures.received.tick();
        figures.latency.add(latencyMs);
        drawOverlay(message.landmarks);
        recorder.add(message);
        if (message.rig) {
          figures.rigs += 1;
          view.apply(message.rig);
        } else if (!figures.warnedNoRig) {
          figures.warnedNoRig = true;
          showStatus(notice, "The server's results carry no rig, so the avatar cannot move: this server does not support the avatar page yet.", "error");
        }
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
  overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
  view.rest();
  share.hide();
  delete document.body.dataset.session;
  setRunning(false);
  showReadout();
}

async function startCamera() {
  stream = await openCamera(video, controls.facingMode);
  for (const camera of stream.getVideoTracks()) {
    camera.addEventListener("ended", () => session?.stop("The camera stopped."));
  }
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
    await startCamera();
  } catch (error) {
    closeCamera(video, video.srcObject);
    setRunning(false);
    showStatus(status, cameraError(error), "error");
    return;
  }
  encoder = new FrameEncoder(FRAME_WIDTH);
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

// Front or back camera: only the camera changes; the session goes on.
async function switchCamera() {
  if (!stream) return;
  closeCamera(video, stream);
  try {
    await startCamera();
  } catch (error) {
    session?.stop(cameraError(error));
  }
}

function showCamera() {
  stage.hidden = !controls.showCamera.checked;
}

startButton.addEventListener("click", start);
stopButton.addEventListener("click", stop);
// Mirror and smoothing travel in the hello, so a change starts a new session.
controls.onHelloChange(() => {
  if (session && stream) openSession();
});
controls.mirror.addEventListener("change", () => stage.classList.toggle("mirrored", controls.mirror.checked));
controls.showCamera.addEventListener("change", showCamera);
controls.facing.addEventListener("change", switchCamera);
for (const choice of document.querySelectorAll('input[name="avatar-framing"]')) {
  choice.addEventListener("change", () => view.scene.setFraming(controls.framing));
}
window.addEventListener("pagehide", () => session?.stop(""));

setupPicker({ view, input: $("avatar-file"), dropTarget: $("avatar-view"), status: $("avatar-file-status") });
stage.classList.toggle("mirrored", controls.mirror.checked);
showCamera();
setRunning(false);
view.scene.setFraming(controls.framing);
window.holotrackAvatar = view.testHook();

try {
  await view.load(document.body.dataset.defaultAvatar);
  document.body.dataset.avatarReady = "true";
} catch (error) {
  showStatus($("avatar-file-status"), `Cannot load the default avatar: ${error.message}. Load your own .vrm instead.`, "error");
  document.body.dataset.avatarReady = "false";
}
