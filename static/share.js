// A session's watch link, from `ready`'s "watch" token: /avatar?watch=... for OBS,
// /coach?watch=... for a coach. The page that shows it names the view.

import { showStatus } from "./format.js";

// extra: more of the view's query ({framing: "full"}), left out when empty.
function watchUrl(token, view = "/avatar", location = window.location, extra = {}) {
  const more = Object.entries(extra).map(([k, v]) => `&${k}=${encodeURIComponent(v)}`).join("");
  return `${location.origin}${view}?watch=${encodeURIComponent(token)}${more}`;
}

// navigator.clipboard needs a secure context; a phone on http://192.168... has none, so
// fall back to selecting the text and the old copy command.
async function copyText(text) {
  if (navigator.clipboard?.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // permission refused: try the fallback
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

// Copies `text` and says in `status` that it did, or how to copy the `thing` by hand.
export async function copyAndSay(text, status, thing) {
  const copied = await copyText(text);
  const done = `${thing[0].toUpperCase()}${thing.slice(1)} copied.`;
  showStatus(status, copied ? done : `Could not copy; select the ${thing} and copy it by hand.`, copied ? "ok" : "error");
}

export class WatchShare {
  // query: what the view is to show besides the session (the avatar's framing), read each
  // time the link is drawn: a link pasted into OBS shows what the page shows.
  constructor({ box, link, button, status, view = "/avatar", query = () => ({}) }) {
    this.view = view;
    this.query = query;
    this.box = box;
    this.link = link;
    this.status = status;
    button.addEventListener("click", () => this.copy());
  }

  // token: the ready message's "watch", or undefined from a server without watchers;
  // watchers: the ready message's "max_watchers" (0: the server takes none).
  show(token, { watchers } = {}) {
    this.box.hidden = false;
    if (watchers === 0) {
      // A link that can only be refused: pasted into OBS, it showed nothing and said why
      // only in its own page.
      this.noLink("This server lets no one watch a session (its --max-watchers is 0), so there is no watch link.");
    } else if (typeof token === "string" && token) {
      this.link.href = this.link.textContent = watchUrl(token, this.view, window.location, this.query());
      this.link.dataset.token = token;
      this.link.removeAttribute("aria-disabled");
      showStatus(this.status, "");
    } else {
      this.noLink("This server gives no watch link (its protocol predates watchers).");
    }
  }

  noLink(why) {
    this.link.removeAttribute("href");
    this.link.textContent = "";
    delete this.link.dataset.token;
    this.link.setAttribute("aria-disabled", "true");
    showStatus(this.status, why, "info");
  }

  hide() {
    this.box.hidden = true;
  }

  // What the view is to show changed: the link says so now.
  redraw() {
    const token = this.link.dataset.token;
    if (token) this.link.href = this.link.textContent = watchUrl(token, this.view, window.location, this.query());
  }

  // The session stopped, and its link is kept (link_key.js): the next Start brings it back.
  kept() {
    if (!this.link.dataset.token) {
      this.hide();
      return;
    }
    showStatus(this.status, "Stopped. This link stays the same: your next Start brings it back, after a reload or a restart of the server too. Leave it in OBS, which shows the avatar at rest meanwhile.", "info");
  }

  async copy() {
    const url = this.link.getAttribute("href");
    if (!url) return;
    await copyAndSay(url, this.status, "link");
  }
}
