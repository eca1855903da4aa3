// A pairing code on show (pair_code.js), under a QR code, for a device that cannot scan
// it: the avatar page's link for a spare computer to be its camera, the fitness page's
// watch token for a coach's laptop. The code leaves the screen, and ends on the server,
// when the section closes, the page is left, or what it hands over changes.

import { showStatus } from "./format.js";
import { offerCode, shownCode, withdrawCode } from "./pair_code.js";

const ASK = "No way to scan it? Show a code to type";

export class PairOffer {
  // button: asks for a code; box: where it shows, with code (the code), page (the address
  // to open on the other device) and status; handed(): what the code hands over now,
  // { link_key } or { watch }; where(): that address; warning: who may type it, and what
  // they can then do.
  constructor({ button, box, code, page, status, handed, where, warning }) {
    Object.assign(this, { button, box, code, page, status, handed, where, warning });
    this.expiry = null;
    this.offered = null; // { code, handed }: the code on show and what it hands over
    this.asking = 0; // the latest ask: an older answer (a new link meanwhile) is dropped
    button.addEventListener("click", () => this.ask());
    // A page closed or left: its code would otherwise wait out its minutes on the server.
    addEventListener("pagehide", () => this.withdraw());
  }

  available(yes) {
    this.button.hidden = !yes;
    if (!yes) this.withdraw();
  }

  // The server no longer has its codes (it restarted): the one on show is offered again,
  // so what the screen says, perhaps read out already, still works.
  renew() {
    if (this.offered) this.ask(this.offered.code);
  }

  // wanted: the code to offer again, kept unless another took it meanwhile.
  async ask(wanted = null) {
    const asking = ++this.asking;
    this.button.disabled = true;
    const handed = this.handed();
    try {
      const { code, expiresIn } = await offerCode(handed, wanted);
      // Overtaken by a newer ask: its code ends, unless it is the one on show (two renews
      // of the same code, whose first answer came last).
      if (asking !== this.asking) return code === wanted ? undefined : withdrawCode(code, handed);
      this.show(code, handed, expiresIn);
    } catch (error) {
      if (asking !== this.asking) return;
      this.withdraw();
      showStatus(this.status, `No code: ${error.message}.`, "error");
    } finally {
      if (asking === this.asking) this.button.disabled = false;
    }
  }

  show(code, handed, expiresIn) {
    clearTimeout(this.expiry);
    // The server ends the code it replaces (the same secret's) by itself.
    this.offered = { code, handed };
    this.code.textContent = shownCode(code);
    this.code.dataset.code = code;
    this.moved();
    this.box.hidden = false;
    this.button.textContent = "Another code";
    const minutes = Math.round(expiresIn / 60);
    showStatus(this.status, `It works once, for ${minutes} minutes. ${this.warning}`, "info");
    this.expiry = setTimeout(() => {
      this.offered = null; // over on the server too
      this.withdraw();
      showStatus(this.status, "That code is over: ask for another if the other device still needs one.", "info");
    }, expiresIn * 1000);
  }

  // Another address chosen for the QR code: the other device opens that one too.
  moved() {
    this.page.textContent = this.where();
  }

  // Nobody can type it from a photo of the screen later, nor reach what it no longer
  // leads to (a new link, a new workout).
  withdraw() {
    if (this.offered) withdrawCode(this.offered.code, this.offered.handed);
    this.offered = null;
    this.asking += 1;
    clearTimeout(this.expiry);
    this.box.hidden = true;
    this.code.textContent = "";
    delete this.code.dataset.code;
    this.status.hidden = true;
    this.button.disabled = false;
    this.button.textContent = ASK;
  }
}
