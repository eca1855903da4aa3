// The screen stays on while the camera runs. A phone propped up as the camera is not
// touched for an hour; without a Screen Wake Lock its screen dims and locks after a minute
// or so, the browser then suspends the page and its camera, and tracking stops.
//
// The browser lets go of the lock whenever the page is hidden (another app, the lock
// button), so it is asked for again each time the page is shown while the camera is wanted.
// Where the API is missing (an older Safari, Firefox before 126, plain http) or the request
// is refused (battery saver), the page goes on and a note says what to do instead: the
// state is in body's data-wake ("held", "released", "off", "unavailable", "refused").

// The note shows on a computer with a webcam too, so it names no phone.
const ADVICE = "set this device's screen timeout longer: when its screen locks, the camera stops";

export class ScreenWake {
  // note: a status element for what the lock could not do; hidden while all is well.
  constructor(note) {
    this.note = note;
    this.wanted = false;
    this.sentinel = null;
    this.asking = null; // the request under way: a second one would take a second lock
    this.hidWhileAsking = false;
    this.show("off");
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.acquire();
      else if (this.asking) this.hidWhileAsking = true;
    });
  }

  hold() {
    this.wanted = true;
    return this.acquire();
  }

  release() {
    this.wanted = false;
    const sentinel = this.sentinel;
    this.sentinel = null;
    sentinel?.release().catch(() => {}); // already released by the browser: nothing held
    this.show("off");
  }

  async acquire() {
    if (!this.wanted || this.sentinel || this.asking || document.visibilityState !== "visible") return;
    if (typeof navigator.wakeLock?.request !== "function") {
      // Browsers offer the lock on secure pages only: there the browser is not the reason.
      const why = window.isSecureContext ? "This browser cannot keep the screen on" : "Over plain http the browser cannot keep the screen on";
      this.show("unavailable", `${why}: ${ADVICE}.`);
      return;
    }
    this.hidWhileAsking = false;
    this.asking = navigator.wakeLock.request("screen");
    let sentinel;
    try {
      sentinel = await this.asking;
    } catch (error) {
      if (!this.wanted) return;
      // Hidden while it asked, the page is refused for that alone, and the answer may come
      // once it is shown again (a frozen page hears it on resuming), after the showing
      // asked nothing, a request being under way: it asks again rather than say refused.
      if (this.hidWhileAsking) {
        this.show("released");
        queueMicrotask(() => this.acquire());
        return;
      }
      // Refused (battery saver): no error, the camera runs; the next showing asks again.
      this.show("refused", `The browser would not keep the screen on (${error.message || error.name}): ${ADVICE}.`);
      return;
    } finally {
      this.asking = null;
    }
    if (!this.wanted) {
      sentinel.release().catch(() => {});
      return;
    }
    this.sentinel = sentinel;
    sentinel.addEventListener("release", () => {
      if (this.sentinel !== sentinel) return;
      this.sentinel = null;
      this.show("released");
      this.acquire(); // released while still shown (rare): at once; else when shown again
    });
    this.show("held");
  }

  show(state, text = "") {
    document.body.dataset.wake = state;
    if (!this.note) return;
    this.note.textContent = text;
    this.note.hidden = text === "";
  }
}
