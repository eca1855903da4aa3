// The avatar page's live session: the live page's, plus the head's calibration
// (docs/protocol.md, "Calibrating the head"). The rest the server answers with is kept in
// this browser and sent again on every new connection (a reconnect, Start, a reload), so
// the avatar does not look aside again each time.

import { LiveSession } from "../session.js";

const STORAGE = "holotrack.avatar.head";
// The server's refusals of a calibrate; the session goes on.
const NOT_CALIBRATED = new Set(["no_pose", "no_rig"]);

function isHead(value) {
  return Array.isArray(value) && value.length === 4 && value.every(Number.isFinite);
}

export function storedHead() {
  try {
    const head = JSON.parse(localStorage.getItem(STORAGE));
    return isHead(head) ? head : null;
  } catch {
    return null;
  }
}

export function forgetHead() {
  keepHead(null);
}

function keepHead(head) {
  try {
    if (isHead(head)) localStorage.setItem(STORAGE, JSON.stringify(head));
    else localStorage.removeItem(STORAGE);
  } catch {
    // storage refused: the calibration lasts as long as the connection
  }
}

export class AvatarSession extends LiveSession {
  // handlers: LiveSession's, plus calibrated(head or null) and notCalibrated(text).
  constructor({ handlers, ...rest }) {
    super({ handlers, ...rest });
    this.on.calibrated = handlers.calibrated ?? (() => {});
    this.on.notCalibrated = handlers.notCalibrated ?? (() => {});
  }

  receive(data) {
    let message = null;
    if (typeof data === "string") {
      try {
        message = JSON.parse(data);
      } catch {
        // LiveSession ignores it too
      }
    }
    if (message?.type === "calibrated") {
      keepHead(message.head);
      this.on.calibrated(isHead(message.head) ? message.head : null);
      return;
    }
    if (message?.type === "error" && NOT_CALIBRATED.has(message.code)) {
      this.on.notCalibrated(message.message);
      return;
    }
    super.receive(data);
    // Each connection starts with no rest: the kept one goes first, before any result.
    const head = message?.type === "ready" ? storedHead() : null;
    if (head) this.control({ type: "calibrate", head });
  }

  // The head of the last result becomes straight ahead; false when not connected.
  calibrate() {
    return this.control({ type: "calibrate" });
  }

  uncalibrate() {
    forgetHead();
    return this.control({ type: "calibrate", head: null });
  }
}
