// A watcher connection (protocol issue 12): the same GET /ws, first message
// {"type": "watch", "version": 1, "token": ...}; the server answers "watching", then relays
// the watched session's results. It never sends frames.

import { describeClose, VERSION } from "../protocol.js";

// An unknown or expired token.
export const CLOSE_UNKNOWN_TOKEN = 4003;
// An OBS browser source may wait for hours: retry the same token, gently.
const RETRY_MIN_MS = 3000;
const RETRY_MAX_MS = 30000;

const noop = () => {};

export function describeWatchClose(code, reason, wasWatching) {
  const why = reason ? `: ${reason}` : "";
  if (wasWatching) return `The session this view watches has ended${why} (close ${code}).`;
  if (code === CLOSE_UNKNOWN_TOKEN) return `This watch link is not (or no longer) valid${why} (close ${code}).`;
  return describeClose(code, reason).text;
}

export class WatchConnection {
  // handlers: status(text, kind), watching(msg), result(msg).
  constructor({ url, token, handlers }) {
    this.url = url;
    this.token = token;
    this.on = { status: noop, watching: noop, result: noop, ...handlers };
    this.socket = null;
    this.timer = null;
    this.attempt = 0;
    this.stopped = false;
  }

  start() {
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.close(1000, "the view closed");
      this.socket = null;
    }
  }

  connect() {
    let watching = false;
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch (error) {
      this.on.status(`Cannot open the connection: ${error.message}.`, "error");
      return;
    }
    this.socket = socket;
    socket.onopen = () => socket.send(JSON.stringify({ type: "watch", version: VERSION, token: this.token }));
    socket.onmessage = (event) => {
      if (typeof event.data !== "string") return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === "watching") {
        watching = true;
        this.attempt = 0;
        this.on.watching(message);
      } else if (message.type === "result") {
        this.on.result(message);
      }
      // Anything else (stats, later types) is not for a view.
    };
    socket.onclose = (event) => {
      this.socket = null;
      if (this.stopped) return;
      const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** this.attempt);
      this.attempt += 1;
      const text = describeWatchClose(event.code, event.reason, watching);
      this.on.status(
        `${text} Waiting for this link to come back (next try in ${Math.round(delay / 1000)} s); ` +
          "for a new session, open its new link from the avatar page.",
        "error",
      );
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }
}
