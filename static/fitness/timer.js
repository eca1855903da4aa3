// The set timer: the time the set has run, not the time since it began. Results are the
// set running; a gap with none longer than GAP_MS (the page paused or hidden, the network
// gone, Stop) is time away and is left out: a timer that went on counting while the phone
// was in a pocket read as the set's length.

import { clock } from "./words.js";

// As the server's counter: after this long without a frame it waits for the start
// position again (README, "Fitness and coaching").
const GAP_MS = 2500;

export class SetTimer {
  constructor(element) {
    this.element = element;
    this.reset();
  }

  // Called on every result: the time since the one before counts, unless it was a gap.
  running() {
    if (this.stopped) return;
    const now = performance.now();
    if (this.last !== null && now - this.last <= GAP_MS) this.ms += now - this.last;
    this.last = now;
    this.show();
  }

  // The set began before this page saw it (a reload mid-set resumed it): `ms`, the
  // server's time of the set so far, is the least the clock shows.
  atLeast(ms) {
    if (!Number.isFinite(ms) || this.stopped) return;
    this.ms = Math.max(this.ms, ms);
    this.show();
  }

  // A new set: the clock waits for its first result.
  reset() {
    this.ms = 0;
    this.last = null; // performance.now() of the set's last result
    this.stopped = false;
    this.show();
  }

  stop() {
    this.stopped = true;
  }

  show() {
    this.element.textContent = clock(this.ms);
  }
}
