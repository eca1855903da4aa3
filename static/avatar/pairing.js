// Where a device types the avatar page's pairing code (../pair_code.js; the page that has
// the link shows it with ../pair_offer.js) and becomes that page's camera.

import { showStatus } from "../format.js";
import { claimCode, normalizeCode } from "../pair_code.js";

export class PairJoin {
  // form: the code's <form> with input and button; status; handed({ link, access }) when
  // the server traded the code for another page's keys.
  constructor({ form, input, button, status, handed }) {
    Object.assign(this, { form, input, button, status, handed });
    this.running = false;
    this.claimed = null; // keys claimed as this page's own camera started: taken at its stop
    // A code being typed again: what was wrong with the last one is no longer the case.
    input.addEventListener("input", () => {
      if (status.dataset.kind === "error") status.hidden = true;
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.join();
    });
  }

  // This page's own camera runs: a new link would wait for its next Start, so none is taken
  // until the camera stops.
  pause(running) {
    this.running = running;
    this.button.disabled = running;
    if (running || !this.claimed) return;
    const keys = this.claimed;
    this.claimed = null;
    this.status.hidden = true;
    // After the Stop under way has had its say ("Stopped."), so that these words stay.
    queueMicrotask(() => this.handed(keys));
  }

  async join() {
    const code = normalizeCode(this.input.value);
    if (!code) {
      // A 0 typed for a D or an O, or a 1 for an I, is 8 letters and digits too: the words
      // name the characters a code never has.
      showStatus(this.status, "A code is 8 letters and digits, with no 0, O, 1, I or L, as the other page shows it (like K7QM-2XDA).", "error");
      return;
    }
    this.button.disabled = true;
    try {
      const keys = await claimCode(code);
      this.input.value = "";
      if (keys.watch) {
        // Claimed, so used up: the other page makes another where it is wanted.
        showStatus(this.status, "That code was a workout’s, for a coach’s view: it opens at /coach, typed there. Ask for another one for that.", "error");
        return;
      }
      if (this.running) {
        // Start was pressed while the code was on its way: the session runs on this page's
        // own link, and the code is used up, so its keys wait for the Stop.
        this.claimed = keys;
        showStatus(this.status, "Claimed while this page’s camera started, on its own link: press Stop, and this page takes the other page’s link.", "info");
        return;
      }
      this.status.hidden = true;
      this.handed(keys);
    } catch (error) {
      showStatus(this.status, `${error.message}.`, "error");
    } finally {
      this.button.disabled = this.running;
    }
  }
}
