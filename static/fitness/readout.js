// The big rep counter, the phase, the live angles and the cues in words, from each
// result's "fitness" object.

import { putText } from "../format.js";
import { measureLabel, measureValue, phaseText, repsWord, sidesText } from "./words.js";

export class RepReadout {
  constructor({ reps, unit, sides, phase, angles, cues, lastRep }) {
    this.el = { reps, unit, sides, phase, angles, cues, lastRep };
    this.angleRows = new Map();
    this.order = [];
  }

  // order: the exercise's measures as /api/exercises lists them, the order the rows keep
  // whichever the camera sees first.
  reset(order = []) {
    this.order = order;
    putText(this.el.reps, "0");
    putText(this.el.unit, repsWord(0));
    putText(this.el.sides, "");
    putText(this.el.phase, "–");
    this.el.phase.dataset.phase = "";
    this.el.angles.replaceChildren();
    this.angleRows.clear();
    this.el.cues.replaceChildren();
    putText(this.el.lastRep, "");
  }

  show(fitness) {
    putText(this.el.reps, String(fitness.reps));
    putText(this.el.unit, repsWord(fitness.reps));
    putText(this.el.sides, sidesText(fitness.sides));
    putText(this.el.phase, phaseText(fitness.phase));
    this.el.phase.dataset.phase = fitness.phase;
    this.showAngles(fitness.angles ?? {});
    this.showCues(fitness.cues ?? []);
    const rep = fitness.last_rep;
    putText(
      this.el.lastRep,
      rep
        ? `Last rep: ${Math.round(rep.range_of_motion)}° range of motion in ${(rep.duration_ms / 1000).toFixed(1)} s` +
          (rep.side ? ` (${rep.side})` : "")
        : "",
    );
  }

  // One row per measure ever seen this set; a measure not seen now shows a dash.
  showAngles(angles) {
    const fresh = Object.keys(angles).filter((name) => !this.angleRows.has(name));
    for (const name of fresh) {
      const row = document.createElement("div");
      const label = document.createElement("dt");
      const value = document.createElement("dd");
      label.textContent = measureLabel(name);
      row.dataset.measure = name;
      row.append(label, value);
      this.el.angles.append(row);
      this.angleRows.set(name, value);
    }
    if (fresh.length) this.sortAngles();
    for (const [name, value] of this.angleRows) value.textContent = measureValue(name, angles[name]);
  }

  sortAngles() {
    const rank = (row) => {
      const i = this.order.indexOf(row.dataset.measure);
      return i < 0 ? this.order.length : i;
    };
    this.el.angles.append(...[...this.el.angles.children].sort((a, b) => rank(a) - rank(b)));
  }

  showCues(cues) {
    const shown = [...this.el.cues.children].map((li) => li.dataset.code).join();
    if (shown === cues.map((c) => c.code).join()) return;
    this.el.cues.replaceChildren(
      ...cues.map((cue) => {
        const item = document.createElement("li");
        item.dataset.code = cue.code;
        item.textContent = cue.message;
        return item;
      }),
    );
  }
}
