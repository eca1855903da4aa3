// The avatar page: the live page's camera session (protocol v1 with "rig": true) drives a
// VRM avatar; the camera with its skeleton, the readout and the OBS link sit beside it.

import { CameraChoice } from "../camera_choice.js";
import { swapEnabled } from "../focus.js";
import { showStatus } from "../format.js";
import { Average, RateMeter } from "../meter.js";
import { VideoOverlay } from "../overlay.js";
import { Recorder } from "../record.js";
import { adoptKey } from "../access.js";
import { handedKeys, LinkKey } from "../link_key.js";
import { CLOSE } from "../protocol.js";
import { CameraRun } from "../run.js";
import { AvatarSession, forgetRest, storedRest } from "./connection.js";
import { Controls } from "./controls.js";
import { EmotionButtons } from "./emotion.js";
import { EmotionShare } from "./emotion_share.js";
import { ObsAvatar } from "./obs_avatar.js";
import { PairJoin } from "./pairing.js";
import { PhoneShare } from "./phone_share.js";
import { setupPicker } from "./picker.js";
import { WatchShare } from "../share.js";
import { RelayShare } from "./relay_share.js";
import { AvatarView } from "./view.js";

// Holistic: the rig's hands and face need the hand and face landmarks.
const TRACK = "holistic";
const FPS = 15;
const FRAME_WIDTH = 480;
const CALIBRATED = "Calibrated: where you looked is straight ahead for the avatar's head and eyes (kept in this browser).";
const UNCALIBRATED = "Calibration reset: head and eyes move as the camera sees them.";

const $ = (id) => document.getElementById(id);
const startButton = $("avatar-start");
const stopButton = $("avatar-stop");
const calibrateButton = $("avatar-calibrate");
const uncalibrateButton = $("avatar-uncalibrate");
const calibration = $("avatar-calibration");
const status = $("avatar-status");
const notice = $("avatar-notice");
const stage = $("avatar-stage");
const video = $("avatar-video");
const readout = {
  sent: $("avatar-fps-sent"),
  received: $("avatar-fps-received"),
  latency: $("avatar-latency"),
  session: $("avatar-session"),
};

const controls = new Controls($);
// Chosen before Start, an emotion goes with the session's first frame.
const emotions = new EmotionButtons({
  box: $("avatar-emotions"),
  send: (message) => run.session?.control(message) ?? false,
  status: $("avatar-emotion-status"),
});
const view = new AvatarView($("avatar-view"));
// Each avatar shown: which of the Expression buttons it can show.
view.loaded = (avatar) => emotions.modelHas((name) => avatar.ownExpression(name) !== null);
// Only on a server that keeps avatars for watch links (--avatar-memory-mb above 0).
const obsAvatar = $("avatar-obs")
  ? new ObsAvatar({ box: $("avatar-obs-box"), checkbox: $("avatar-obs"), status: $("avatar-obs-status") })
  : null;
// The OBS view frames the avatar as this page does: its link carries the framing.
const share = new WatchShare({
  box: $("watch-share"), link: $("watch-link"), button: $("watch-copy"), status: $("watch-share-status"),
  query: () => (controls.framing === "full" ? { framing: "full" } : {}),
});
const relayShare = new RelayShare({ box: $("relay-share"), command: $("relay-command"), button: $("relay-copy"), status: $("relay-status") });
const emotionShare = new EmotionShare({ box: $("emotion-share"), command: $("emotion-command"), named: $("emotion-named"), button: $("emotion-copy"), status: $("emotion-share-status"), labelOf: (name) => emotions.label(name) });
emotions.shown = (name, weight) => emotionShare.follow(name, weight);
// The strength kept from the last visit was shown before the command was there to follow it.
emotionShare.follow(emotions.chosen, emotions.weight);

const recorder = new Recorder({ button: $("avatar-record"), status: $("avatar-record-status"), name: "avatar" });
const overlay = new VideoOverlay($("avatar-overlay"), video);
const run = new CameraRun({ video, status, notice, setRunning, cameraClosed, Session: AvatarSession, keepLink: true, camera: new CameraChoice($("avatar-facing")) });
// The OBS link stays the same from one Start, reload or server restart to the next.
const linkKey = new LinkKey("avatar");
// Handed another page's keys (its QR code, or its pairing code typed here): this page is
// the camera of that page's link, in place of its own.
function takeLink({ link, access }, how) {
  linkKey.adopt(link);
  if (access) adoptKey(access);
  showStatus(status, `This page now drives the link of the page whose code you ${how}, in place of its own: press Start.`, "info");
  document.body.dataset.handedLink = "true";
  // This page's own OBS link and relay command, if shown, are not the link driven now.
  share.hide();
  relayShare.show("");
  emotionShare.show("");
  // This is the device the code was for: its own code would only confuse. Closed, not only
  // hidden: a code typed with the section open left it watching the old link every 3 s,
  // and its own pairing code for that link alive on the server.
  $("phone-share").open = false;
  $("phone-share").hidden = true;
  $("pair-join").open = false;
}
const handed = handedKeys();
if (handed.link) {
  takeLink(handed, "scanned");
} else if (handed.link === null) {
  showStatus(notice, "The address carried a link key that is cut short or not one, so this page keeps its own link: scan the code again.", "error");
}
const pairJoin = new PairJoin({
  form: $("pair-form"),
  input: $("pair-input"),
  button: $("pair-use"),
  status: $("pair-status"),
  handed: (keys) => takeLink(keys, "typed"),
});
let phoneResults = 0;
const phoneShare = new PhoneShare({
  box: $("phone-share"),
  code: $("phone-code"),
  page: $("phone-page"),
  address: $("phone-address"),
  pair: { button: $("pair-offer"), box: $("pair-offered"), code: $("pair-code"), page: $("pair-page"), status: $("pair-offer-status") },
  status: $("phone-status"),
  linkKey,
  handlers: {
    token: (token) => {
      share.show(token);
      relayShare.show(token);
      emotionShare.show(token, linkKey.value);
    },
    watching: (message, token) => {
      readout.session.textContent = message.session;
      obsAvatar?.watched(token, linkKey.value, message);
      emotions.phoneIs({ token, linkKey: linkKey.value });
      offerRecording();
    },
    emotion: (message) => emotions.held(message),
    // The phone's results pose this page's avatar while this page's own camera is off.
    result: (message) => {
      phoneResults += 1;
      document.body.dataset.phoneResults = String(phoneResults);
      if (run.stream) return;
      if (message.rig) view.apply(message.rig);
      recorder.add(message);
    },
    lost: () => {
      emotions.phoneIs(null);
      if (!run.stream) view.rest();
      readout.session.textContent = "–";
      offerRecording();
    },
  },
});

// Record takes this page's own results, or the phone's while they drive the avatar (its
// camera off): with the phone as the camera, the button stayed disabled, though the avatar
// moved.
let recordingFrom = null; // "own", "phone" or null: whose results a take may keep now
function offerRecording() {
  const phoneDrives = ["watching", "quiet"].includes($("phone-share").dataset.phone);
  const from = stage.dataset.running === "true" ? "own" : phoneDrives ? "phone" : null;
  // A take is one camera's, on its clock: this page's Start mid-take went on with its own
  // results, timed by another clock than the phone's (backwards when the phone's page was
  // opened first, and /api/export refused the file).
  if (from !== recordingFrom && recorder.recording) recorder.stop();
  recordingFrom = from;
  recorder.connected(from !== "own" || Boolean(run.session?.ready));
  recorder.available(from !== null);
}
// Closing the phone's section stops watching it, and so the phone's take.
$("phone-share").addEventListener("toggle", offerRecording);

let figures = null;
let refresh = null;
let renewed = false; // New link while running: its ready says so, once the link is there

function newFigures() {
  return { sent: new RateMeter(), received: new RateMeter(), latency: new Average(), results: 0, rigs: 0, session: "", warnedNoRig: false };
}

function showReadout() {
  if (!figures) return;
  const now = performance.now();
  // Stopped, the rates are no one's: the last ones stayed on screen beside "Stopped."
  const live = stage.dataset.running === "true";
  readout.sent.textContent = live ? figures.sent.rate(now).toFixed(1) : "–";
  readout.received.textContent = live ? figures.received.rate(now).toFixed(1) : "–";
  readout.latency.textContent = !live || figures.latency.value === null ? "–" : `${Math.round(figures.latency.value)} ms`;
  readout.session.textContent = figures.session || "–";
  recorder.connected(recordingFrom !== "own" || Boolean(run.session?.ready));
  // For the tests: how many results and rigs came, without parsing the readout.
  stage.dataset.results = String(figures.results);
  stage.dataset.rigs = String(figures.rigs);
}

function setRunning(running) {
  swapEnabled([[startButton, running], [stopButton, !running]], [stopButton, startButton]);
  calibrateButton.disabled = !running;
  stage.dataset.running = String(running);
  // Its Stop or a reload left this page's own session resting on the link, not a phone's.
  phoneShare.pause(running, run.link.resting());
  offerRecording();
  pairJoin.pause(running);
}

// A new session, or none: what went wrong calibrating was said of the one before (a
// Calibrate pressed too soon stayed "wait until the avatar moves" while it moved, and
// after Stop). What was copied is forgotten at Stop only: a session's ready can come after
// a copy made while it started (the command is the same; show() forgets it if not).
function newState({ stopped }) {
  if (calibration.dataset.kind === "error") showStatus(calibration, "");
  if (!stopped) return;
  relayShare.forgetCopied();
  emotionShare.forgetCopied();
}

// Whether a rest is kept in this browser, in words and for the tests.
function showCalibration(rest, text) {
  document.body.dataset.calibrated = String(rest !== null);
  uncalibrateButton.disabled = rest === null;
  if (text) showStatus(calibration, text, rest === null ? "info" : "ok");
}

function openSession(endLink = false) {
  run.open({
    track: TRACK,
    fps: FPS,
    options: { ...controls.helloOptions(), link_key: linkKey.value },
    link: linkKey.token(),
    endLink,
    handlers: {
      ready: (message) => {
        controls.vmcAccepted();
        figures.session = message.session;
        document.body.dataset.session = message.session;
        // No rate here: the server changes it every few seconds; the readout shows the one received.
        showStatus(status, "Driving the avatar.", "ok");
        newState({ stopped: false });
        share.show(message.watch, { watchers: message.max_watchers });
        // The relay is a watcher too: with none allowed it has no command to copy.
        relayShare.show(message.max_watchers === 0 ? "" : message.watch);
        emotionShare.show(message.watch, linkKey.value);
        obsAvatar?.ready(message);
        if (renewed) showStatus($("watch-share-status"), "A new link: the old one no longer works.", "info");
        renewed = false;
        showReadout();
      },
      calibrated: (rest) => showCalibration(rest, rest ? CALIBRATED : UNCALIBRATED),
      notCalibrated: (text) => showStatus(calibration, `Not calibrated: ${text}.`, "error"),
      emotion: (message) => emotions.held(message),
      connected: (send, resumed) => emotions.resend(send, resumed),
      forgotten: () => phoneShare.pair.renew(),
      refused: (code, reason) => {
        if (code === CLOSE.POLICY && reason.includes("--vmc-allow")) controls.vmcRefused(reason, () => openSession());
      },
      sent: () => figures.sent.tick(),
      result: (message, latencyMs) => {
        figures.results += 1;
        figures.received.tick();
        figures.latency.add(latencyMs);
        if (controls.showCamera.checked) overlay.draw(message.landmarks);
        recorder.add(message);
        if (message.rig) {
          figures.rigs += 1;
          view.apply(message.rig);
        } else if (message.landmarks?.pose && !figures.warnedNoRig) {
          // Found, the pose brings a rig; nobody in the picture brings none, and says nothing.
          figures.warnedNoRig = true;
          showStatus(notice, "The server's results carry no rig, so the avatar cannot move: this server does not support the avatar page yet.", "error");
        }
      },
    },
  });
}

function cameraClosed() {
  clearInterval(refresh);
  refresh = null;
  overlay.clear();
  controls.vmcStopped();
  view.rest();
  share.kept();
  newState({ stopped: true });
  delete document.body.dataset.session;
  setRunning(false);
  showReadout();
}

async function start() {
  run.begin();
  figures = newFigures();
  showReadout();
  const refused = await overlay.load();
  if (refused) return run.fail(refused);
  if (!(await run.openCamera(FRAME_WIDTH))) return;
  refresh = setInterval(showReadout, 500);
  openSession();
}

function showCamera() {
  stage.hidden = !controls.showCamera.checked;
}

startButton.addEventListener("click", start);
stopButton.addEventListener("click", () => run.stop());
calibrateButton.addEventListener("click", () => {
  if (!run.session?.calibrate()) showStatus(calibration, "Not calibrated: wait until the avatar moves, then press Calibrate.", "error");
});
uncalibrateButton.addEventListener("click", () => {
  if (run.session?.uncalibrate()) return; // the server's answer forgets it
  forgetRest();
  showCalibration(null, UNCALIBRATED);
});
// Stopped, the new link is known before any session says it: shown at once, it is the one
// to paste into OBS (hidden, the whole section went, and with it the New link button).
async function showNewLink() {
  const key = linkKey.value;
  const token = await linkKey.token();
  if (linkKey.value !== key) return; // renewed again meanwhile
  if (!token) {
    share.hide();
    return;
  }
  share.show(token);
  relayShare.show(token);
  emotionShare.show(token, key);
  showStatus($("watch-share-status"), "A new link: the old one no longer works. This one shows your avatar from your next Start.", "info");
}

// A link shared by mistake: another key, and the session holding the old link ends it.
$("watch-new").addEventListener("click", () => {
  const old = $("watch-link").dataset.token ?? null;
  linkKey.renew();
  if (run.session && run.stream) {
    renewed = true;
    openSession(true);
  } else {
    run.endResting(old);
    showNewLink();
  }
  phoneShare.renewed();
});
// Mirror, smoothing and blendshapes travel in the hello, so a change starts a new session.
// With a phone as the camera they are the phone page's: changed here, they moved nothing and
// said nothing, the slider's words reading as if the avatar followed them.
const PHONE_SETTINGS = "The phone is the camera: its mirror, smoothing, ARKit blendshapes and VMC receivers are those set on the phone’s page. These here go with this page’s own Start.";
controls.onHelloChange(() => {
  if (run.session && run.stream) openSession();
  else if (["watching", "quiet"].includes($("phone-share").dataset.phone)) showStatus(notice, PHONE_SETTINGS, "info");
});
controls.mirror.addEventListener("change", () => stage.classList.toggle("mirrored", controls.mirror.checked));
controls.showCamera.addEventListener("change", showCamera);
for (const choice of document.querySelectorAll('input[name="avatar-framing"]')) {
  choice.addEventListener("change", () => {
    view.scene.setFraming(controls.framing);
    const copied = $("watch-link").href;
    share.redraw();
    // "Link copied." (or not) was said of the link before: the clipboard holds that one.
    const said = $("watch-share-status");
    if ($("watch-link").href !== copied && said.dataset.kind !== "info") showStatus(said, "");
  });
}

const picker = view.scene.failure
  ? null
  : setupPicker({
      view,
      input: $("avatar-file"),
      dropTarget: $("avatar-view"),
      status: $("avatar-file-status"),
      forget: $("avatar-forget"),
      defaultAvatar: document.body.dataset.defaultAvatar,
      chosen: (file) => obsAvatar?.chosen(file),
    });
stage.classList.toggle("mirrored", controls.mirror.checked);
showCamera();
showCalibration(storedRest(), "");
setRunning(false);
view.scene.setFraming(controls.framing);
window.holotrackAvatar = view.testHook();

if (view.scene.failure) {
  showStatus($("avatar-file-status"), view.scene.failure, "error");
  $("avatar-file").disabled = true;
  document.body.dataset.avatarReady = "false";
} else {
  document.body.dataset.avatarReady = String(await picker.showFirst());
}
