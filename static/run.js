// One run of a camera page (live, avatar, fitness): the camera and the live session fed from
// it start and end together. The session's end closes the camera, and the camera's end stops
// the session, so neither outlives the other. The pages differ only in what they ask for in
// the hello and what they do with the answers.

import { cameraError, closeCamera, FrameEncoder, openCamera } from "./capture.js";
import { showStatus } from "./format.js";
import { describeError, socketUrl } from "./protocol.js";
import { KeptLink } from "./kept_link.js";
import { LiveSession } from "./session.js";

// A running session with no answer for this long says so: on a stalled network the page
// would otherwise go on saying "Tracking" over a frozen picture.
export const STALL_MS = 5000;

export class CameraRun {
  // setRunning(bool): the page's buttons follow. cameraClosed(): the page's own teardown, after
  // the camera has closed. Session: LiveSession or a subclass of it. keepLink: the watch
  // link outlives a reload of the page and a session replaced (kept_link.js); `link` holds
  // it between sessions. stopKeepsLink: Stop pauses too, and Start goes on with the link.
  constructor({ video, status, notice, setRunning, cameraClosed, Session = LiveSession, keepLink = false, stopKeepsLink = keepLink }) {
    this.video = video;
    this.status = status;
    this.notice = notice;
    this.setRunning = setRunning;
    this.cameraClosed = cameraClosed;
    this.Session = Session;
    this.stream = null;
    this.session = null;
    this.encoder = null;
    this.lastAnswer = 0;
    this.lastStats = 0;
    this.served = false; // the running session has had a result
    this.stalled = false;
    // Each Start and each Stop is a new turn; a camera asked for in a turn that is over
    // (Stop pressed, or Start again, while the browser still asks for it) must not run.
    this.turn = 0;
    this.begun = null; // the turn whose Start has not asked for its camera yet
    this.link = keepLink ? new KeptLink() : null;
    this.stopKeepsLink = keepLink && stopKeepsLink;
    setInterval(() => this.checkStall(), 1000);
    window.addEventListener("pagehide", () => {
      if (this.session && this.link) this.session.pauses = true;
      this.session?.stop("");
      this.link?.save();
    });
  }

  begin() {
    this.turn += 1;
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
  async startCamera(facingMode) {
    const turn = this.turn;
    const stream = await openCamera(this.video, facingMode, () => this.turn === turn);
    if (!stream) return false;
    this.stream = stream;
    for (const camera of this.stream.getVideoTracks()) {
      camera.addEventListener("ended", () => this.session?.stop("The camera stopped (unplugged, or taken by another program): press Start to go on."));
    }
    return true;
  }

  // false, said in words, when the camera cannot be had; false, unsaid, when the Start that
  // wants it was stopped or started again before, or while, the camera opened.
  async openCamera(facingMode, width) {
    if (this.begun !== this.turn) return false;
    this.begun = null;
    const turn = this.turn;
    try {
      if (!(await this.startCamera(facingMode))) return false;
    } catch (error) {
      if (this.turn === turn) this.fail(cameraError(error));
      return false;
    }
    this.encoder = new FrameEncoder(width);
    return true;
  }

  // A new session replaces the running one, whose end must not close the camera.
  // handlers: the Session's, but for status, error and ended, which this run handles.
  // endLink: the running one ends for good (1000), its watchers with it, not paused.
  open({ track, fps, options, handlers, endLink = false }) {
    const previous = this.session;
    this.session = null;
    if (previous && this.link) previous.pauses = !endLink;
    previous?.stop("");
    this.link?.keep(previous);
    const own = new this.Session({
      url: socketUrl(),
      track,
      fps,
      options,
      resume: this.link?.take() ?? null,
      pauses: this.stopKeepsLink,
      grab: () => this.encoder.grab(this.video),
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
        status: (text, kind) => showStatus(this.status, text, kind),
        error: (message) => showStatus(this.notice, describeError(message), "error"),
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
    if (!this.session?.ready || silent < STALL_MS) return;
    this.stalled = true;
    const seconds = Math.round(silent / 1000);
    // Its stats still come, so the network is fine: before the first result, the server is
    // building this session's tracker, one at a time per worker when many start together.
    if (!this.served && now - this.lastStats < STALL_MS) {
      showStatus(this.notice, `The server is still starting your tracker (${seconds} s): many sessions started at once, and it builds them one at a time. Your frames wait for it.`, "busy");
      return;
    }
    showStatus(this.notice, `No answer from the server for ${seconds} s: the network or the server is slow. Still trying…`, "error");
  }

  closeCamera() {
    this.turn += 1; // a camera still opening (a switch to the back one) must not outlive it
    if (this.stalled) this.answered();
    closeCamera(this.video, this.stream);
    this.stream = null;
    this.cameraClosed();
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
