// A watch link that outlives its sessions (the avatar page's, for an OBS view or the VMC
// relay; the fitness page's, for a coach). Stop and Start (avatar page), a change of
// settings and a reload each end the session paused (close 4002) and the next one resumes
// the link, for as long as the server keeps it (ready's watch_grace, 60 s by default). A
// reload carries it in sessionStorage: this tab and this page only (the fitness page must
// not go on with the avatar page's link). The avatar page's link outlives that too
// (link_key.js); its pauses still keep the watchers connected through a short break.
//
// A page with no kept key of its own (the fitness page) has a key made for each new link
// (run.js), kept here with the link: the page then knows its watch token before it
// connects, and a balancer sends the camera and its coach to the same replica.

import { newLinkKey } from "./link_key.js";

function storageKey() {
  return `holotrack.keptLink:${window.location.pathname}`;
}

export class KeptLink {
  constructor() {
    this.resume = null;
    this.key = null; // the link key its sessions sent, when they sent one
    this.session = null; // the id of the session that rests on the link
    this.until = 0; // Date.now() when the server lets go of the link
    this.load();
  }

  // session: the LiveSession that just ended (paused).
  keep(session) {
    if (typeof session?.resume !== "string") return;
    this.resume = session.resume;
    this.key = session.options?.link_key ?? null;
    // One never accepted keeps the session that rests on the link, as its resume string.
    this.session = session.id ?? this.session;
    // A session that was never accepted passed its resume on unused: the old deadline holds.
    if (session.watchGrace > 0) this.until = Date.now() + session.watchGrace * 1000;
  }

  // The resume string for the next session, once; null when there is none or it expired.
  take() {
    const resume = this.secondsLeft() > 0 ? this.resume : null;
    this.resume = null;
    return resume;
  }

  // The session of this page's that rests on the link, while the server keeps it; null when
  // none does.
  resting() {
    return this.secondsLeft() > 0 ? this.session : null;
  }

  // The key of the next session's link: the kept one while the server still holds the
  // link, else a new one (a new link). Asked before take(), which forgets the link.
  nextKey() {
    return (this.secondsLeft() > 0 && this.key) || newLinkKey();
  }

  secondsLeft() {
    return this.resume ? Math.max(0, Math.ceil((this.until - Date.now()) / 1000)) : 0;
  }

  save() {
    if (!this.secondsLeft()) return;
    try {
      sessionStorage.setItem(storageKey(), JSON.stringify({ resume: this.resume, key: this.key, session: this.session, until: this.until }));
    } catch {
      // storage refused: a reload makes a new link
    }
  }

  load() {
    let kept = null;
    try {
      kept = JSON.parse(sessionStorage.getItem(storageKey()));
      sessionStorage.removeItem(storageKey());
    } catch {
      return;
    }
    if (typeof kept?.resume === "string" && Number.isFinite(kept.until)) {
      this.resume = kept.resume;
      this.until = kept.until;
      this.key = typeof kept.key === "string" ? kept.key : null;
      this.session = typeof kept.session === "string" ? kept.session : null;
    }
  }
}
