// The coach's link as a QR code, for a coach in the room to open the coach's view on their
// own phone by pointing it at this screen (a phone propped on the floor has no keyboard to
// type a link on). It leads where another device reaches this server (reach.js): on a PC
// page opened at 127.0.0.1, the server's address on the network.
//
// The encoder is loaded when the code is first asked for, so a server without the npm
// modules (the avatar page says what is missing) still counts reps here.

import { phoneOrigins } from "../reach.js";

export class CoachCode {
  // box: the <details> (data-origins); code, words, address: as qr.js's OriginCode takes.
  constructor({ box, code, words, address }) {
    this.box = box;
    this.parts = { code, words, address };
    this.origins = phoneOrigins(box);
    this.token = null;
    this.qr = null;
    box.addEventListener("toggle", () => this.draw());
  }

  // token: the session's watch token, or null when it has none (or ended).
  show(token) {
    this.token = token;
    this.draw();
  }

  async draw() {
    const { words } = this.parts;
    if (!this.box.open || !this.token) return;
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
