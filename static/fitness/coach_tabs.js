// One coach's view per browser. Each view opens the cards kept in this browser, so a coach
// who opened each person's link (or scanned each QR code: a tab each) had a tab per person,
// and tab N opened N cards: the same people watched again and again, their places among
// the watchers each session allows taken, and past the connections one address may hold
// the newest cards refused. A view opened while another is open in this browser hands its
// links to that one instead, which adds their cards.

const CHANNEL = "holotrack.coach";
// Which view serves is settled by a lock, not by who answers first: two tabs opened
// together (a coach scanning two QR codes) each heard nobody in time and both served.
// Pages over plain http on a LAN address are not a secure context and have no locks; they
// go by the answer alone, as before.
const LOCK = "holotrack.coach.serving";
// Tabs answer in a few milliseconds. A tab the browser froze in the background does not
// answer at all, and this one then opens its cards itself, as before.
const ANSWER_MS = 300;
// With the lock held elsewhere a view is known to serve: its answer is waited for longer,
// as two tabs opened together on a loaded machine took more than ANSWER_MS and both served.
const HELD_ANSWER_MS = 2000;

export class CoachTabs {
  constructor() {
    this.channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(CHANNEL) : null;
    this.locks = globalThis.navigator?.locks ?? null;
    this.holding = false; // this view has the lock: it answers even before it serves
    this.added = null; // this view shows the cards: added(tokens) for links opened elsewhere
    this.waiting = []; // tokens handed over before this view began to serve
    this.channel?.addEventListener("message", (event) => this.heard(event.data));
  }

  heard(message) {
    if (!(this.added || this.holding) || typeof message !== "object" || message === null) return;
    if (message.type === "anyone") this.channel.postMessage({ type: "here" });
    if (message.type === "add" && Array.isArray(message.tokens)) {
      const tokens = message.tokens.filter((token) => typeof token === "string");
      if (this.added) this.added(tokens);
      else this.waiting.push(...tokens);
    }
  }

  // Resolves true once this view holds the lock (for as long as it lives), false at once if
  // another view holds it (with `wait`, only once the holder has gone) or there are no locks.
  take(wait) {
    if (!this.locks) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.locks
        .request(LOCK, { ifAvailable: !wait }, (lock) => {
          if (!lock) return resolve(false);
          this.holding = true;
          resolve(true);
          return new Promise(() => {});
        })
        .catch(() => resolve(false));
    });
  }

  // Whether another view in this browser answered, and was handed `tokens` to watch.
  async handOver(tokens) {
    if (!this.channel) return false;
    if (await this.take(false)) return false;
    const answered = new Promise((resolve) => {
      const listen = (event) => {
        if (event.data?.type !== "here") return;
        clearTimeout(timer);
        this.channel.removeEventListener("message", listen);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.channel.removeEventListener("message", listen);
        resolve(false);
      }, this.locks ? HELD_ANSWER_MS : ANSWER_MS);
      this.channel.addEventListener("message", listen);
    });
    this.channel.postMessage({ type: "anyone" });
    if (!(await answered)) return false;
    this.channel.postMessage({ type: "add", tokens });
    return true;
  }

  // This view shows the cards from now on: links opened in other tabs come to `added`. A
  // view watching alongside another takes the lock when that one closes, so a tab opened
  // later hands its link here rather than serving a third set of cards.
  serve(added) {
    this.added = added;
    if (this.waiting.length) added(this.waiting.splice(0));
    if (!this.holding) this.take(true);
  }
}
