// "Show it in OBS too": the one way a .vrm chosen on this page reaches the OBS view, whose
// browser can never have the file. Off by default; ticked, it sends the file to this
// server (PUT /api/avatar/<watch token>, proved by the session's resume string, or by the
// link's key while a phone that scanned this page's code is the camera), which keeps it in
// memory while the watch link lives. Unticked, the server forgets it.

import { authHeaders, keyRefusedBy } from "../access.js";
import { formatBytes, showStatus } from "../format.js";

const WAITING = "It goes to the server with your next Start, or once a phone that scanned this page’s code is the camera.";

export class ObsAvatar {
  // box: what is hidden until there is something to show; checkbox: the opt-in.
  constructor({ box, checkbox, status }) {
    this.box = box;
    this.checkbox = checkbox;
    this.status = status;
    this.limit = Number(document.body.dataset.maxAvatarBytes ?? 0);
    this.file = null; // the .vrm on show here, when it is the user's own
    this.link = null; // {token, resume} from the last ready, or {token, linkKey} (watched)
    this.sent = null; // {token, file} the server holds; file null: sent before a reload
    this.queue = Promise.resolve();
    checkbox.checked = false;
    checkbox.addEventListener("change", () => this.sync());
  }

  // The user's own .vrm is on show (null: the default again).
  chosen(file) {
    this.file = file;
    // Forgotten here, it is forgotten in OBS too: the server kept serving, and letting
    // anyone with the link download, a file its owner had just forgotten.
    if (!file) this.checkbox.checked = false;
    this.box.hidden = !file && !this.sent;
    this.sync();
  }

  // Each ready: the link and the proof of being its camera change with sessions; its
  // "avatar" says whether the server still holds what was sent (a restart forgets it).
  ready(message) {
    if (typeof message.watch !== "string" || typeof message.resume !== "string") return;
    this.follow({ token: message.watch, resume: message.resume }, message.avatar);
  }

  // This page's link, watched while another device (a phone that scanned this page's code)
  // is its camera: this page holds the key the link is made of, which proves as much as
  // the camera's resume string. message: the watcher's "watching".
  watched(token, linkKey, message) {
    this.follow({ token, linkKey }, message.avatar);
  }

  follow(link, avatar) {
    this.link = link;
    if (!avatar) {
      this.sent = null;
    } else if (this.sent?.token !== link.token) {
      // Sent from this browser before a reload: the server still holds it, so the box says
      // so and unticking still takes it back. With the .vrm the browser remembered on show
      // again (picker.js), step() sends that, as for a fresh choice: the server's copy may be
      // an older one, if the last choice never reached it.
      this.sent = { token: link.token, file: null };
      this.checkbox.checked = true;
      this.box.hidden = false;
      this.say("OBS shows the .vrm you sent earlier, kept while this link lives. Untick to show the default there.", "ok", "sent");
    }
    this.sync();
  }

  sync() {
    this.queue = this.queue.then(() => this.step()).catch((error) => this.say(`Could not reach the server: ${error.message}.`, "error", "error"));
  }

  async step() {
    const wanted = this.checkbox.checked;
    if (!wanted) {
      if (this.sent && this.link?.token === this.sent.token) await this.forget();
      else this.say("", "info", "off");
      return;
    }
    if (!this.file) return; // ticked after a reload with nothing remembered: what the server holds stays
    if (!this.link) {
      this.say(WAITING, "info", "waiting");
      return;
    }
    if (this.sent?.token === this.link.token && this.sent.file === this.file) return;
    if (this.limit && this.file.size > this.limit) {
      this.say(`${this.file.name} is ${formatBytes(this.file.size)}, over the ${formatBytes(this.limit)} this server keeps for OBS.${this.onShow()}`, "error", "error");
      return;
    }
    await this.send();
  }

  request(method, body) {
    const { token, resume, linkKey } = this.link;
    const proof = resume ? { "Holotrack-Resume": resume } : { "Holotrack-Link-Key": linkKey };
    return fetch(`/api/avatar/${encodeURIComponent(token)}`, {
      method,
      body,
      headers: authHeaders({ ...proof, "Content-Type": "model/gltf-binary" }),
    });
  }

  async send() {
    const { token } = this.link;
    const file = this.file;
    this.say(`Sending ${file.name} to the server for OBS…`, "busy", "sending");
    const response = await this.request("PUT", file);
    if (response.ok) {
      this.sent = { token, file };
      this.say(`OBS shows ${file.name} too: the server keeps it in memory while this link lives.`, "ok", "sent");
      return;
    }
    await this.refused(response);
  }

  async forget() {
    const response = await this.request("DELETE");
    // 404: the link ended already, and the server forgot the avatar with it.
    if (response.ok || response.status === 404) {
      this.sent = null;
      this.box.hidden = !this.file;
      this.say("OBS shows the default avatar; the server no longer has yours.", "info", "off");
      return;
    }
    await this.refused(response);
  }

  async refused(response) {
    let detail = `the server answered ${response.status}`;
    let body = null;
    try {
      body = await response.json();
      detail = body.detail ?? detail;
    } catch {
      // not JSON: the status says enough
    }
    if (response.status === 401) detail = keyRefusedBy(body);
    if (response.status === 404) {
      // The link ended (the camera was away past the grace): the next Start opens it again.
      this.link = null;
      this.say(WAITING, "info", "waiting");
      return;
    }
    this.say(`Not shown in OBS: ${detail}.${this.onShow()}`, "error", "error");
  }

  // What OBS shows instead of a file refused: the one sent before stays there, which the
  // page left unsaid, so a streamer who switched avatars went on air with the old one.
  onShow() {
    if (!this.sent || this.link?.token !== this.sent.token) return " OBS shows the default avatar.";
    const name = this.sent.file ? this.sent.file.name : "the .vrm you sent earlier";
    return ` OBS still shows ${name}: untick the box to show the default there.`;
  }

  say(text, kind, state) {
    showStatus(this.status, text, kind);
    document.body.dataset.obsAvatar = state;
  }
}
