// Small text helpers for the page.

function isFlat(value) {
  return (
    Array.isArray(value) &&
    value.every((item) => item === null || typeof item !== "object")
  );
}

// JSON.stringify with indentation, except that arrays of plain values (a landmark, a bone)
// stay on one line: 543 points read as 543 lines, not 2,000.
export function prettyJson(value, indent = "") {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (isFlat(value)) return `[${value.map((item) => JSON.stringify(item)).join(", ")}]`;
  const inner = indent + "  ";
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    const items = value.map((item) => inner + prettyJson(item, inner));
    return `[\n${items.join(",\n")}\n${indent}]`;
  }
  const entries = Object.entries(value);
  if (entries.length === 0) return "{}";
  const items = entries.map(([key, item]) => `${inner}${JSON.stringify(key)}: ${prettyJson(item, inner)}`);
  return `{\n${items.join(",\n")}\n${indent}}`;
}

// `when` (a Date or milliseconds) in the browser's own time zone, "2026-12-07 20:15:30":
// what a person saves and logs is dated by their own clock; UTC's named a California
// evening's file after the next day.
export function localDateTime(when) {
  const d = new Date(when);
  const two = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

export function formatBytes(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(bytes % (1024 * 1024) ? 1 : 0)} MB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${bytes} bytes`;
}

// Writes `text` into `element` only when it says something else: a screen reader reads a
// live region out each time it is written, the same words too, so a count rewritten with
// each result was said over and over, 15 times a second.
export function putText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

const FIGURES = /\d+(\.\d+)?/g;

// Shows a message in a status element; kind is "info", "busy", "ok" or "error". `ticking`:
// the message is a countdown's, rewritten each second.
export function showStatus(element, text, kind = "info", { ticking = false } = {}) {
  // A countdown's next figure ("Reconnecting in 4 s…" after "in 5 s…") is no news: in a
  // live region each second's figure was read out by a screen reader, an alert's at once.
  // The words are announced when they change; their figures then tick quietly. Only a
  // countdown's: news in the same words with other figures ("Added 3 sessions." after
  // "Added 2 sessions.", a second pause's length) was not read out at all.
  const quiet =
    ticking &&
    !element.hidden &&
    text !== "" &&
    element.dataset.kind === kind &&
    element.textContent.replace(FIGURES, "#") === text.replace(FIGURES, "#");
  if (!("live" in element.dataset)) element.dataset.live = element.getAttribute("aria-live") ?? "";
  if (quiet) element.setAttribute("aria-live", "off");
  else if (element.dataset.live) element.setAttribute("aria-live", element.dataset.live);
  else element.removeAttribute("aria-live");
  element.textContent = text;
  element.dataset.kind = kind;
  element.hidden = text === "";
}

// Whole seconds as a person reads them: "3542 s" (a --watch-grace near its hour) read as
// a figure to work out.
export function duration(seconds) {
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  return seconds % 60 ? `${minutes} min ${seconds % 60} s` : `${minutes} min`;
}
