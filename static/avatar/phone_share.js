// A phone as the camera for this page's link (README, "Phone as the camera"): a QR code
// that opens the avatar page on the phone with this page's link key, so the phone's
// tracking drives the link this page knows (its OBS link and relay command, ready to
// paste on this machine). This page then watches the link and moves its own avatar with
// it, saying whether the phone is there. The code carries the key, not the watch link:
// whoever scans it can be the camera, so it shows only when asked for.

import { currentKey } from "../access.js";
import { showStatus } from "../format.js";
import { PairOffer } from "../pair_offer.js";
import { OriginCode } from "../qr.js";
import { isLoopback, phoneOrigins } from "../reach.js";
import { CLOSE, routed, socketUrl } from "../protocol.js";
import { WatchSocket } from "../watch.js";
import { describeWatchClose } from "./watch.js";

// Someone is between scanning and pressing Start on the phone: look often.
const RETRY_MS = 3000;
// Said whether or not a phone was ever the camera: "let the phone drive it again" read as
// if one had been, to someone who had only pressed Start.
const PAUSED = "This page’s own camera is the camera while it runs: to use a phone or another computer instead, press Stop here first.";
const DRIVING = "The phone is the camera: it moves the avatar here, in the OBS view and in the relay.";
// A phone whose page was closed, or which slept, leaves its link waiting out the server's
// grace (a minute) with no frames: after this long without one, the page says so.
const QUIET_MS = 5000;
const WAITING = "Waiting for the phone (or computer): scan the code with it, or type the pairing code on it (same network); accept the certificate warning once if it shows one, then press Start there.";
// A phone that drove this link keeps its key: away past the server's grace (its screen
// locked, its page asleep or stopped), it takes the link up again by itself when shown, or
// at its Start. "Scan the code with it" sent the person to scan again for nothing.
const PHONE_ENDED = "The phone’s session has ended (stopped there, or its page closed).";
const AWAY = "Waiting for the phone (or computer) to go on: it keeps this page’s link, so there is nothing to scan again. Its page goes on by itself when it is shown again after a pause; if it was stopped, press Start there.";

// This page watching the link is one of its access key's sessions (docs/protocol.md, "Access
// keys"): at max_sessions 1 the phone took the only place, and the page said "Waiting for
// the phone: scan the code" to someone whose phone was driving the avatar.
const KEY_FULL = /^quota max_sessions:/;
const UNSEEN = "The phone may be the camera already: this page watches it as one more of the key’s sessions, so the key needs a max_sessions of at least 2 (the phone and this page; one more for each OBS view). Ask whoever runs the server; this page tries again every few seconds.";

// No code where a phone could not follow it: the words say why, and how to have one.
const HOW = "To use a phone, start the server with --host 0.0.0.0 --self-signed --local-http-port 8081 and open this page on the server’s computer at http://127.0.0.1:8081/avatar: its code then leads the phone to that computer’s network address, over https (README, “Phone as the camera”).";

function noCodeWords(location = window.location) {
  if (isLoopback(location.hostname)) {
    return `No code to scan: this page is open at ${location.host}, this computer’s own address, which a phone cannot reach, and the server named no network address a phone could open it at over https. ${HOW}`;
  }
  return `No code to scan: this page is open over plain http, and a phone’s browser opens its camera only over https. ${HOW}`;
}

// The address the code carries: the keys ride in the fragment, which browsers never send
// to a server (nor in an access log), and the phone's page wipes it once read. The access
// key goes along where this page has one: the link stays with it (--access-keys).
function handoverUrl(page, key, accessKey = "") {
  return `${page}#link_key=${key}${accessKey ? `&key=${encodeURIComponent(accessKey)}` : ""}`;
}

// Whether the section is open, for a reload of this tab.
const OPEN_KEY = "holotrack.phoneShare.open";

function remember(open) {
  try {
    if (open) sessionStorage.setItem(OPEN_KEY, "1");
    else sessionStorage.removeItem(OPEN_KEY);
  } catch {
    // a browser that keeps nothing: the section opens closed, as before
  }
}

function remembered() {
  try {
    return sessionStorage.getItem(OPEN_KEY) === "1";
  } catch {
    return false;
  }
}

export class PhoneShare {
  // box: the <details>; code: where the QR code goes; page: its words on where it leads;
  // address: the <select> of addresses, shown when there are several; pair: the pairing
  // code's elements (PairOffer), for a device that cannot scan the code;
  // linkKey: this page's (link_key.js); handlers: token(token) when the link is known,
  // watching(message, token), result(message), emotion(message), the emotion the link holds,
  // lost() when the phone's session is not there.
  constructor({ box, code, page, address, pair, status, linkKey, handlers }) {
    this.box = box;
    this.status = status;
    this.linkKey = linkKey;
    this.on = handlers;
    this.watcher = null;
    this.paused = false;
    this.serverAway = false; // the watched link's server went away, or could not be reached
    // This page's own last session, which its Stop paused: the link waits for it through the
    // server's grace, and the watcher is told "watching" of it as of a phone's session.
    this.own = null;
    this.watchingOwn = false;
    this.lastNews = 0; // when the watched link last sent a frame's result, or began
    this.phoneCame = false; // a phone (not this page) drove the link since its key was made
    setInterval(() => this.checkQuiet(), 1000);
    // The key is left out of the words: they may be read aloud or shown.
    this.qr = new OriginCode({
      code,
      words: page,
      address,
      origins: phoneOrigins(box),
      link: (origin) => ({ url: handoverUrl(`${origin}/avatar`, linkKey.value, currentKey()), shown: `${origin}/avatar` }),
    });
    this.pair = new PairOffer({
      ...pair,
      handed: () => ({ link_key: linkKey.value }),
      where: () => `${this.qr.current()}/avatar`,
      warning: "Whoever types it can move your avatar: keep it off your stream.",
    });
    address.addEventListener("change", () => this.pair.moved());
    box.addEventListener("toggle", () => {
      remember(box.open);
      if (box.open) this.open();
      else this.close();
    });
    // Reloaded while a phone drove the avatar, the page said only "Press Start to drive the
    // avatar with your webcam", a Start that takes the link from the phone mid-stream.
    if (remembered()) box.open = true;
  }

  async open() {
    if (this.box.dataset.watchers === "0") {
      // This page follows the phone's session as a watcher, which the server refuses: a
      // code led to a phone that moved nothing here, and the page asked again for ever.
      for (const part of this.box.querySelectorAll(".with-code")) part.hidden = true;
      showStatus(this.status, "No phone or other computer can be the camera here: this server lets no one watch a session (its --max-watchers is 0).", "info");
      this.pair.available(false);
      return;
    }
    const reachable = this.qr.origins.length > 0;
    // "Scan this code" and who may scan it read as if a code were there to scan.
    for (const part of this.box.querySelectorAll(".with-code")) part.hidden = !reachable;
    if (!reachable) {
      showStatus(this.status, noCodeWords(), "info");
      this.pair.available(false);
      return;
    }
    this.qr.draw();
    this.pair.available(true);
    const token = await this.linkKey.token();
    if (!token || !this.box.open) return;
    this.on.token(token);
    if (this.paused) showStatus(this.status, PAUSED, "info");
    else this.watch(token);
  }

  // The key changed (New link): a new code, and the new link watched.
  renewed() {
    this.pair.withdraw(); // it leads to the old link
    this.phoneCame = false; // the phone's key is the old one: it needs the new code
    if (this.box.open) this.open(); // its watch() lets go of the old link first
  }

  close() {
    this.stopWatching();
    this.pair.withdraw();
  }

  stopWatching() {
    this.watcher?.stop();
    this.watcher = null;
    if (this.box.dataset.phone) this.box.dataset.phone = "off";
  }

  // This page's own camera runs (its Start takes the link over): it stops watching.
  // own: the session it ran, once it stopped (it rests on the link for the grace).
  pause(paused, own = null) {
    this.paused = paused;
    this.own = paused ? null : own;
    if (paused) {
      this.stopWatching();
      if (this.box.open) showStatus(this.status, PAUSED, "info");
    } else if (this.box.open) {
      this.open();
    }
  }

  watch(token) {
    this.stopWatching(); // a code closed and opened again while its token was being worked out
    showStatus(this.status, WAITING, "busy");
    this.box.dataset.phone = "waiting";
    this.watcher = new WatchSocket({
      url: routed(socketUrl(), token, { watcher: true }),
      token,
      bye: "the phone's code was closed",
      handlers: {
        watching: (message) => {
          this.serverAway = false;
          // No phone came: a Stop here left this page's own session resting on the link.
          // Said "The phone is the camera", and the code on show went away unused.
          this.watchingOwn = Boolean(this.own) && message.session === this.own;
          if (this.watchingOwn) {
            this.box.dataset.phone = "waiting";
            showStatus(this.status, WAITING, "busy");
            return;
          }
          this.own = null;
          this.phoneCame = true;
          this.box.dataset.phone = "watching";
          this.lastNews = performance.now();
          this.pair.withdraw(); // the device is here: its code, used or not, is done
          showStatus(this.status, DRIVING, "ok");
          this.on.watching(message, token);
        },
        result: (message) => {
          this.lastNews = performance.now();
          if (this.box.dataset.phone === "quiet") {
            this.box.dataset.phone = "watching";
            showStatus(this.status, DRIVING, "ok");
          }
          this.on.result(message);
        },
        emotion: (message) => this.on.emotion(message),
        unopened: (text) => showStatus(this.status, text, "error"),
        closed: ({ code, reason, wasWatching: watched }) => {
          // This page's own session letting go of the link at the end of its grace is no news.
          const own = this.watchingOwn;
          const wasWatching = watched && !own;
          this.own = null;
          this.watchingOwn = false;
          // Before lost(): the page asks whether a phone still drives it (its Record).
          this.box.dataset.phone = "waiting";
          this.on.lost();
          // Answered again after the server went away: it may have restarted, and lost the
          // code on show with everything else.
          if (code === CLOSE.UNKNOWN_WATCH && this.serverAway) this.pair.renew();
          // Until it answers "unknown link" (or "watching"), whatever it says on the way.
          if ([CLOSE.GOING_AWAY, CLOSE.ABNORMAL].includes(code)) this.serverAway = true;
          else if (code === CLOSE.UNKNOWN_WATCH) this.serverAway = false;
          // An unknown link is the phone not started yet: the everyday case, not news.
          const news = wasWatching || (code !== CLOSE.UNKNOWN_WATCH && !(own && code === CLOSE.NORMAL));
          // A Stop on the phone ends the session this page followed: the OBS view's words
          // ("the session this view watches") named the wrong thing here.
          const ended = wasWatching && code === CLOSE.NORMAL;
          const said = ended ? PHONE_ENDED : describeWatchClose(code, reason, wasWatching);
          const why = news ? `${said} ` : "";
          const full = code === CLOSE.TRY_AGAIN_LATER && KEY_FULL.test(reason ?? "");
          const waiting = this.phoneCame ? AWAY : WAITING;
          showStatus(this.status, why + (full ? UNSEEN : waiting), news && !wasWatching ? "error" : "busy");
          return RETRY_MS;
        },
      },
    });
    this.watcher.start();
  }

  // Watching a link whose camera sends nothing: its phone paused, closed or asleep.
  checkQuiet() {
    const phone = this.box.dataset.phone;
    const quiet = performance.now() - this.lastNews;
    if ((phone !== "watching" && phone !== "quiet") || quiet < QUIET_MS) return;
    this.box.dataset.phone = "quiet";
    const seconds = Math.round(quiet / 1000);
    showStatus(this.status, `No frames from the phone for ${seconds} s: its Start may be stopped, or its page closed or asleep. The avatar here waits for it.`, "busy", { ticking: true });
  }
}
