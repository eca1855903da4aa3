// Held emotions (docs/protocol.md, "Held emotions"): a row of buttons that hold one of
// VRM's five emotion presets on the avatar, here, in the OBS view and in VMC apps, until
// another is pressed or None. The link keeps it: a reconnect, Stop and Start or a reload
// carry on with it, and the server tells the page what it holds. While a phone that was
// handed this page's link is the camera, the buttons hold it over HTTP
// (PUT /api/emotion/<watch token>, proved by the link's key). Strength is the weight the
// emotion is held at: a full smile is more than many streamers mean.

import { authHeaders, keyRefusedBy } from "../access.js";
import { showStatus } from "../format.js";
import { keepInputs } from "../kept_inputs.js";

// The strength set here is kept in this browser; what is held is the server's to say.
const KEPT = "holotrack.avatar.strength";

// The names the server takes (webapp/analysis/rig/emotion.py).
export const EMOTIONS = Object.freeze(["happy", "angry", "sad", "relaxed", "surprised"]);

// `name` held at `weight` (0..1; whole when left out, as the server takes it) or, for a
// null name, none: the face's own expressions only. The body of PUT /api/emotion/TOKEN.
export function emotionBody(name, weight = 1) {
  return name !== null && weight < 1 ? { name, weight } : { name };
}

function emotionMessage(name, weight = 1) {
  return { type: "emotion", ...emotionBody(name, weight) };
}

export class EmotionButtons {
  // box holds buttons with data-emotion="happy" and so on, one with data-emotion=""
  // (None), and a range input (5-100 percent) with its output, the strength; send(message)
  // sends on this page's own session and says whether it could; status says what went
  // wrong over HTTP.
  constructor({ box, send, status }) {
    this.buttons = [...box.querySelectorAll("button[data-emotion]")];
    this.strength = box.querySelector("input[type=range]");
    this.strengthShown = box.querySelector("output");
    keepInputs(KEPT, [this.strength]);
    // Exact, as the server holds it: the slider's steps would round one held over HTTP.
    this.weight = Number(this.strength.value) / 100;
    this.showStrength(this.weight);
    this.send = send;
    this.status = status;
    this.chosen = undefined; // undefined: never chosen here, so nothing is sent
    this.phone = null; // {token, linkKey} while a phone is this page's link's camera
    this.unsent = false; // chosen while no camera was there: it goes to the next
    // Choices sent and not yet answered: the server's word on an older one (a slider's
    // arrow key pressed again before the answer) must not undo the newer on the page.
    this.unanswered = 0;
    this.presses = 0; // so that a PUT's late failure is not said after a newer press
    this.shown = null; // (name, weight) => ..., told each choice and strength shown
    for (const button of this.buttons) {
      button.addEventListener("click", () => this.choose(button.dataset.emotion || null));
    }
    this.strength.addEventListener("input", () => this.showStrength(Number(this.strength.value) / 100));
    // On release (or each arrow key): one message, not one for every pixel of a drag.
    this.strength.addEventListener("change", () => {
      this.weight = Number(this.strength.value) / 100;
      if (this.chosen) this.choose(this.chosen);
      else this.show();
    });
    this.show();
  }

  choose(name) {
    // What went wrong with the last press is old news once another is made.
    this.status.hidden = true;
    this.presses += 1;
    this.chosen = name;
    this.show();
    this.unsent = false;
    if (this.send(emotionMessage(name, this.weight))) this.unanswered += 1;
    else if (this.phone) this.put(name, this.phone);
    else this.unsent = true;
  }

  // A new connection (each ready): what was chosen here goes first, before any frame. What
  // went on the last one is answered no more. A session that resumed its link has what
  // the link holds, and tells it, which may be newer than this page's (a stream deck's,
  // held over HTTP while the page was away, was overwritten): only a choice the last
  // connection did not see through goes again.
  resend(send, resumed = false) {
    const owed = this.unsent || this.unanswered > 0;
    this.unanswered = 0;
    if (resumed && !owed) return;
    if (this.chosen !== undefined && send(emotionMessage(this.chosen, this.weight))) {
      this.unsent = false;
      this.unanswered = 1;
    }
  }

  // The server's word (an answer, or news of what the link holds): what the avatar holds.
  // A choice not yet sent wins: it is newer, and goes with the camera when it comes. So
  // does one not yet answered; the last word is still always shown (the server answers in
  // order, and news of a choice made elsewhere counts down with the answers).
  held(message) {
    if (this.unsent) return;
    if (this.unanswered > 0 && --this.unanswered > 0) return;
    this.chosen = EMOTIONS.includes(message?.name) ? message.name : null;
    // None keeps the strength: the next button pressed is held at it.
    const weight = message?.weight;
    if (this.chosen && typeof weight === "number") {
      this.weight = weight;
      this.strength.value = String(Math.round(weight * 100));
      this.showStrength(weight);
    }
    this.show();
  }

  // A phone moves this page's link (null: no longer).
  phoneIs(phone) {
    this.phone = phone;
    // With no phone the buttons no longer go over HTTP: an error of that road is over.
    if (!phone) this.status.hidden = true;
    if (phone && this.unsent) {
      this.unsent = false;
      this.put(this.chosen, phone);
    }
  }

  async put(name, { token, linkKey }) {
    let response;
    this.unanswered += 1;
    const press = this.presses;
    // Still this press's to say: no newer one, and the phone it went to still the camera.
    const current = () => press === this.presses && this.phone?.token === token;
    try {
      response = await fetch(`/api/emotion/${encodeURIComponent(token)}`, {
        method: "PUT",
        body: JSON.stringify(emotionBody(name, this.weight)),
        headers: authHeaders({ "Holotrack-Link-Key": linkKey, "Content-Type": "application/json" }),
      });
    } catch {
      this.unanswered = Math.max(0, this.unanswered - 1);
      this.owe(press);
      if (current()) showStatus(this.status, "The expression did not reach the server: check the connection and press it again.", "error");
      return;
    }
    const answer = await response.json().catch(() => null);
    if (response.ok) {
      this.status.hidden = true;
      this.held(answer);
      return;
    }
    this.unanswered = Math.max(0, this.unanswered - 1);
    this.owe(press);
    const detail = response.status === 401 ? keyRefusedBy(answer) : answer?.detail;
    if (current()) showStatus(this.status, `The expression was not held: ${detail ?? `the server answered ${response.status}`}.`, "error");
  }

  // The latest press did not reach the link: it goes with the next connection, this
  // page's own session resuming the link included (which sends only what is owed), so
  // the pressed button is not left over an avatar that does not hold it.
  owe(press) {
    if (press === this.presses) this.unsent = true;
  }

  // has(name): whether the avatar on show has that expression; a button for one it lacks
  // says so, and still works, for an avatar in a VMC app or a browser elsewhere may have it.
  modelHas(has) {
    for (const button of this.buttons) {
      const missing = Boolean(button.dataset.emotion) && !has(button.dataset.emotion);
      button.classList.toggle("missing", missing);
      button.title = missing
        ? `The avatar here has no ${button.textContent} expression, so it shows nothing; an avatar in a VMC app or in OBS may have one`
        : "";
    }
  }

  // The page's own words for an emotion (null: None's), as its button says them.
  label(name) {
    return this.buttons.find((button) => (button.dataset.emotion || null) === name)?.textContent ?? String(name);
  }

  // What is chosen (none until a choice), pressed; and to whoever follows it.
  show() {
    const name = this.chosen ?? null;
    for (const button of this.buttons) {
      button.setAttribute("aria-pressed", String((button.dataset.emotion || null) === name));
    }
    document.body.dataset.emotion = name ?? "none";
    this.shown?.(this.chosen, this.weight);
  }

  showStrength(weight) {
    this.strengthShown.textContent = `${Math.round(weight * 100)}%`;
  }
}
