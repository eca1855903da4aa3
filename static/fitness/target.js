// The set's rep target: how many reps are still to go, and the moment the count reaches it,
// for the voice to say (a person mid-set counts along, and wants to know when to stop).

import { repsWord } from "./words.js";

export class RepTarget {
  // input: the "Target" number box (empty: no target); line: where the reps to go show.
  constructor({ input, line }) {
    this.input = input;
    this.line = line;
    this.reps = null; // the count last seen; null until a set's first result
    input.addEventListener("input", () => this.render());
    this.render();
  }

  // A whole number of reps from 1 to the box's max (the server's limit too), or null: no
  // target. The browser only marks a number past max as invalid; it still reads it.
  get goal() {
    const goal = Number(this.input.value);
    const most = Number(this.input.max) || Infinity;
    return this.input.value.trim() !== "" && Number.isInteger(goal) && goal > 0 && goal <= most ? goal : null;
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
    if (goal === null) this.line.textContent = "";
    else if (reached) this.line.textContent = `Target reached: ${goal} ${repsWord(goal)}`;
    else this.line.textContent = `${goal - reps} to go of ${goal}`;
  }
}
