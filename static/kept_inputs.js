// A page's settings kept in this browser from one visit to the next: a streamer opens the
// avatar page before every stream, and had to tick Mirror off, set the smoothing and type
// the VMC receivers each time. Each setting is kept as it is changed (a `change` event:
// the person's own doing, not the page's) and put back when the page opens, before the
// page reads it.

import { browserStorage } from "./storage.js";

// An input's place in the kept record: a radio group's name, any other input's id.
const nameOf = (input) => (input.type === "radio" ? input.name : input.id);

function read(input) {
  if (input.type === "checkbox") return input.checked;
  return input.value;
}

// Whether the kept value could be put back: one of another kind, or an option the page no
// longer has, leaves the page's default.
function write(input, value) {
  if (input.type === "checkbox") {
    if (typeof value !== "boolean") return false;
    input.checked = value;
    return true;
  }
  if (typeof value !== "string") return false;
  if (input.type === "radio") {
    if (input.value !== value) return false;
    input.checked = true;
    return true;
  }
  if (input instanceof HTMLSelectElement && ![...input.options].some((o) => o.value === value)) return false;
  if (input.type === "range" && (value === "" || !Number.isFinite(Number(value)))) return false;
  input.value = value; // a range clamps a number outside its bounds to them
  return true;
}

function load(key, storage) {
  try {
    const kept = JSON.parse(storage?.getItem(key) ?? "{}");
    return kept !== null && typeof kept === "object" && !Array.isArray(kept) ? kept : {};
  } catch {
    return {}; // written by something else, or cut short: the defaults
  }
}

// Puts back what was kept under `key` for these inputs and keeps each change from now on.
// Returns the names (ids, or radio groups' names) put back.
export function keepInputs(key, inputs, storage = browserStorage()) {
  const kept = load(key, storage);
  const restored = new Set();
  for (const input of inputs) {
    const name = nameOf(input);
    if (Object.hasOwn(kept, name) && write(input, kept[name])) restored.add(name);
    input.addEventListener("change", () => {
      // Read again: the same page in another tab may have kept other settings since.
      const now = { ...load(key, storage), [name]: read(input) };
      try {
        storage?.setItem(key, JSON.stringify(now));
      } catch {
        // Storage full or refused: the setting holds for this visit.
      }
    });
  }
  return restored;
}
