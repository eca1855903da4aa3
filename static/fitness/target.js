// The set's rep target: how many reps are still to go, and the moment the count reaches it,
// for the voice to say (a person mid-set counts along, and wants to know when to stop).

import { putText } from "../format.js";
import { repsWord } from "./words.js";

export class RepTarget {
  // input: the "Target" number box (empty: no target); line: where the reps to go show;
  // note: where a box that holds no target says so.
  constructor({ input, line, note }) {
    this.input = input;
    this.line = line;
    this.note = note;
    this.reps = null; // the count last seen; null until a set's first result
    // The last whole number the box held. A typo mid-set (0, 2.5, a key too many) must not
    // drop the target the person counts to, nor the one their coach sees: it holds until
    // the box holds another target, or is emptied on purpose.
    this.kept = null;
    this.refused = false; // the box was put back to the kept target; the note says why
    input.addEventListener("input", () => this.read());
    // Left holding no target (Enter, Tab, a tap elsewhere), the box shows the kept one
    // again: the browser keeps the box's text for the next visit (kept_inputs.js), and a
    // reload reading "1000" lost the target the set had.
    input.addEventListener("change", () => this.settle());
    this.read();
  }

  read() {
    const typed = this.typed;
    if (typed !== undefined) this.kept = typed;
    this.refused = false;
    this.render();
  }

  settle() {
    if (this.typed !== undefined) return;
    this.input.value = this.kept === null ? "" : String(this.kept);
    this.refused = true;
    this.render();
    this.input.dispatchEvent(new Event("change")); // kept as what is now in the box
  }

  // A whole number of reps from 1 to the box's max (the server's limit too); null for an
  // empty box (no target); undefined for anything else. The browser only marks a number
  // past max as invalid; it still reads it, and reads "" for what is no number at all.
  get typed() {
    if (this.input.validity?.badInput) return undefined;
    if (this.input.value.trim() === "") return null;
    const goal = Number(this.input.value);
    const most = Number(this.input.max) || Infinity;
    return Number.isInteger(goal) && goal > 0 && goal <= most ? goal : undefined;
  }

  // The target in force: the box's, or while it holds no target, the last it held.
  get goal() {
    return this.kept;
  }

  reset() {
    this.reps = null;
    this.render();
  }

  // Whether this count is the one that reached the target. A resumed set's first count is
  // not: it was reached before the reload.
  show(reps) {
    const before = this.reps;
    this.reps = reps;
    this.render();
    const goal = this.goal;
    return goal !== null && before !== null && before < goal && reps >= goal;
  }

  render() {
    const goal = this.goal;
    const reps = this.reps ?? 0;
    const reached = goal !== null && reps >= goal;
    this.line.dataset.reached = String(reached);
    if (goal === null) putText(this.line, "");
    else if (reached) putText(this.line, `Target reached: ${goal} ${repsWord(goal)}`);
    else putText(this.line, `${goal - reps} to go of ${goal}`);
    this.explain(goal);
  }

  // The box alone only turns red (:invalid), which says neither why nor what still counts.
  explain(goal) {
    const wrong = this.typed === undefined;
    this.input.setAttribute("aria-invalid", String(wrong));
    if (!this.note) return;
    const most = Number(this.input.max) || null;
    const rule = `A target is a whole number of reps from 1${most ? ` to ${most}` : " up"}`;
    const still = goal === null ? "this set has none until you type one." : `the set keeps its target of ${goal} until you type another.`;
    const said = wrong || this.refused;
    putText(this.note, said ? `${rule}: ${still}` : "");
    this.note.hidden = !said;
  }
}
