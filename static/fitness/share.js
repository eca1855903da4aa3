// The coach's link: /coach?watch=<token>, the token from `ready`'s "watch" field.

import { showStatus } from "../format.js";

export function coachUrl(token, location = window.location) {
  return `${location.origin}/coach?watch=${encodeURIComponent(token)}`;
}

// navigator.clipboard needs a secure context (a phone on http://192.168... has none): then
// select the text and use the old copy command.
async function copyText(text) {
  if (navigator.clipboard?.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // refused: try the fallback
    }
  }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  let copied = false;
  try {
    copied = document.execCommand("copy");
  } catch {
    copied = false;
  }
  area.remove();
  return copied;
}

export class CoachShare {
  constructor({ box, link, button, status }) {
    this.box = box;
    this.link = link;
    this.status = status;
    button.addEventListener("click", () => this.copy());
  }

  show(token) {
    this.box.hidden = false;
    if (typeof token === "string" && token) {
      this.link.href = this.link.textContent = coachUrl(token);
      this.link.dataset.token = token;
      showStatus(this.status, "");
    } else {
      this.link.removeAttribute("href");
      this.link.textContent = "";
      delete this.link.dataset.token;
      showStatus(this.status, "This server gives no watch link.", "info");
    }
  }

  hide() {
    this.box.hidden = true;
  }

  async copy() {
    const url = this.link.getAttribute("href");
    if (!url) return;
    const copied = await copyText(url);
    showStatus(this.status, copied ? "Link copied." : "Could not copy; select the link and copy it by hand.", copied ? "ok" : "error");
  }
}
