// The view for OBS, GET /avatar?watch=<token>: only the avatar, on a transparent background,
// posed by the results of the session it watches. Any machine that reaches the server can
// show it; it says in words when the session ends and keeps trying the same link. The
// avatar is the server's default, or the .vrm the camera's page gave the link
// ("Show it in OBS too"), switched as the server announces it.

import { showStatus } from "../format.js";
import { hasKeyForm } from "../link_key.js";
import { routed, socketUrl } from "../protocol.js";
import { WatchSocket } from "../watch.js";
import { AvatarView } from "./view.js";
import { afterClose } from "./watch.js";

const status = document.getElementById("watch-status");
const token = new URLSearchParams(window.location.search).get("watch") ?? "";
const view = new AvatarView(document.getElementById("avatar-view"));
window.holotrackAvatar = view.testHook();

// The framing follows the link: ?watch=...&framing=full shows the legs too.
view.scene.setFraming(new URLSearchParams(window.location.search).get("framing") ?? "upper");

let results = 0;
// The link's own avatar, when its camera gave it one; null: the server's default;
// undefined: the one wanted could not be loaded, and is tried again when next announced
// (each time the view is watching again), not left to a stream for good.
let wanted = null;
let loading = Promise.resolve();

// Follows the link's avatar as the server announces it, one load at a time, the latest
// winning; one that cannot be loaded leaves the default on show rather than nothing.
function follow(url) {
  if (url === wanted) return;
  wanted = url;
  loading = loading.then(async () => {
    if (wanted !== url) return; // a newer announcement is queued behind this one
    let source = url === null ? "default" : "link";
    try {
      await view.load(url ?? document.body.dataset.defaultAvatar);
    } catch (error) {
      if (wanted === url) wanted = undefined;
      if (url === null) throw error;
      console.warn(`The link's own avatar could not be loaded (${error.message}): showing the default.`);
      await view.load(document.body.dataset.defaultAvatar);
      source = "default";
    }
    document.body.dataset.avatarReady = "true";
    document.body.dataset.avatarSource = source;
  }).catch((error) => say(`Cannot load the avatar: ${error.message}.`, "error"));
}

function say(text, kind) {
  showStatus(status, text, kind);
  document.body.dataset.watchState = kind;
}

if (!view.scene.failure) {
  try {
    await view.load(document.body.dataset.defaultAvatar);
    document.body.dataset.avatarReady = "true";
    document.body.dataset.avatarSource = "default";
  } catch (error) {
    wanted = undefined;
    say(`Cannot load the avatar: ${error.message}.`, "error");
  }
}

if (view.scene.failure) {
  // Watching would only clear the words: there is nothing this view could show.
  say(view.scene.failure, "error");
} else if (!token) {
  say("This link names no session to watch: copy the full link from the avatar page.", "error");
} else if (!hasKeyForm(token)) {
  // No server can ever know it: waiting for it to come back waited for ever.
  say("This link's watch token is cut short or not one: copy the full link from the avatar page.", "error");
} else {
  const lost = (text) => {
    view.rest();
    say(text, "error");
  };
  const connection = new WatchSocket({
    url: routed(socketUrl(), token, { watcher: true }),
    token,
    bye: "the view closed",
    handlers: {
      unopened: lost,
      closed: (close) => {
        const next = afterClose(close);
        lost(next.text);
        return next.delay;
      },
      watching: (message) => {
        document.body.dataset.session = message.session;
        // Once it works, the view shows only the avatar: nothing to read on a stream.
        say("", "ok");
        follow(typeof message.avatar === "string" ? message.avatar : null);
      },
      avatar: (message) => follow(typeof message.url === "string" ? message.url : null),
      result: (message) => {
        results += 1;
        document.body.dataset.results = String(results);
        if (message.rig) view.apply(message.rig);
      },
    },
  });
  connection.start();
  window.addEventListener("pagehide", () => connection.stop());
}
