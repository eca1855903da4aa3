// A live session that can wait without ending: while the page cannot send pictures (the
// camera muted or gone, the page frozen by the browser) it closes its connection as a pause
// (4002), so the server keeps its watch link and workout for the watch grace instead of
// timing it out, and goes on later with the same resume string: no new Start, no new link.
// A mixin, because each page has its own LiveSession subclass (avatar, fitness).

import { CLOSE } from "./protocol.js";

export function pausable(Session) {
  return class PausableSession extends Session {
    constructor(options) {
      super(options);
      this.paused = false;
    }

    pause() {
      if (this.stopped || this.paused) return;
      this.paused = true;
      this.lostAt ??= performance.now();
      this.clearTimers(); // a reconnection waiting in its backoff must not open meanwhile
      const socket = this.socket;
      this.socket = null;
      if (socket) {
        socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
        if (socket.readyState <= WebSocket.OPEN) socket.close(CLOSE.PAUSED, "paused");
      }
      this.resetConnectionState();
    }

    // The backoff starts afresh: the pause was no failure of the server's. key: a new link
    // key, when the link this session had is gone. said: the page has said that the
    // session is gone (a pause longer than the grace), so the ready need not.
    carryOn(key = null, said = false) {
      if (this.stopped || !this.paused) return;
      this.paused = false;
      if (said) this.lostAt = null;
      this.attempt = 0;
      if (key) {
        this.relink(key);
      } else {
        this.connect();
      }
    }

    // A reconnection waiting out its backoff goes now: a page shown again after minutes in
    // a pocket should not wait up to 15 s more, and a backoff that ran while the page was
    // frozen says nothing about the server.
    hurry() {
      // A connection waiting for its link's token goes as soon as it has it: a second one
      // now would open the link twice.
      if (this.stopped || this.paused || this.socket || this.routing) return;
      this.clearTimers();
      this.attempt = 0;
      this.connect();
    }
  };
}
