// One run of a camera page (live, avatar, fitness): the camera and the live session fed from
// it start and end together. The session's end closes the camera, and a camera that cannot
// be had again stops the session, so neither outlives the other. The pages differ only in
// what they ask for in the hello and what they do with the answers.
//
// A phone propped up as the camera is left alone for an hour: the run keeps its screen on
// (wake.js), and what a phone does to a page it hides (the camera muted or taken, the page
// frozen) pauses the session rather than ending it. It goes on by itself when the page is
// shown again, with the same watch link, and the page says what happened.

import { cameraError, closeCamera, FrameEncoder, NO_PICTURE_MS, openCamera } from "./capture.js";
import { duration, showStatus } from "./format.js";
import { describeError, socketUrl } from "./protocol.js";
import { KeptLink } from "./kept_link.js";
import { keptToken, newLinkKey } from "./link_key.js";
import { pausable } from "./pausable.js";
import { endPausedSession, LiveSession } from "./session.js";
import { ScreenWake } from "./wake.js";

// A running session with no answer for this long says so: on a stalled network the page
// would otherwise go on saying "Tracking" over a frozen picture.
const STALL_MS = 5000;

// The status a session stopped by leaving the page leaves behind.
export const LEFT = "Stopped when you left this page. Press Start to go on.";
// Frame errors the page raises itself, before a frame leaves (protocol.js FRAME_ERRORS).
const PAGE_ERRORS = new Set(["too_big", "capture"]);

// Why a session waits, in words for the status; it goes on once no reason is left.
const PAUSED = {
  muted: "Paused: the camera gives no picture (the screen locked, or another app has the camera). Tracking goes on by itself when the picture is back.",
  frozen: "Paused: the browser suspended this page while it was hidden. Tracking goes on by itself when you come back to it.",
  camera: "Paused: the camera stopped (another app took it, or it was unplugged). It opens again by itself when you come back to this page.",
};
// What the pause was, once it is over.
const WAS = {
  muted: "the camera gave no picture",
  frozen: "the browser suspended the hidden page",
  camera: "the camera stopped and was opened again",
};

// Why a camera chosen while tracking was given up, in the notice that tracking goes on with
// the one before: a camera that gave no picture said "(no picture)", its error's own words.
const GONE_BACK_WHY = {
  NotReadableError: "another program is using it, or it failed",
  NoPictureError: `it gave no picture in ${NO_PICTURE_MS / 1000} s`,
};

export class CameraRun {
  // setRunning(bool): the page's buttons follow. cameraClosed(): the page's own teardown, after
  // the camera has closed. Session: LiveSession or a subclass of it. keepLink: the watch
  // link outlives a reload of the page and a session replaced (kept_link.js); `link` holds
  // it between sessions. stopKeepsLink: Stop pauses too, and Start goes on with the link.
  // camera: the page's CameraChoice (camera_choice.js), or null for the front camera; a
  // camera chosen while running replaces the one open, and the session goes on.
  constructor({ video, status, notice, setRunning, cameraClosed, Session = LiveSession, keepLink = false, stopKeepsLink = keepLink, camera = null }) {
    this.video = video;
    this.status = status;
    this.notice = notice;
    this.setRunning = setRunning;
    this.cameraClosed = cameraClosed;
    this.Session = pausable(Session);
    this.stream = null;
    this.session = null;
    this.encoder = null;
    this.lastAnswer = 0;
    this.lastStats = 0;
    this.served = false; // the running session has had a result
    this.stalled = false;
    // Why the page itself sent no frame (over the server's size, not captured), until one
    // goes: the stall's words must not blame the server, or a tracker still starting.
    this.unsent = null;
    // Each Start and each Stop is a new turn; a camera asked for in a turn that is over
    // (Stop pressed, or Start again, while the browser still asks for it) must not run.
    this.turn = 0;
    this.begun = null; // the turn whose Start has not asked for its camera yet
    this.link = keepLink ? new KeptLink() : null;
    this.makesKeys = false; // the running session's link key is one this run made
    this.stopKeepsLink = keepLink && stopKeepsLink;
    this.camera = camera;
    if (camera) camera.changed = () => this.replaceCamera();
    this.replacements = 0;
    this.replacing = Promise.resolve();
    this.opening = false; // a camera opens in place of another (replaceCamera)
    // The choice the open camera answers: the default, when the one chosen was not there.
    this.openFor = null;
    this.holds = new Set(); // the PAUSED reasons in force
    this.pausedAt = 0;
    this.was = new Set(); // every reason of the pause in force, for the words after it
    this.lostCamera = ""; // the name of the camera that last ended
    this.shownError = null; // { code, words, text } of the frame error the notice last showed
    const wakeNote = document.createElement("p");
    wakeNote.className = "status wake-note";
    wakeNote.setAttribute("role", "status");
    wakeNote.hidden = true;
    notice.after(wakeNote);
    this.wake = new ScreenWake(wakeNote);
    setInterval(() => this.checkStall(), 1000);
    document.addEventListener("visibilitychange", () => this.shown());
    // Page Lifecycle (Chromium): a hidden page may be frozen, its timers and socket with
    // it, and the server would time the session out. Paused first, the link waits instead.
    document.addEventListener("freeze", () => this.hold("frozen"));
    document.addEventListener("resume", () => this.shown());
    window.addEventListener("pagehide", () => {
      if (this.session && this.link) this.session.pauses = true;
      // Said for the page the browser keeps for Back (bfcache): shown again, it read
      // "Tracking" beside a closed camera and an enabled Start.
      this.session?.stop(LEFT, "info");
      this.link?.save();
    });
  }

  begin() {
    this.turn += 1;
    this.unsent = null;
    this.begun = this.turn;
    this.setRunning(true);
    showStatus(this.notice, "");
    showStatus(this.status, "Asking for the camera…", "busy");
  }

  // Before a session there is nothing to stop: the page just says why it cannot start.
  fail(text) {
    this.setRunning(false);
    showStatus(this.status, text, "error");
  }

  // false when the turn ended while the camera opened: it is closed again.
  async startCamera() {
    const turn = this.turn;
    // The choice may change while the browser opens the camera (its prompt still up).
    const choice = this.camera?.value ?? "user";
    const stream = await openCamera(this.video, choice, () => this.turn === turn);
    if (!stream) return false;
    this.stream = stream;
    const instead = this.camera?.opened(stream, choice);
    if (instead) showStatus(this.notice, instead, "info");
    this.openFor = instead ? this.camera.default : choice;
    for (const camera of this.stream.getVideoTracks()) {
      // A camera switched or closed by the page is stopped, which fires none of these.
      camera.addEventListener("ended", () => this.cameraEnded(stream));
      camera.addEventListener("mute", () => this.stream === stream && this.hold("muted"));
      camera.addEventListener("unmute", () => this.stream === stream && this.letGo("muted"));
    }
    // Which camera is open and watched, for the tests to wait on.
    this.video.dataset.opened = stream.getVideoTracks()[0]?.label ?? "";
    this.wake.hold();
    // Another camera chosen while this one opened: it takes this one's place now.
    if (this.camera && this.camera.value !== this.openFor) this.replaceCamera();
    return true;
  }

  // The newest picture, or null. A track stopped by a script (the devtools console, an
  // extension) ends without its "ended" event: the video kept its last picture, which went
  // to the server as new, under "Tracking", for as long as the page stayed open.
  grab() {
    const stream = this.stream;
    // One the page closed itself (another camera opening in its place) is off the video.
    const shown = stream && this.video.srcObject === stream;
    if (shown && !stream.getVideoTracks().some((track) => track.readyState === "live")) {
      this.cameraEnded(stream);
      return Promise.resolve(null);
    }
    return this.encoder.grab(this.video);
  }

  // The OS took the camera, or it was unplugged: the session waits while the camera is
  // opened again, now if the page is shown, else when it is.
  cameraEnded(stream) {
    if (this.stream !== stream) return;
    this.lostCamera = stream.getVideoTracks()[0]?.label ?? "";
    for (const track of stream.getTracks()) track.stop(); // nothing of it may hold the camera
    this.holds.delete("muted"); // an ended track is never unmuted
    this.hold("camera");
    if (document.visibilityState === "visible") this.reopenCamera();
  }

  reopenCamera() {
    if (!this.holds.has("camera")) return;
    showStatus(this.status, "The camera stopped: opening it again…", "busy");
    this.replaceCamera();
  }

  // Another camera chosen while running (or the chosen one unplugged, or plugged back in)
  // or the camera ended: the chosen one opens in place of the one there; the session goes
  // on. One at a time, and only the last asked for: closing the camera while another still
  // opens would leave none (an unplugged camera ends as the browser's list changes).
  replaceCamera() {
    const asked = ++this.replacements;
    this.replacing = this.replacing.then(async () => {
      if (asked !== this.replacements || !this.stream) return;
      // Already open (the camera that ended was opened again in place of one now gone,
      // or a reopening asked for twice): nothing to replace.
      const live = this.stream.getVideoTracks().some((track) => track.readyState === "live");
      if (live && this.openFor === this.camera?.value) return;
      const turn = this.turn;
      // The camera that works, to go back to should the one chosen not open.
      const before = live && this.camera ? { choice: this.openFor, label: this.stream.getVideoTracks()[0]?.label } : null;
      closeCamera(this.video, this.stream);
      this.opening = true;
      try {
        if (await this.startCamera()) this.letGo("camera");
      } catch (error) {
        if (this.turn !== turn) return;
        if (before && (await this.goBack(before, error, turn))) return;
        // Asking again and again would not help (no camera, permission withdrawn).
        if (this.session) this.session.stop(cameraError(error), "error");
        else this.closeCamera();
      } finally {
        this.opening = false;
        // The frames stopped for the camera, not for the server: its silence starts now.
        this.lastAnswer = performance.now();
      }
    });
  }

  // A camera chosen while tracking that will not open (another program holds it): the one
  // before opens again, and the page says why. The session ended, and both cameras were
  // closed, over a choice the person can take back. false: that one will not open either.
  async goBack(before, error, turn) {
    const chosen = this.camera.selectedName();
    this.camera.restore(before.choice);
    try {
      if (!(await this.startCamera())) return true;
    } catch {
      return this.turn !== turn;
    }
    const why = GONE_BACK_WHY[error.name] ?? (error.message || error.name);
    showStatus(this.notice, `The camera “${chosen}” could not be opened (${why}): tracking goes on with ${before.label || "the camera before"}.`, "error");
    return true;
  }

  // A reason for the session to wait: it pauses (close 4002) until none is left.
  hold(reason) {
    if (!this.stream) return;
    if (this.holds.size === 0) {
      this.pausedAt = performance.now();
      this.was.clear();
    }
    this.holds.add(reason);
    this.was.add(reason);
    this.session?.pause();
    showStatus(this.status, PAUSED[reason], "info");
    document.body.dataset.paused = [...this.holds].join(" ");
  }

  letGo(reason) {
    if (!this.holds.delete(reason)) return;
    document.body.dataset.paused = [...this.holds].join(" ");
    if (this.holds.size > 0) {
      showStatus(this.status, PAUSED[[...this.holds].at(-1)], "info");
      return;
    }
    delete document.body.dataset.paused;
    const elapsed = (performance.now() - this.pausedAt) / 1000;
    const seconds = Math.max(1, Math.round(elapsed));
    const what = [...this.was].map((r) => (r === "camera" ? this.reopenedWords() : WAS[r])).join("; ");
    // Past the grace the server has let go of the session: a workout starts again at 0,
    // which the words must not leave to be found out.
    const grace = this.session?.watchGrace ?? 0;
    const lost = grace > 0 && elapsed > grace ? ` That is longer than the ${duration(Math.round(grace))} the server keeps a paused session: this is a new one.` : "";
    showStatus(this.notice, `Tracking went on by itself after a pause of ${duration(seconds)}: ${what}.${lost}`, "info");
    // The server let go of the link: a key made for it would open the same link again.
    this.session?.carryOn(lost && this.makesKeys ? newLinkKey() : null, Boolean(lost));
  }

  // A camera unplugged gives way to another (the default, or one plugged in meanwhile):
  // the words name both, as the chooser alone would leave it to be noticed.
  reopenedWords() {
    const now = this.stream?.getVideoTracks()[0]?.label;
    if (!now || !this.lostCamera || now === this.lostCamera) return WAS.camera;
    return `the camera “${this.lostCamera}” stopped, and ${now} was opened in its place`;
  }

  // The page is seen again, or unfrozen: whatever waited for that goes on.
  shown() {
    if (document.visibilityState !== "visible") return;
    this.letGo("frozen");
    if (this.holds.has("camera")) this.reopenCamera();
    this.session?.hurry();
  }

  // false, said in words, when the camera cannot be had; false, unsaid, when the Start that
  // wants it was stopped or started again before, or while, the camera opened.
  async openCamera(width) {
    if (this.begun !== this.turn) return false;
    this.begun = null;
    const turn = this.turn;
    try {
      if (!(await this.startCamera())) return false;
    } catch (error) {
      if (this.turn === turn) this.fail(cameraError(error));
      // One allowed and failed (no picture, in use): the others' names, to choose another.
      this.camera?.list();
      return false;
    }
    this.encoder = new FrameEncoder(width);
    return true;
  }

  // A new session replaces the running one, whose end must not close the camera.
  // handlers: the Session's, but for status, error and ended, which this run handles.
  // endLink: the running one ends for good (1000), its watchers with it, not paused.
  // link: the watch token (or a promise of it) of a kept link, known before connecting.
  open({ track, fps, options = {}, handlers, endLink = false, link = null }) {
    const previous = this.session;
    this.session = null;
    if (previous && this.link) previous.pauses = !endLink;
    previous?.stop("");
    this.link?.keep(previous);
    // A page that keeps its link but has no key of its own gets one per link (kept_link.js).
    // (The live page makes none: nobody watches it, and a balancer's least_conn spreads its
    // sessions better than a hash of their links would.)
    this.makesKeys = Boolean(this.link && !options.link_key);
    if (this.makesKeys) {
      const key = this.link.nextKey();
      options = { ...options, link_key: key };
      link = keptToken(key).catch(() => null);
    }
    const own = new this.Session({
      url: socketUrl(),
      track,
      fps,
      options,
      link,
      resume: this.link?.take() ?? null,
      pauses: this.stopKeepsLink,
      grab: () => this.grab(),
      handlers: {
        ...handlers,
        ready: (message) => {
          this.served = false;
          this.answered();
          handlers.ready?.(message);
        },
        result: (message, latencyMs) => {
          this.served = true;
          this.answered();
          handlers.result?.(message, latencyMs);
        },
        stats: (message) => {
          this.lastStats = performance.now();
          handlers.stats?.(message);
        },
        status: (text, kind, options) => showStatus(this.status, text, kind, options),
        sent: (...args) => {
          this.unsent = null;
          handlers.sent?.(...args);
        },
        error: (message) => {
          if (PAGE_ERRORS.has(message.code)) this.unsent = message;
          // The notice is an alert, spoken at once: rewritten for each frame that fails the
          // same way (its number changed), a screen reader said it fifteen times a second.
          // The readout counts the errors; the words change when the error does, its
          // server's words too (a smaller width still over the pixel limit kept the first
          // size and the size to scale to). Not the page's own: a too_big names each frame's
          // byte count, new words for every frame, and was rewritten fifteen times a second.
          const shown = this.shownError;
          const sameWords = PAGE_ERRORS.has(message.code) || shown?.words === message.message;
          if (shown?.code === message.code && sameWords && !this.notice.hidden && this.notice.textContent === shown.text) return;
          const text = describeError(message);
          this.shownError = { code: message.code, words: message.message, text };
          showStatus(this.notice, text, "error");
        },
        // Why, as far as the page can tell: away longer than the grace, the grace ran out;
        // back within it, the server restarted (or, the live page behind a balancer,
        // another replica answered). Said "16 s ... it keeps one 1 min", it read as a fault.
        forgotten: (lostMs) => {
          const seconds = Math.max(1, Math.round(lostMs / 1000));
          const grace = Math.round(own.watchGrace);
          // Unrounded: back 60.4 s later, a 60 s grace is the reason, not a restart.
          const why = lostMs / 1000 > own.watchGrace
            ? `it keeps a lost one ${duration(grace)}`
            : "it was restarted, or another of its servers answered";
          showStatus(this.notice, `The connection was back after ${duration(seconds)}, but the server no longer had the session (${why}): this is a new one.`, "info");
          handlers.forgotten?.(lostMs);
        },
        ended: (text, kind) => {
          if (this.session !== own) return; // replaced by a restart
          this.session = null;
          if (own.pauses) this.link?.keep(own);
          this.closeCamera();
          if (text) showStatus(this.status, text, kind);
        },
      },
    });
    this.session = own;
    own.start();
    // Begun while paused (its track or rate changed meanwhile): it waits too, saying why.
    if (this.holds.size > 0) {
      own.pause();
      showStatus(this.status, PAUSED[[...this.holds].at(-1)], "info");
    }
    return own;
  }

  answered() {
    this.lastAnswer = performance.now();
    if (this.stalled) {
      this.stalled = false;
      showStatus(this.notice, "");
    }
  }

  checkStall() {
    const now = performance.now();
    const silent = now - this.lastAnswer;
    // A camera opening in place of another sends nothing, for up to NO_PICTURE_MS: "No
    // answer from the server" then blamed the network for the camera's seconds.
    if (!this.session?.ready || silent < STALL_MS || this.opening) return;
    this.stalled = true;
    const seconds = Math.round(silent / 1000);
    if (this.unsent) {
      showStatus(this.notice, `No frame has gone to the server for ${seconds} s. ${describeError(this.unsent)}.`, "error", { ticking: true });
      return;
    }
    // Its stats still come, so the network is fine: before the first result, the server is
    // building this session's tracker, one at a time per worker when many start together.
    if (!this.served && now - this.lastStats < STALL_MS) {
      showStatus(this.notice, `The server is still starting your tracker (${seconds} s): many sessions started at once, and it builds them one at a time. Your frames wait for it.`, "busy", { ticking: true });
      return;
    }
    showStatus(this.notice, `No answer from the server for ${seconds} s: the network or the server is slow. Still trying…`, "error", { ticking: true });
  }

  closeCamera() {
    this.turn += 1; // a camera still opening (a switch to the back one) must not outlive it
    if (this.stalled) this.answered();
    closeCamera(this.video, this.stream);
    this.stream = null;
    this.holds.clear();
    delete document.body.dataset.paused;
    this.wake.release();
    this.cameraClosed();
  }

  // New link pressed while stopped: the session Stop left resting on the old link (its
  // watch token `link`) ends now. Left to the server's grace, the page said the old link
  // no longer worked while it went on showing the avatar, and serving its .vrm, to
  // whoever had it.
  endResting(link = null) {
    const resume = this.link?.take();
    if (resume) endPausedSession(resume, link);
  }

  stop() {
    this.turn += 1;
    if (this.session) {
      this.session.stop("Stopped.");
    } else {
      this.closeCamera();
      showStatus(this.status, "Stopped.", "info");
    }
  }
}

