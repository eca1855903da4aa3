// The avatar page's live session: the live page's, plus calibrating straight ahead for the
// head and the eyes (docs/protocol.md, "Calibrating straight ahead"), and held emotions.
// The rest the server answers with is kept in this browser and sent again on every new
// connection (a reconnect, Start, a reload), so the avatar does not look aside again each
// time.

import { LiveSession } from "../session.js";

const STORAGE = "holotrack.avatar.rest";
// The server's refusals of a calibrate; the session goes on.
const NOT_CALIBRATED = new Set(["no_pose", "no_rig"]);

function numbers(value, count) {
  return Array.isArray(value) && value.length === count && value.every(Number.isFinite);
}

// {head: [x, y, z, w], gaze: [left, up] or null}, as a calibrated message gives them.
function isRest(value) {
  return numbers(value?.head, 4) && (value.gaze === null || numbers(value.gaze, 2));
}

export function storedRest() {
  try {
    const rest = JSON.parse(localStorage.getItem(STORAGE));
    return isRest(rest) ? rest : null;
  } catch {
    return null;
  }
}

export function forgetRest() {
  keepRest(null);
}

function keepRest(rest) {
  try {
    if (rest) localStorage.setItem(STORAGE, JSON.stringify(rest));
    else localStorage.removeItem(STORAGE);
  } catch {
    // storage refused: the calibration lasts as long as the connection
  }
}

export class AvatarSession extends LiveSession {
  // handlers: LiveSession's, plus calibrated(rest or null), notCalibrated(text),
  // emotion(message), the emotion the avatar now holds, and connected(send, resumed), with
  // what sends a control on this connection, at each ready before any frame, and whether
  // the session took its link over with what the link holds.
  constructor({ handlers, ...rest }) {
    super({ handlers, ...rest });
    this.on.calibrated = handlers.calibrated ?? (() => {});
    this.on.notCalibrated = handlers.notCalibrated ?? (() => {});
    this.on.emotion = handlers.emotion ?? (() => {});
    this.on.connected = handlers.connected ?? (() => {});
  }

  handle(message) {
    if (message?.type === "calibrated") {
      const rest = isRest(message) ? { head: message.head, gaze: message.gaze } : null;
      keepRest(rest);
      this.on.calibrated(rest);
      return true;
    }
    if (message?.type === "error" && NOT_CALIBRATED.has(message.code)) {
      this.on.notCalibrated(message.message);
      return true;
    }
    if (message?.type === "emotion") {
      this.on.emotion(message);
      return true;
    }
    return false;
  }

  // Each connection starts with no rest: the kept one goes first, before any frame.
  accepted() {
    const rest = storedRest();
    if (rest) this.control({ type: "calibrate", ...rest });
    this.on.connected((message) => this.control(message), this.resumed);
  }

  // The head and gaze of the last result become straight ahead; false when not connected.
  calibrate() {
    return this.control({ type: "calibrate" });
  }

  // The answer forgets the kept rest; false when not connected.
  uncalibrate() {
    return this.control({ type: "calibrate", head: null });
  }
}
