// The still-image view: pick or drop a photo, POST it to /predict, draw the skeleton over it
// and show the JSON answer.

import { authHeaders, keyAtLimit, keyRefusedBy } from "./access.js";
import { drawSkeleton, exposeColors, loadSkeleton } from "./draw.js";
import { describeHttpError } from "./errors.js";
import { formatBytes, prettyJson, showStatus } from "./format.js";
import { acceptFiles, saveFile } from "./files.js";
import { uprightBitmap } from "./orientation.js";

// Large photos are drawn at most this many pixels on their longest side.
const MAX_CANVAS_SIDE = 1600;

const page = document.body.dataset;
const maxUploadBytes = Number(page.maxUploadBytes) || Infinity;

const input = document.getElementById("file");
const dropZone = document.getElementById("drop-zone");
const status = document.getElementById("still-status");
const result = document.getElementById("still-result");
const canvas = document.getElementById("still-canvas");
const jsonView = document.getElementById("json");
const downloadButton = document.getElementById("download-json");

// A video chosen or dropped here: the server's own refusal ("POST videos to /api/video")
// is words for scripts, not for a person at the page.
const VIDEO_WORDS =
  "is a video, and this page tracks one photo at a time. The server tracks video files through its API rather than a page (a script or curl sends the file to /api/video; the project's docs/api.md shows how). To be tracked moving, use the Live webcam below";

let current = 0; // the newest upload; answers to older ones are ignored
let download = null; // {name, text} of the answer on show

// Whether the browser can read the file's bytes. A folder dropped here comes as a file it
// cannot read (in Chromium, 4096 bytes and no type), and so does a file moved or changed on
// disk since it was chosen: posted, the browser would not send it and the page blamed the
// server ("Could not reach the server").
async function readable(file) {
  try {
    await file.slice(0, 1).arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

async function post(file) {
  const body = new FormData();
  body.append("file", file, file.name);
  let response;
  try {
    response = await fetch("/predict", { method: "POST", body, headers: authHeaders() });
  } catch (error) {
    return { ok: false, message: `Could not reach the server (${error.message}). Is it running?` };
  }
  let answer = null;
  try {
    answer = await response.json();
  } catch {
    // not JSON: a proxy's error page, a dropped connection
  }
  if (response.status === 401) {
    // The detail ends in words for scripts ("send it as Authorization: Bearer KEY"): a
    // person is pointed at the form instead, in the words the live session uses.
    const words = keyRefusedBy(answer);
    return { ok: false, message: `${words[0].toUpperCase()}${words.slice(1)}, then choose the photo again (HTTP 401, unauthorized).` };
  }
  if (answer?.error === "quota") keyAtLimit(answer.detail);
  if (response.status === 415 && /\bvideo\b/.test(answer?.detail ?? "")) {
    return { ok: false, message: `${file.name} ${VIDEO_WORDS}.` };
  }
  if (response.ok && answer === null) {
    // "The server answered HTTP 200 OK without an explanation" read as the server's
    // success: a 200 that is not JSON is an answer cut off, or another's (a Wi-Fi login
    // page, a proxy's).
    return {
      ok: false,
      message: `The answer for ${file.name} could not be read: it was cut off, or came from something between this browser and the server (a proxy, a Wi-Fi sign-in page). Choose the photo again.`,
    };
  }
  if (!response.ok || answer === null) {
    return { ok: false, message: describeHttpError(response.status, answer, response.statusText) };
  }
  return { ok: true, answer };
}

const PART_NAMES = { pose: "pose", face: "face", left_hand: "left hand", right_hand: "right hand" };

function partsSummary(landmarks) {
  const found = Object.entries(PART_NAMES)
    .filter(([key]) => landmarks[key])
    .map(([key, name]) => `${name} (${landmarks[key].length})`);
  return found.length ? `Found ${found.join(", ")}` : "No person found: try a photo with a person in clear view";
}

// The canvas's name, which a screen reader says for the picture: a fixed "The photo with the
// skeleton drawn over it" was said of a photo with nobody in it, and of the blank canvas
// drawn for a format the browser cannot show.
function pictureName(name, bitmap, landmarks) {
  const found = Object.entries(PART_NAMES)
    .filter(([key]) => landmarks[key])
    .map(([, part]) => part);
  const picture = bitmap ? name : `A blank canvas in place of ${name}, which this browser cannot show,`;
  if (!found.length) return `${picture} with nothing drawn over it: no person was found`;
  return `${picture} with the ${found.join(", ")} found drawn over it`;
}

function render(bitmap, answer, skeleton) {
  const { width, height } = answer.image;
  const sourceWidth = bitmap ? bitmap.width : width;
  const sourceHeight = bitmap ? bitmap.height : height;
  const scale = Math.min(1, MAX_CANVAS_SIDE / Math.max(sourceWidth, sourceHeight));
  canvas.width = Math.max(1, Math.round(sourceWidth * scale));
  canvas.height = Math.max(1, Math.round(sourceHeight * scale));
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (bitmap) {
    ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  } else {
    ctx.fillStyle = "#30343b";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  }
  drawSkeleton(ctx, answer.landmarks, skeleton, canvas.width, canvas.height);
}

// dropped: how many files came with this one; the rest are not tracked, which is said.
async function handleFile(file, dropped = 1) {
  const token = ++current;
  result.hidden = true;
  download = null;
  downloadButton.disabled = true;
  // Before the size: a video is mostly over it too, and "too large" would send the person
  // off to shrink it.
  if (file.type.startsWith("video/")) {
    showStatus(status, `${file.name} ${VIDEO_WORDS}.`, "error");
    return;
  }
  // The server's words name its multipart field, words for scripts; an empty file is most
  // often a download or a copy that did not finish, which only the person can redo.
  if (file.size === 0) {
    showStatus(
      status,
      `${file.name} is empty (0 bytes): nothing was saved in it, as when a download or a copy did not finish. Choose the photo again, or another one.`,
      "error",
    );
    return;
  }
  if (file.size > maxUploadBytes) {
    showStatus(
      status,
      `${file.name} is ${formatBytes(file.size)}; the server accepts at most ${formatBytes(maxUploadBytes)}.`,
      "error",
    );
    return;
  }
  showStatus(status, `Finding the landmarks in ${file.name} (${formatBytes(file.size)})…`, "busy");
  if (!(await readable(file))) {
    if (token !== current) return;
    showStatus(
      status,
      `${file.name} could not be read. A folder cannot be tracked: open it and choose or drop a photo in it. A file moved, renamed or changed since it was chosen has to be chosen again.`,
      "error",
    );
    return;
  }
  const [bitmap, reply, skeleton] = await Promise.all([
    uprightBitmap(file),
    post(file),
    loadSkeleton().catch((error) => error),
  ]);
  if (token !== current) return;
  if (!reply.ok) {
    showStatus(status, reply.message, "error");
    return;
  }
  if (skeleton instanceof Error) {
    showStatus(status, `Could not load the bone tables: ${skeleton.message}`, "error");
    return;
  }
  const { answer } = reply;
  render(bitmap, answer, skeleton);
  canvas.setAttribute("aria-label", pictureName(file.name, bitmap, answer.landmarks));
  const text = prettyJson(answer);
  jsonView.textContent = text;
  download = { name: `${file.name.replace(/\.[^.]*$/, "") || "image"}.landmarks.json`, text };
  downloadButton.disabled = false;
  result.hidden = false;

  const notes = [partsSummary(answer.landmarks)];
  notes.push(`${answer.image.width}×${answer.image.height}`);
  notes.push(answer.cached ? "from the cache" : `inference ${Math.round(answer.timing_ms.inference)} ms`);
  // The summary has said it already.
  for (const warning of answer.warnings) if (warning.code !== "no_person") notes.push(warning.message);
  if (!bitmap) notes.push("this browser cannot display the format, so the skeleton is drawn on a blank canvas");
  if (dropped > 1) {
    // Else the other photos dropped seemed tracked, or lost without a word.
    const others = dropped === 2 ? "the other file dropped with it was" : `the other ${dropped - 1} files dropped with it were`;
    notes.push(`${others} not tracked: this page tracks one photo at a time`);
  }
  const kind = answer.warnings.length || !bitmap || dropped > 1 ? "info" : "ok";
  showStatus(status, `${file.name}: ${notes.join(" · ")}.`, kind);
}

acceptFiles(input, dropZone, handleFile, () => {
  showStatus(
    status,
    "What was dropped is not a file: a picture dragged from a web page comes as its address. Save it first, then drop or choose the file.",
    "error",
  );
});

downloadButton.addEventListener("click", () => {
  if (!download) return;
  saveFile(download.name, new Blob([download.text], { type: "application/json" }));
});

exposeColors();
document.body.dataset.stillReady = "true";
