// The avatar page's pairing codes (../pair_code.js), both ends: PairOffer under this page's
// QR code shows a code that hands its link to a device that cannot scan one (a spare
// computer with a webcam); PairJoin is where that device types it and becomes the camera.

import { showStatus } from "../format.js";
import { claimCode, normalizeCode, offerCode, shownCode, withdrawCode } from "../pair_code.js";

export class PairOffer {
  // button: asks for a code; box: where it shows, with code (the code), page (the address
  // to open on the other device) and status; linkKey: this page's (link_key.js);
  // where(): the origin the QR code leads to now.
  constructor({ button, box, code, page, status, linkKey, where }) {
    Object.assign(this, { button, box, code, page, status, linkKey, where });
    this.expiry = null;
    this.offered = null; // { code, key }: the code on show and the link key it hands over
    this.asking = 0; // the latest ask: an older answer (New link meanwhile) is dropped
    button.addEventListener("click", () => this.ask());
    // A page closed or left: its code would otherwise wait out its minutes on the server.
    addEventListener("pagehide", () => this.withdraw());
  }

  available(yes) {
    this.button.hidden = !yes;
    if (!yes) this.withdraw();
  }

  async ask() {
    const asking = ++this.asking;
    this.button.disabled = true;
    const key = this.linkKey.value;
    try {
      const { code, expiresIn } = await offerCode(key);
      if (asking !== this.asking) return withdrawCode(code, key);
      this.show(code, key, expiresIn);
    } catch (error) {
      if (asking !== this.asking) return;
      this.withdraw();
      showStatus(this.status, `No code: ${error.message}.`, "error");
    } finally {
      if (asking === this.asking) this.button.disabled = false;
    }
  }

  show(code, key, expiresIn) {
    clearTimeout(this.expiry);
    // The server ends the code it replaces (the same key's) by itself.
    this.offered = { code, key };
    this.code.textContent = shownCode(code);
    this.code.dataset.code = code;
    this.moved();
    this.box.hidden = false;
    this.button.textContent = "Another code";
    const minutes = Math.round(expiresIn / 60);
    showStatus(this.status, `It works once, for ${minutes} minutes. Whoever types it can move your avatar: keep it off your stream.`, "info");
    this.expiry = setTimeout(() => {
      this.offered = null; // over on the server too
      this.withdraw();
      showStatus(this.status, "That code is over: ask for another if the other device still needs one.", "info");
    }, expiresIn * 1000);
  }

  // Another address chosen for the QR code: the other device opens that one too.
  moved() {
    this.page.textContent = `${this.where()}/avatar`;
  }

  // The code leaves the screen and ends (the section closed, a device come, a New link:
  // it leads to the old one): nobody can type it from a photo of the screen later.
  withdraw() {
    if (this.offered) withdrawCode(this.offered.code, this.offered.key);
    this.offered = null;
    this.asking += 1;
    clearTimeout(this.expiry);
    this.box.hidden = true;
    this.code.textContent = "";
    delete this.code.dataset.code;
    this.status.hidden = true;
    this.button.disabled = false;
    this.button.textContent = "No way to scan it? Show a code to type";
  }
}

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
      this.status.hidden = true;
      this.handed(keys);
    } catch (error) {
      showStatus(this.status, `${error.message}.`, "error");
    } finally {
      this.button.disabled = this.running;
    }
  }
}
