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
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.join();
    });
  }

  // This page's own camera runs: a new link would wait for its next Start, so none is taken.
  pause(running) {
    this.running = running;
    this.button.disabled = running;
  }

  async join() {
    const code = normalizeCode(this.input.value);
    if (!code) {
      showStatus(this.status, "A code is 8 letters and digits, as the other page shows it (like K7QM-2XDA).", "error");
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
      this.status.hidden = true;
      this.handed(keys);
    } catch (error) {
      showStatus(this.status, `${error.message}.`, "error");
    } finally {
      this.button.disabled = this.running;
    }
  }
}
