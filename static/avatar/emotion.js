// Held emotions (docs/protocol.md, "Held emotions"): a row of buttons that hold one of
// VRM's five emotion presets on the avatar, here, in the OBS view and in VMC apps, until
// another is pressed or None. The choice outlives a reconnect, Stop and Start: it is sent
// again on every new connection. It does not outlive a reload: a stream starts neutral.

// The names the server takes (webapp/analysis/rig/emotion.py).
export const EMOTIONS = Object.freeze(["happy", "angry", "sad", "relaxed", "surprised"]);

// The message holding `name` (null: none, the face's own expressions only).
export function emotionMessage(name) {
  return { type: "emotion", name };
}

export class EmotionButtons {
  // box holds buttons with data-emotion="happy" and so on, and one with data-emotion=""
  // (None); send(message) sends on the connected session and says whether there was one.
  constructor({ box, send }) {
    this.buttons = [...box.querySelectorAll("button[data-emotion]")];
    this.send = send;
    this.chosen = undefined; // undefined: never chosen here, so nothing is sent
    for (const button of this.buttons) {
      button.addEventListener("click", () => this.choose(button.dataset.emotion || null));
    }
    this.show(null);
  }

  choose(name) {
    this.chosen = name;
    this.show(name);
    this.send(emotionMessage(name));
  }

  // A new connection (each ready): what was chosen here goes first, before any frame.
  resend(send) {
    if (this.chosen !== undefined) send(emotionMessage(this.chosen));
  }

  // The server's answer: what the avatar now holds, and what a new connection sends.
  held(message) {
    this.chosen = EMOTIONS.includes(message?.name) ? message.name : null;
    this.show(this.chosen);
  }

  show(name) {
    for (const button of this.buttons) {
      button.setAttribute("aria-pressed", String((button.dataset.emotion || null) === name));
    }
    document.body.dataset.emotion = name ?? "none";
  }
}
