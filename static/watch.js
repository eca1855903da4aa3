// One watcher connection (docs/protocol.md, protocol issue 12): GET /ws, first message
// {"type": "watch", "version": 1, "token": ...}; the server answers "watching", then relays
// the watched session's results, its workout whenever that moves on (a rep, a set), and
// the avatar its camera gives the link (for the OBS view). It never sends frames. What a
// close means, and whether to try the same token again, is the page's to say: an OBS view
// waits for hours, a coach's card gives up.

import { readMessage, VERSION } from "./protocol.js";

const noop = () => {};
// The server's heartbeat counts from the last message it heard: a watcher that sends
// nothing was cut by a network drop of 7.5 s or more, where its camera, sending frames,
// rode out 22. Any text will do; the server reads it and drops it.
const KEEPALIVE = JSON.stringify({ type: "keepalive" });
const KEEPALIVE_MS = 2000;

export class WatchSocket {
  // handlers: watching(msg), result(msg), workout(msg), avatar(msg), emotion(msg), unopened(text), closed(close) -> the
  // delay in ms before the next try, or null for none; close: {code, reason, wasWatching,
  // attempt}, where attempt counts the tries since the last "watching".
  // bye: the close reason the server is given when the page stops watching.
  constructor({ url, token, bye, handlers }) {
    this.url = url;
    this.token = token;
    this.bye = bye;
    this.on = { watching: noop, result: noop, workout: noop, avatar: noop, emotion: noop, unopened: noop, closed: () => null, ...handlers };
    this.socket = null;
    this.timer = null;
    this.keepalive = null;
    this.attempt = 0;
    this.stopped = false;
  }

  start() {
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.keepalive);
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = null;
      if (socket.readyState <= WebSocket.OPEN) socket.close(1000, this.bye);
    }
  }

  connect() {
    let watching = false;
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch (error) {
      this.on.unopened(`Cannot open the connection: ${error.message}.`);
      return;
    }
    this.socket = socket;
    socket.onopen = () => socket.send(JSON.stringify({ type: "watch", version: VERSION, token: this.token }));
    socket.onmessage = (event) => {
      const message = readMessage(event.data);
      if (!message) return;
      if (message.type === "watching") {
        watching = true;
        this.attempt = 0;
        clearInterval(this.keepalive);
        // The server's close can land between two ticks, before onclose clears this: a send
        // then was a console error ("already in CLOSING or CLOSED state") in the OBS view.
        this.keepalive = setInterval(() => {
          if (socket.readyState === WebSocket.OPEN) socket.send(KEEPALIVE);
        }, KEEPALIVE_MS);
        this.on.watching(message);
      } else if (message.type === "result") {
        this.on.result(message);
      } else if (message.type === "workout") {
        this.on.workout(message);
      } else if (message.type === "avatar") {
        this.on.avatar(message);
      } else if (message.type === "emotion") {
        this.on.emotion(message);
      }
      // Anything else (stats, later types) is not for a watcher.
    };
    socket.onclose = (event) => {
      this.socket = null;
      clearInterval(this.keepalive);
      if (this.stopped) return;
      const delay = this.on.closed({ code: event.code, reason: event.reason, wasWatching: watching, attempt: this.attempt });
      if (delay === null) {
        this.stopped = true;
        return;
      }
      this.attempt += 1;
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }
}
