// One coach's view per browser. Each view opens the cards kept in this browser, so a coach
// who opened each person's link (or scanned each QR code: a tab each) had a tab per person,
// and tab N opened N cards: the same people watched again and again, their places among
// the watchers each session allows taken, and past the connections one address may hold
// the newest cards refused. A view opened while another is open in this browser hands its
// links to that one instead, which adds their cards.

const CHANNEL = "holotrack.coach";
// Tabs answer in a few milliseconds. A tab the browser froze in the background does not
// answer at all, and this one then opens its cards itself, as before.
const ANSWER_MS = 300;

export class CoachTabs {
  constructor() {
    this.channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(CHANNEL) : null;
    this.added = null; // this view shows the cards: added(tokens) for links opened elsewhere
    this.channel?.addEventListener("message", (event) => this.heard(event.data));
  }

  heard(message) {
    if (!this.added || typeof message !== "object" || message === null) return;
    if (message.type === "anyone") this.channel.postMessage({ type: "here" });
    if (message.type === "add" && Array.isArray(message.tokens)) {
      this.added(message.tokens.filter((token) => typeof token === "string"));
    }
  }

  // Whether another view in this browser answered, and was handed `tokens` to watch.
  async handOver(tokens) {
    if (!this.channel) return false;
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
      }, ANSWER_MS);
      this.channel.addEventListener("message", listen);
    });
    this.channel.postMessage({ type: "anyone" });
    if (!(await answered)) return false;
    this.channel.postMessage({ type: "add", tokens });
    return true;
  }

  // This view shows the cards from now on: links opened in other tabs come to `added`.
  serve(added) {
    this.added = added;
  }
}
