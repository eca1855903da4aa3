// The set timer: from the first result of a set until the set ends.

import { clock } from "./words.js";

export class SetTimer {
  constructor(element) {
    this.element = element;
    this.started = null;
    this.stoppedAt = null;
    this.ticker = null;
  }

  // Called on every result; the first one of a set starts the clock.
  running() {
    if (this.started !== null) return;
    this.started = performance.now();
    this.stoppedAt = null;
    clearInterval(this.ticker);
    this.ticker = setInterval(() => this.show(), 250);
    this.show();
  }

  // The set began before this page saw it (a reload mid-set resumed it): `ms`, the
  // server's time of the set so far, is the least the clock shows.
  atLeast(ms) {
    if (!Number.isFinite(ms) || this.stoppedAt !== null) return;
    this.running();
    this.started = Math.min(this.started, performance.now() - ms);
    this.show();
  }

  // A new set: the clock waits for its first result.
  reset() {
    clearInterval(this.ticker);
    this.started = null;
    this.stoppedAt = null;
    this.element.textContent = clock(0);
  }

  stop() {
    if (this.started !== null && this.stoppedAt === null) this.stoppedAt = performance.now();
    clearInterval(this.ticker);
    this.show();
  }

  show() {
    if (this.started === null) return;
    this.element.textContent = clock((this.stoppedAt ?? performance.now()) - this.started);
  }
}
