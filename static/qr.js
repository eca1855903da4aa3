// A QR code drawn as SVG, for a phone's camera to read: the avatar page's code that hands
// its link to a phone, and the fitness page's coach link. qrcode-generator (npm, pinned)
// encodes; this draws.

import qrcode from "qrcode-generator";

const SVG = "http://www.w3.org/2000/svg";
const QUIET_MODULES = 4; // the white border a reader needs around the code
// Whole pixels per module: a module drawn 5.85 pixels wide blurs its edges, and readers
// fail more often on it (OpenCV's detector missed one such code in 8, none of 12 at 6).
const MODULE_PX = 6;

// The code for `text` as an SVG: dark modules as one path on white, the quiet zone included.
function qrSvg(text) {
  const code = qrcode(0, "M");
  code.addData(text);
  code.make();
  const count = code.getModuleCount();
  const size = count + 2 * QUIET_MODULES;
  let d = "";
  for (let row = 0; row < count; row += 1) {
    for (let column = 0; column < count; column += 1) {
      if (code.isDark(row, column)) d += `M${column + QUIET_MODULES} ${row + QUIET_MODULES}h1v1h-1z`;
    }
  }
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.setAttribute("width", String(size * MODULE_PX));
  svg.setAttribute("height", String(size * MODULE_PX));
  svg.setAttribute("shape-rendering", "crispEdges");
  const background = document.createElementNS(SVG, "rect");
  background.setAttribute("width", String(size));
  background.setAttribute("height", String(size));
  background.setAttribute("fill", "#fff");
  const modules = document.createElementNS(SVG, "path");
  modules.setAttribute("d", d);
  modules.setAttribute("fill", "#000");
  svg.append(background, modules);
  return svg;
}

// A code that leads a phone to this server at one of its origins (reach.js), with the
// <select> of them shown when there are several (Wi-Fi and a cable, a VPN), and words
// saying where it leads. link(origin) -> {url: what the code says, shown: what the words
// say, without any secret}.
export class OriginCode {
  constructor({ code, words, address, origins, link }) {
    this.code = code;
    this.words = words;
    this.address = address;
    this.origins = origins;
    this.link = link;
    address.replaceChildren(...origins.map((origin) => new Option(new URL(origin).host, origin)));
    address.parentElement.hidden = origins.length < 2;
    address.addEventListener("change", () => this.draw());
  }

  // The origin the code leads to: the one chosen, or the only one.
  current() {
    return this.address.value || this.origins[0];
  }

  draw() {
    const { url, shown } = this.link(this.current());
    this.code.replaceChildren(qrSvg(url));
    const several = this.origins.length > 1 ? " This machine has several addresses: choose the one the phone’s network reaches." : "";
    this.words.textContent = `It opens ${shown} on the phone.${several}`;
  }

  clear() {
    this.code.replaceChildren();
    this.words.textContent = "";
  }
}
