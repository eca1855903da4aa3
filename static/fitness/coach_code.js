// The coach's link as a QR code, for a coach in the room to open the coach's view on their
// own phone by pointing it at this screen (a phone propped on the floor has no keyboard to
// type a link on), and as a pairing code (../pair_offer.js) for a coach's laptop, which
// cannot scan one: typed into the coach's view, it adds this workout's card. Both lead
// where another device reaches this server (reach.js): on a PC page opened at 127.0.0.1,
// the server's address on the network.
//
// The encoder is loaded when the code is first asked for, so a server without the npm
// modules (the avatar page says what is missing) still counts reps here, and still gives
// a code to type.

import { showStatus } from "../format.js";
import { PairOffer } from "../pair_offer.js";
import { phoneOrigins } from "../reach.js";

export class CoachCode {
  // box: the <details> (data-origins); code, words, address: as qr.js's OriginCode takes;
  // pair: the pairing code's elements (PairOffer's button, box, code, page, status).
  constructor({ box, code, words, address, pair }) {
    this.box = box;
    this.parts = { code, words, address };
    this.origins = phoneOrigins(box);
    this.token = null;
    this.qr = null;
    this.pair = new PairOffer({
      ...pair,
      handed: () => ({ watch: this.token }),
      where: () => `${address.value || this.origins[0]}/coach`,
      warning: "Whoever types it sees your reps, cues and stick figure for this workout (no video).",
    });
    address.addEventListener("change", () => this.pair.moved());
    box.addEventListener("toggle", () => this.draw());
  }

  // token: the session's watch token, or null when it has none (or ended).
  show(token) {
    // A code leads to one workout's view: a new one (or none) ends it.
    if (token !== this.token) this.pair.withdraw();
    this.token = token;
    this.draw();
  }

  // The server's word that `code` was typed in a coach's view: it works once, so it leaves
  // the screen (another coach asks for another).
  used(code) {
    if (this.pair.offered?.code !== code) return;
    this.pair.withdraw();
    showStatus(this.pair.status, "A coach's view has your card: that code is used. Ask for another for a second coach.", "ok");
  }

  async draw() {
    const { words } = this.parts;
    const open = this.box.open && this.token !== null;
    this.pair.available(open && this.origins.length > 0);
    if (!open) return;
    if (!this.origins.length) {
      words.textContent = "Another device reaches this server only at its address on the network: start it with --host 0.0.0.0 --self-signed and open this page at 127.0.0.1 on this machine, or at that address (README, “Phone as the camera”).";
      return;
    }
    if (!this.qr) {
      try {
        const { OriginCode } = await import("../qr.js");
        const link = (origin) => ({
          url: `${origin}/coach?watch=${encodeURIComponent(this.token)}`,
          shown: `the coach’s view at ${new URL(origin).host}`,
        });
        this.qr ??= new OriginCode({ ...this.parts, origins: this.origins, link });
      } catch {
        words.textContent = "This server cannot draw the code (its npm modules are missing): copy the link instead.";
        return;
      }
    }
    this.qr.draw();
  }
}
