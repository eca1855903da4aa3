// One live session over GET /ws: hello, then a fresh frame on each `turn` the server sends
// (paced at the granted rate before the first turn), at most MAX_IN_FLIGHT awaiting a
// result, and reconnection with backoff when the close says trying again can help.

import { helloKey, keyAtLimit, keyRefused } from "./access.js";
import { keptToken } from "./link_key.js";
import { backoffMs, CLOSE, describeClose, encodeFrame, END_PATH, hello, quotaOf, readMessage, routed } from "./protocol.js";

const MAX_IN_FLIGHT = 2;
// A frame with no answer after this long is forgotten (the server drops stale frames).
const STALE_MS = 4000;
const MAX_ATTEMPTS = 8;
// After the first turn, a frame goes without one only when none has come for
// max(FALLBACK_MIN_MS, FALLBACK_PERIODS / fps).
const FALLBACK_MIN_MS = 1000;
const FALLBACK_PERIODS = 2;

const noop = () => {};

// POST /api/end for the paused session `resume` names, routed by its link's watch token
// (null: none known); the server's answer, or null when it refused or could not be reached.
export function endPausedSession(resume, link = null) {
  return fetch(routed(END_PATH, link), { method: "POST", body: JSON.stringify({ resume }), keepalive: true })
    .then((response) => (response.ok ? response.json() : null))
    .catch(() => null);
}

export class LiveSession {
  // grab(): Promise<{blob, captureMs} | null>, the newest camera frame, encoded.
  // handlers: status(text, kind), ready(msg), turn(), sent(seq, bytes, onTurn),
  //           result(msg, latencyMs), stats(msg), error(msg), ended(text, kind),
  //           forgotten(lostMs): back after a loss or a pause, in a session that carries
  //           nothing over; refused(code, reason): the server ended it for good, just
  //           before ended (a page may open another session in its place).
  // options: extra hello fields (protocol.js hello()).
  // resume: the resume string of an earlier session whose watch link this one takes over.
  // pauses: this session's stop pauses (close 4002), so its watch link waits for the next
  // session, which passes `resume` on; otherwise a stop ends the link with the session.
  // link: the watch token its link will have, when known before connecting (a kept link),
  // or a promise of it; it routes every connection (protocol.js routed()).
  constructor({ url, track, fps, grab, handlers, options = {}, resume = null, pauses = false, link = null }) {
    this.url = url;
    this.link = link;
    this.track = track;
    this.options = options;
    this.wantedFps = fps;
    this.grab = grab;
    this.on = { status: noop, ready: noop, turn: noop, sent: noop, result: noop, stats: noop, error: noop, ended: noop, forgotten: noop, refused: noop, ...handlers };
    this.socket = null;
    this.seq = 0;
    this.inFlight = new Map(); // seq -> performance.now() when sent
    this.attempt = 0;
    this.stopped = false;
    this.timer = null;
    this.countdown = null;
    this.housekeeping = null;
    // The last ready's resume string: our own reconnects send it, so the session's watch
    // link (an OBS view, a coach, the VMC relay) carries on.
    this.resume = resume;
    this.id = undefined; // the session's id, once a ready came
    this.pauses = pauses;
    // How long the server keeps a paused or lost session's link (ready's watch_grace).
    this.watchGrace = 0;
    this.routing = null; // the connection that waits for the link's token (connectRouted)
    // When the session's connection was lost or paused, until a ready answers a new one.
    this.lostAt = null;
    this.resetConnectionState();
  }

  resetConnectionState() {
    this.ready = false;
    this.fps = this.wantedFps;
    this.maxFrameBytes = Infinity;
    this.nextDue = 0;
    this.sending = false;
    // Turns: when the last one came (null before the first), whether one awaits its frame,
    // and when the last frame was sent, for the fallback.
    this.lastTurn = null;
    this.turnOwed = false;
    this.lastSent = 0;
    this.inFlight.clear();
    this.gotResult = false;
  }

  start() {
    this.housekeeping = setInterval(() => this.pump(), 500);
    if (this.link === null) {
      this.connect();
    } else {
      this.connectRouted();
    }
  }

  // Connects once the link's token is known (it may still be a promise).
  connectRouted() {
    const routing = Promise.resolve(this.link).then((link) => {
      if (this.routing !== routing) return;
      this.routing = null;
      this.link = link ?? null;
      if (!this.stopped && !this.paused) this.connect();
    });
    this.routing = routing;
  }

  // The next connection opens another link, with `key` (the old one is gone).
  relink(key) {
    this.options = { ...this.options, link_key: key };
    this.resume = null;
    this.link = keptToken(key).catch(() => null);
    this.connectRouted();
  }

  // The user's stop, or the page's when it cannot go on (kind "error": the camera cannot be
  // had again): no reconnection, and no close event reported afterwards.
  stop(text = "Stopped.", kind = "info") {
    if (this.stopped) return;
    this.stopped = true;
    this.clearTimers();
    clearInterval(this.housekeeping);
    const socket = this.socket;
    this.socket = null;
    // Its hello went out: the server reads this close after it, whatever the hello resumed.
    const said = socket?.readyState === WebSocket.OPEN;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
      if (socket.readyState <= WebSocket.OPEN) {
        if (this.pauses) socket.close(CLOSE.PAUSED, "paused");
        else socket.close(CLOSE.NORMAL, "stopped by the user");
      }
    }
    // Paused, or between two connections: the server keeps the last session's link for its
    // grace, so ending it for good takes a connection of its own.
    if (!said && !this.pauses && this.resume) this.endPaused(this.resume);
    this.on.ended(text, kind);
  }

  // Ends for good the session `resume` names, as a close 1000 would: its watchers now, not
  // when the server's grace runs out. Its last workout comes back to handle(), for the log;
  // should the request fail, the grace ends the session all the same.
  endPaused(resume) {
    endPausedSession(resume, typeof this.link === "string" ? this.link : null).then((answer) => {
      if (answer?.workout) this.handle({ type: "workout", ...answer.workout });
    });
  }

  connect() {
    this.resetConnectionState();
    this.on.status(this.attempt ? `Reconnecting (attempt ${this.attempt + 1})…` : "Connecting…", "busy");
    let socket;
    try {
      socket = new WebSocket(routed(this.url, typeof this.link === "string" ? this.link : null));
    } catch (error) {
      this.finish(`Could not open the connection: ${error.message}`);
      return;
    }
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      // Beside a link key, which takes the link by itself (a Start), a resume string says
      // this session goes on by itself, which the server refuses where another camera
      // took the link meanwhile (docs/protocol.md): only once it had a ready of its own.
      const goesOn = this.id !== undefined || !this.options.link_key;
      const resume = this.resume && goesOn ? { resume: this.resume } : {};
      this.sentOptions = this.options; // what this connection's session starts with
      socket.send(hello(this.track, this.wantedFps, { ...this.options, ...helloKey(), ...resume }));
      this.on.status("Connected; waiting for the server to accept the session…", "busy");
    };
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = (event) => this.closed(event.code, event.reason, opened);
  }

  receive(data) {
    const message = readMessage(data);
    if (!message || this.handle(message)) return;
    switch (message.type) {
      case "ready": {
        // What this connection's hello sent, before the ready replaces it.
        const askedResume = Boolean(this.resume);
        this.ready = true;
        this.resumed = message.resumed === true; // took over a link, with what it holds
        this.id = typeof message.session === "string" ? message.session : null;
        this.resume = typeof message.resume === "string" ? message.resume : null;
        this.watchGrace = Number.isFinite(message.watch_grace) ? message.watch_grace : 0;
        this.setFps(message.fps);
        if (Number.isFinite(message.max_frame_bytes)) this.maxFrameBytes = message.max_frame_bytes;
        this.accepted();
        this.on.ready(message);
        // Back after the server let go (a connection lost for longer than its grace, a
        // restart, another replica): a workout starts again at 0, which the page must say.
        if (this.lostAt !== null && askedResume && message.resumed === false) {
          this.on.forgotten(performance.now() - this.lostAt);
        }
        this.lostAt = null;
        this.pump();
        break;
      }
      case "result": {
        this.settle(message.seq);
        if (!this.gotResult) {
          this.gotResult = true;
          this.attempt = 0; // the session works: the next trouble starts the backoff afresh
        }
        this.on.result(message, performance.now() - message.capture_ms);
        this.pump();
        break;
      }
      case "turn":
        this.lastTurn = performance.now();
        // A frame being grabbed now left before the server saw it: it answers this turn.
        if (!this.sending) this.turnOwed = true;
        this.on.turn();
        this.pump();
        break;
      case "stats":
        this.setFps(message.fps);
        this.on.stats(message);
        break;
      case "error":
        if (message.seq !== undefined) this.settle(message.seq);
        this.on.error(message);
        this.pump();
        break;
      default:
        break; // later protocol versions may add types; ignore them
    }
  }

  // For subclasses: a look at each message first; true when it was theirs alone.
  handle(_message) {
    return false;
  }

  // For subclasses: the server accepted this connection (each ready, before any frame).
  accepted() {}

  // A text message after hello (exercise, summary, calibrate); false when there is no
  // open, accepted connection to send it on.
  control(message) {
    if (this.stopped || !this.ready || this.socket?.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  setFps(fps) {
    if (Number.isFinite(fps) && fps > 0) this.fps = fps;
  }

  // Results come back in order and older waiting frames are dropped, so an answer for
  // `seq` settles every frame sent up to it.
  settle(seq) {
    for (const sent of this.inFlight.keys()) {
      if (sent <= seq) this.inFlight.delete(sent);
    }
  }

  pump() {
    if (this.stopped || !this.ready || this.sending) return;
    const now = performance.now();
    for (const [seq, sentAt] of this.inFlight) {
      if (now - sentAt > STALE_MS) this.inFlight.delete(seq);
    }
    // A turn that finds MAX_IN_FLIGHT frames out stays owed until a result frees a place.
    if (this.inFlight.size >= MAX_IN_FLIGHT) return; // a result or the housekeeping calls again
    const due = this.dueAt();
    if (now < due) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.pump(), due - now);
      return;
    }
    const onTurn = this.turnOwed;
    this.turnOwed = false;
    this.nextDue = now + 1000 / this.fps;
    this.lastSent = now;
    this.sendFrame(this.socket, onTurn);
  }

  // When the next frame may go: now on a turn; after the first turn, only as a fallback
  // when turns stop coming; before any turn, at the granted rate.
  dueAt() {
    if (this.turnOwed) return 0;
    if (this.lastTurn === null) return this.nextDue;
    const fallbackMs = Math.max(FALLBACK_MIN_MS, (FALLBACK_PERIODS * 1000) / this.fps);
    return Math.max(this.lastTurn, this.lastSent) + fallbackMs;
  }

  async sendFrame(socket, onTurn) {
    this.sending = true;
    try {
      const frame = await this.grab();
      if (frame === null) return;
      const image = await frame.blob.arrayBuffer();
      if (socket !== this.socket || socket.readyState !== WebSocket.OPEN || this.stopped) return;
      if (image.byteLength > this.maxFrameBytes) {
        this.on.error({ code: "too_big", message: `a ${image.byteLength}-byte frame is over the server's ${this.maxFrameBytes}-byte limit; not sent` });
        return;
      }
      this.seq = (this.seq + 1) >>> 0;
      socket.send(encodeFrame(this.seq, frame.captureMs, image));
      this.inFlight.set(this.seq, performance.now());
      this.on.sent(this.seq, image.byteLength, onTurn);
    } catch (error) {
      this.on.error({ code: "capture", message: `could not capture a frame: ${error.message}` });
    } finally {
      this.sending = false;
    }
    this.pump();
  }

  // opened: whether the connection was made; a drop before that is a server not reached.
  closed(code, reason, opened) {
    const answered = this.gotResult; // this connection's, before the reset forgets it
    this.socket = null;
    this.resetConnectionState();
    if (this.stopped) return;
    const close = describeClose(code, reason);
    if (code === CLOSE.ABNORMAL && !opened) close.text = "Cannot reach the server.";
    if (code === CLOSE.UNAUTHORIZED) keyRefused(reason);
    const limit = quotaOf(code, reason);
    if (limit !== null) keyAtLimit(limit);
    if (!close.retry) {
      this.pauses = false; // the server ended it for good: no link waits for a next session
      this.on.refused(code, reason);
      this.finish(close.text);
      return;
    }
    // The server's length limit (4004) is planned, not trouble, and asks for the next
    // session at once: an error-coloured countdown ("Reconnecting in 1 s…") read as a fault.
    // Only after a session that answered: a 4004 before any result (a --max-session-seconds
    // shorter than a connection takes to answer) reconnected in a loop as fast as the server
    // closed it, without end; it takes the backoff and its attempts, as any other close.
    if (code === CLOSE.RENEW && answered) {
      this.lostAt ??= performance.now();
      this.clearTimers();
      this.connect();
      this.on.status(`${close.text}: going on in a new session with the same link…`, "busy");
      return;
    }
    if (this.attempt >= MAX_ATTEMPTS) {
      this.finish(`${close.text} Gave up after ${MAX_ATTEMPTS} attempts to reconnect; press Start to try again.`);
      return;
    }
    this.lostAt ??= performance.now();
    const delay = backoffMs(this.attempt, close.minDelayMs);
    this.attempt += 1;
    // The wait counts down: a figure that stood still for 15 s would look like a hang.
    const retryAt = performance.now() + delay;
    const say = () => {
      const seconds = Math.max(1, Math.ceil((retryAt - performance.now()) / 1000));
      this.on.status(`${close.text} Reconnecting in ${seconds} s…`, "error", { ticking: true });
    };
    say();
    this.clearTimers();
    this.countdown = setInterval(say, 1000);
    this.timer = setTimeout(() => {
      clearInterval(this.countdown);
      this.connect();
    }, delay);
  }

  clearTimers() {
    clearTimeout(this.timer);
    clearInterval(this.countdown);
  }

  // The session cannot go on: report why, once.
  finish(text) {
    if (this.stopped) return;
    this.stopped = true;
    this.clearTimers();
    clearInterval(this.housekeeping);
    this.on.ended(text, "error");
  }
}
