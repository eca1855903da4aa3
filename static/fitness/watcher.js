// One watcher connection (docs/protocol.md): GET /ws, first message {"type": "watch",
// "version": 1, "token": ...}; the server answers "watching", then relays the watched
// session's results until it ends. It never sends frames.

import { backoffMs, CLOSE, describeClose, VERSION } from "../protocol.js";

export const CLOSE_UNKNOWN_TOKEN = 4003;
const MAX_ATTEMPTS = 5;

const noop = () => {};

// What a close means for a watcher: {state, text, retry}. state: "ended" (the session is
// over), "invalid" (no such session), "lost" (trying again may help) or "refused".
export function watchClose(code, reason, wasWatching) {
  const why = reason ? `: ${reason}` : "";
  if (code === CLOSE_UNKNOWN_TOKEN) {
    return { state: "invalid", text: `This link is not valid, or its session had already ended${why}.`, retry: false };
  }
  if (wasWatching && (code === CLOSE.NORMAL || code === CLOSE.GOING_AWAY)) {
    return { state: "ended", text: `This session has ended${why}.`, retry: false };
  }
  const close = describeClose(code, reason);
  return { state: close.retry ? "lost" : "refused", text: close.text, retry: close.retry };
}

export class Watcher {
  // handlers: watching(msg), result(msg), status(state, text).
  constructor({ url, token, handlers }) {
    this.url = url;
    this.token = token;
    this.on = { watching: noop, result: noop, status: noop, ...handlers };
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
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = null;
      if (socket.readyState <= WebSocket.OPEN) socket.close(1000, "the coach closed the card");
    }
  }

  connect() {
    let watching = false;
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch (error) {
      this.on.status("refused", `Cannot open the connection: ${error.message}.`);
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
    };
    socket.onclose = (event) => {
      this.socket = null;
      if (this.stopped) return;
      const close = watchClose(event.code, event.reason, watching);
      if (!close.retry || this.attempt >= MAX_ATTEMPTS) {
        this.stopped = true;
        this.on.status(close.state, close.retry ? `${close.text} Gave up after ${MAX_ATTEMPTS} attempts.` : close.text);
        return;
      }
      const delay = backoffMs(this.attempt, event.code === CLOSE.TRY_AGAIN_LATER ? 3000 : 0);
      this.attempt += 1;
      this.on.status("lost", `${close.text} Trying again in ${(delay / 1000).toFixed(1)} s…`);
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }
}

// A pasted watch link (…/coach?watch=T or …/avatar?watch=T) or a bare token -> the token.
export function tokenOf(text) {
  const piece = text.trim();
  if (!piece) return null;
  if (piece.includes("watch=")) {
    try {
      return new URL(piece, window.location.href).searchParams.get("watch") || null;
    } catch {
      return new URLSearchParams(piece.slice(piece.indexOf("watch="))).get("watch") || null;
    }
  }
  if (/^[a-z]+:\/\//i.test(piece)) return null; // a link without a token
  return piece;
}
