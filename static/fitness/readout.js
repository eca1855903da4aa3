// The big rep counter, the phase, the live angles and the cues in words, from each
// result's "fitness" object.

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
    this.el.reps.textContent = "0";
    this.el.unit.textContent = repsWord(0);
    this.el.sides.textContent = "";
    this.el.phase.textContent = "–";
    this.el.phase.dataset.phase = "";
    this.el.angles.replaceChildren();
    this.angleRows.clear();
    this.el.cues.replaceChildren();
    this.el.lastRep.textContent = "";
  }

  show(fitness) {
    this.el.reps.textContent = String(fitness.reps);
    this.el.unit.textContent = repsWord(fitness.reps);
    this.el.sides.textContent = sidesText(fitness.sides);
    this.el.phase.textContent = phaseText(fitness.phase);
    this.el.phase.dataset.phase = fitness.phase;
    this.showAngles(fitness.angles ?? {});
    this.showCues(fitness.cues ?? []);
    const rep = fitness.last_rep;
    this.el.lastRep.textContent = rep
      ? `Last rep: ${Math.round(rep.range_of_motion)}° range of motion in ${(rep.duration_ms / 1000).toFixed(1)} s` +
        (rep.side ? ` (${rep.side})` : "")
      : "";
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
