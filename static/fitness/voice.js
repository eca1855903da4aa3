// Reps and form cues said aloud by the browser's own speech (the Web Speech API): side-on at
// floor level, two metres away, a person in the middle of a set cannot read the screen.

import { keepInputs } from "../kept_inputs.js";
import { browserStorage } from "../storage.js";

const KEPT = "holotrack.fitness.voice";
// A fault that holds over several reps (a sagging body line) is said again, but no sooner.
const CUE_REPEAT_MS = 10000;
export const TICKED = "Reps will be said aloud.";
export const REACHED = "Target reached.";

// Before the pages kept their settings together, a ticked box was kept as "on": it stays
// ticked.
function carryOver(storage, box) {
  try {
    if (storage?.getItem(KEPT) === "on") storage.setItem(KEPT, JSON.stringify({ [box.id]: true }));
  } catch {
    // Storage refused: the box starts unticked, as with nothing kept.
  }
}

export class Voice {
  // box: the "Say reps aloud" checkbox; note: where the page says the browser cannot speak.
  constructor({ box, note, synth = globalThis.speechSynthesis, storage = browserStorage(), now = () => performance.now() }) {
    this.box = box;
    this.synth = synth ?? null;
    this.now = now;
    this.said = new Map(); // cue code -> when it was last said
    this.reps = null; // the count last seen; null until a set's first result
    if (!this.synth || typeof globalThis.SpeechSynthesisUtterance !== "function") {
      box.checked = false;
      box.disabled = true;
      note.textContent = "This browser cannot speak: the count is on the screen only.";
      return;
    }
    carryOver(storage, box);
    keepInputs(KEPT, [box], storage);
    box.addEventListener("change", () => {
      // Heard now, the voice can be turned up before the set; and a phone's browser lets a
      // page speak only once it has spoken from a tap.
      if (box.checked) this.say(TICKED);
      else this.synth.cancel();
    });
  }

  // From Start's tap, for a phone's browser whose box was ticked on an earlier visit.
  prime() {
    if (this.on) this.say("");
  }

  get on() {
    return this.box.checked && !this.box.disabled;
  }

  // A new set: its first result is the count to go on from (0, or a resumed set's count,
  // which is not news).
  reset() {
    this.reps = null;
    this.said.clear();
  }

  // reached: this count is the one that reached the set's target (RepTarget.show).
  show(fitness, reached = false) {
    const before = this.reps;
    this.reps = fitness.reps;
    if (!this.on) return;
    if (before !== null && fitness.reps > before) this.say(String(fitness.reps));
    if (reached) this.say(REACHED);
    const t = this.now();
    for (const cue of fitness.cues ?? []) {
      const last = this.said.get(cue.code);
      if (last !== undefined && t - last < CUE_REPEAT_MS) continue;
      this.said.set(cue.code, t);
      this.say(cue.message);
    }
  }

  say(text) {
    const words = new SpeechSynthesisUtterance(text);
    words.lang = document.documentElement.lang || "en";
    this.synth.speak(words);
  }

  stop() {
    this.synth?.cancel();
    this.reset();
  }
}
