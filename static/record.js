// Record / Stop recording: keeps a live session's results in this browser and downloads
// them as a JSON-lines file, one line per result, in the shape POST /api/export reads and
// POST /api/video writes (docs/protocol.md, "Recordings"). Nothing is sent to the server.
//
// Bounded: at MAX_FRAMES lines or MAX_CHARS of text (the server's default export limit),
// recording stops by itself and the file downloads, with a note saying so.

import { formatBytes, localDateTime, showStatus } from "./format.js";
import { saveFile } from "./files.js";

export const MAX_FRAMES = 18000; // 20 minutes at 15 fps
const MAX_CHARS = 32 * 1024 * 1024;
// Six decimals keep sub-pixel precision on any camera and halve the file.
const DIGITS = 1e6;

function rounded(key, value) {
  return typeof value === "number" ? Math.round(value * DIGITS) / DIGITS : value;
}

// One recording line from one protocol v1 result message.
function recordingLine(message, frame, startMs) {
  const line = {
    frame,
    time_ms: message.capture_ms - startMs,
    landmarks: message.landmarks,
    image: message.image,
  };
  if (message.rig) line.rig = message.rig;
  if (message.fitness) line.fitness = message.fitness;
  return JSON.stringify(line, rounded);
}

export class Recorder {
  // button: the Record / Stop recording toggle; status: where the recorder says what it did;
  // name: the page's name in the file name.
  constructor({ button, status, name }) {
    this.button = button;
    this.status = status;
    this.name = name;
    this.lines = null;
    this.chars = 0;
    this.startMs = null;
    this.running = false;
    this.answering = true;
    button.addEventListener("click", () => (this.recording ? this.stop() : this.start()));
    this.available(false);
  }

  get recording() {
    return this.lines !== null;
  }

  // Recording needs a running session; when the session ends, a recording ends with it
  // and downloads, so nothing recorded is lost.
  available(running) {
    if (!running && this.recording) this.stop();
    this.running = running;
    this.offer();
  }

  // Whether the session is connected and answering. Between connections (a reconnect's
  // countdown, before its ready) a take begun said "Recording…" while no result could
  // come; one already under way goes on across the gap, and can be stopped.
  connected(answering) {
    this.answering = answering;
    this.offer();
  }

  offer() {
    this.button.disabled = !this.running || (!this.answering && !this.recording);
  }

  start() {
    this.lines = [];
    this.chars = 0;
    this.startMs = null;
    this.button.textContent = "Stop recording";
    this.button.setAttribute("aria-pressed", "true");
    this.button.dataset.frames = "0";
    showStatus(this.status, "Recording…", "busy");
  }

  add(message) {
    if (!this.recording || !message.landmarks) return;
    if (this.startMs === null) this.startMs = message.capture_ms;
    const text = recordingLine(message, this.lines.length, this.startMs);
    if (this.lines.length >= MAX_FRAMES || this.chars + text.length + 1 > MAX_CHARS) {
      const limit = this.lines.length >= MAX_FRAMES ? `${MAX_FRAMES} frames` : formatBytes(MAX_CHARS);
      this.stop(`The recording reached its limit of ${limit}, stopped and was saved`);
      return;
    }
    this.lines.push(text);
    this.chars += text.length + 1;
    this.button.dataset.frames = String(this.lines.length);
  }

  stop(reason = "Saved") {
    const lines = this.lines;
    this.lines = null;
    this.button.textContent = "Record";
    this.button.setAttribute("aria-pressed", "false");
    this.offer();
    if (!lines?.length) {
      showStatus(this.status, "Nothing was recorded: no results came while recording.", "info");
      return;
    }
    this.download(lines);
    // A take stopped at once may hold a single result: "1 frames" read as a slip.
    const frames = lines.length === 1 ? "1 frame" : `${lines.length} frames`;
    showStatus(this.status, `${reason}: ${frames}, ${formatBytes(this.chars)}.`, "ok");
  }

  download(lines) {
    const blob = new Blob([lines.join("\n") + "\n"], { type: "application/x-ndjson" });
    // The person's own date and time, as the workout log's file is named; no ":" in a file name.
    const stamp = localDateTime(Date.now()).replace(" ", "T").replaceAll(":", "-");
    saveFile(`holotrack-${this.name}-${stamp}.jsonl`, blob);
  }
}
