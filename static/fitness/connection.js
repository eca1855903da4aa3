// The live session with an exercise: the live page's LiveSession, plus the two fitness
// control messages and the server's `workout` answers (docs/protocol.md, issue 14).

import { CLOSE } from "../protocol.js";
import { LiveSession } from "../session.js";

export class FitnessSession extends LiveSession {
  // handlers: LiveSession's, plus workout(msg) and paired(msg), the server's word that a
  // pairing code for this session's watch link was typed (docs/protocol.md).
  constructor({ handlers, ...rest }) {
    super({ handlers, ...rest });
    this.on.workout = handlers.workout ?? (() => {});
    this.on.paired = handlers.paired ?? (() => {});
    this.setOf = this.options.exercise ?? null; // the exercise of the server's set going on
    this.newSetOwed = false; // asked for while no connection was open
    this.targetOwed = false; // changed after the hello went, before its ready
    this.finishing = false; // Stop was pressed: frames are over (windDown)
    this.finalAsked = false;
    // The last frame sent before the server heard of the set begun here: results up to it
    // may be the last set's, with its count, though of the same exercise.
    this.lastSetUpTo = null;
  }

  // Whether `message` (a result) is of a set this page has left: sent before the server
  // heard of the new one (another exercise chosen, or "New set" of the same while results
  // were on their way). Shown, it put the last set's count back for a moment.
  ofLastSet(message) {
    if (this.setOf && message.fitness?.exercise !== this.setOf) return true;
    return this.lastSetUpTo !== null && message.seq <= this.lastSetUpTo;
  }

  // A new set was asked for on this connection: no frame of the last one is sent after it.
  leftSet(name) {
    this.setOf = name;
    this.lastSetUpTo = this.seq;
  }

  handle(message) {
    if (message?.type === "paired") {
      this.on.paired(message);
      return true;
    }
    if (message?.type !== "workout") return false;
    this.on.workout(message);
    return true;
  }

  // A new set of `name` (the same exercise again, or another); answered with a workout,
  // now or, asked while reconnecting, once the next connection is accepted. Its hello
  // names `name`: another exercise than the set's starts the new set by itself, the same
  // one goes on with the set, so a new one is asked for then.
  newSet(name) {
    this.options = { ...this.options, exercise: name };
    const sent = this.control({ type: "exercise", name, target: this.options.target ?? null });
    if (sent) this.leftSet(name);
    this.newSetOwed = !sent && name === this.setOf;
    return !this.stopped;
  }

  // The set's rep target (null: none), for the coach's view and the log; a reconnect's
  // hello carries it on.
  aim(target) {
    this.options = { ...this.options, target };
    this.targetOwed = !this.control({ type: "target", reps: target });
  }

  // A hello sent before the page's last change may not carry it: what is owed goes now.
  // Another exercise chosen after the hello went (on a phone's data, a round trip to its
  // ready) was counted as chosen while the server went on counting the hello's.
  accepted() {
    this.setOf = this.sentOptions?.exercise ?? null;
    const name = this.options.exercise ?? null;
    const target = this.options.target ?? null;
    if (name !== null && name !== this.setOf) this.newSetOwed = true;
    if (this.newSetOwed && name !== null) {
      this.newSetOwed = !this.control({ type: "exercise", name, target });
      if (!this.newSetOwed) this.leftSet(name);
      this.targetOwed = this.targetOwed && this.newSetOwed;
    }
    if (this.targetOwed) this.targetOwed = !this.control({ type: "target", reps: target });
  }

  summary() {
    return this.control({ type: "summary" });
  }

  // Stop: no frame goes after this, and once the last one sent is answered (a rep it
  // completes is counted by then) the workout is asked for; `finalAsked` says it was, so
  // its answer is the set's last word. Asked at once, a frame already on its way could
  // finish a rep the log never heard of. False when no connection can take it.
  windDown() {
    if (!this.ready || this.socket?.readyState !== WebSocket.OPEN) return false;
    this.finishing = true;
    this.askFinal();
    return true;
  }

  // Stop's wait for that workout ran out (a slow link: the last frame's answer, then the
  // workout's). Closed with 1000, the workout the server says last came after the page had
  // stopped listening, and a set with no rep yet, never asked for before, missed the log.
  // Closed as paused, the session waits for the end request that stop() then makes (as a
  // Stop while paused does), whose answer brings the workout to the log.
  stopUnanswered(text) {
    if (this.resume && this.socket?.readyState === WebSocket.OPEN) this.socket.close(CLOSE.PAUSED, "paused");
    this.stop(text);
  }

  pump() {
    if (this.finishing) this.askFinal();
    else super.pump();
  }

  askFinal() {
    if (this.finalAsked || this.sending || this.inFlight.size > 0) return;
    this.finalAsked = this.summary();
  }
}
