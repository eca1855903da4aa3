// The coach's view: one card per pasted watch link (or typed pairing code), each fed by its
// own watcher connection.

import { drawSkeleton, loadSkeleton } from "../draw.js";
import { putText, showStatus } from "../format.js";
import { browserStorage } from "../storage.js";
import { claimCode, looksLikeCode, normalizeCode, shownCode } from "../pair_code.js";
import { routed, socketUrl } from "../protocol.js";
import { WatchSocket } from "../watch.js";
import { markExercise } from "./marks.js";
import { CoachTabs } from "./coach_tabs.js";
import { afterClose, awaitedAfter, isToken, tokenOf } from "./watcher.js";
import { loadExercises, phaseText, repsOfTarget, repsWord, sidesText, titleOf } from "./words.js";

const $ = (id) => document.getElementById(id);
const form = $("coach-form");
const input = $("coach-links");
const addButton = $("coach-add");
const cards = $("coach-cards");
const empty = $("coach-empty");
const status = $("coach-status");

// A card with no result for this long says so, instead of "Live." over old figures.
const QUIET_MS = 5000;
// Each card's figure: the pose alone (form is the body's; no face mesh on a coach's screen),
// as the camera sees the person, at least this wide in canvas pixels; drawn as wide as it
// shows (a card alone fills a big screen), up to the most.
const FIGURE_WIDTH = 240;
const FIGURE_MOST = 1600;

let skeleton = null; // the bone tables, once loaded; without them the cards have no figure

// Each figure's width on screen, in CSS pixels, as a ResizeObserver reports it: reading it
// in every result's draw would force a layout per card and frame.
const shownWidth = new WeakMap();
// Each figure's card and the result it shows, drawn again at its new size: the first
// result is drawn before the figure is laid out, and a person holding still, or the
// session's last result, sends no other to draw it larger.
const shown = new WeakMap();
const resized = new ResizeObserver((entries) => {
  for (const entry of entries) {
    const before = shownWidth.get(entry.target);
    shownWidth.set(entry.target, entry.contentRect.width);
    const drawn = shown.get(entry.target);
    if (drawn && before !== entry.contentRect.width) drawFigure(drawn.card, drawn.message);
  }
});

let exercises = [];
const watched = new Map(); // token -> {card, watcher, lastResult}
let made = 0; // cards made, for their own element ids

// The cards' tokens, kept in this browser until each card's Remove: a coach who reloads the
// page, or opens it tomorrow for the same class, had to paste every link again.
const KEPT = "holotrack.coach.cards";
// The newest this many: each card is a connection, and the server lets one address hold 16
// (--max-sessions-per-client), its own pages' among them. Kept without end, yesterday's
// cards and today's reconnected at once on load, and those past the limit gave up for good.
const KEPT_MOST = 12;

function keptTokens() {
  try {
    const kept = JSON.parse(browserStorage()?.getItem(KEPT) ?? "[]");
    const tokens = Array.isArray(kept) ? kept.filter((token) => typeof token === "string" && isToken(token)) : [];
    return tokens.slice(-KEPT_MOST);
  } catch {
    return []; // written by something else, or cut short: no cards
  }
}

// Read again each time: the same page in another tab may have kept other cards since.
function keepTokens(change) {
  try {
    browserStorage()?.setItem(KEPT, JSON.stringify(change(keptTokens())));
  } catch {
    // Storage full or refused: the cards hold for this visit.
  }
}

function field(card, name) {
  return card.querySelector(`[data-field="${name}"]`);
}

function newCard(token) {
  const card = document.createElement("article");
  card.className = "coach-card";
  card.dataset.token = token;
  card.dataset.state = "connecting";
  card.innerHTML = `
    <h3 data-field="title"></h3>
    <button type="button" class="remove">Remove</button>
    <p><span data-field="exercise">–</span></p>
    <p class="card-reps" aria-live="polite" aria-atomic="true"><span data-field="reps">0</span> <span class="rep-unit">reps</span></p>
    <p class="card-sides" data-field="sides"></p>
    <p>Phase: <strong data-field="phase">–</strong></p>
    <p class="card-cue" data-field="cue"></p>
    <canvas class="card-figure" data-field="figure" width="${FIGURE_WIDTH}" height="${FIGURE_WIDTH}" aria-label="Their pose, as their camera sees it" hidden></canvas>
    <p class="card-sets" data-field="sets" hidden></p>
    <p class="status" role="status" data-field="status" data-kind="busy"></p>`;
  field(card, "title").textContent = `Link …${token.slice(-6)}`;
  showStatus(field(card, "status"), "Connecting…", "busy");
  // Each Remove button is named with its card's title ("Remove Session s3"): a screen
  // reader's list of buttons read "Remove, Remove, Remove", saying not whose.
  made += 1;
  const removeButton = card.querySelector(".remove");
  field(card, "title").id = `card-title-${made}`;
  removeButton.id = `card-remove-${made}`;
  removeButton.setAttribute("aria-labelledby", `card-remove-${made} card-title-${made}`);
  removeButton.addEventListener("click", () => remove(token));
  resized.observe(field(card, "figure"));
  return card;
}

function showResult(card, fitness) {
  if (!fitness) {
    field(card, "exercise").textContent = "No exercise chosen in this session";
    return;
  }
  const cue = field(card, "cue");
  if (card.dataset.exercise !== fitness.exercise) {
    // Another exercise: the last one's cue ("Last cue: Keep your body in one straight
    // line" under a squat) is about nothing the coach now sees.
    cue.textContent = "";
    cue.dataset.fresh = "false";
    delete card.dataset.cue;
  }
  card.dataset.exercise = fitness.exercise;
  card.dataset.reps = String(fitness.reps);
  card.dataset.phase = fitness.phase;
  field(card, "exercise").textContent = titleOf(exercises, fitness.exercise);
  const target = Number.isInteger(fitness.target) ? fitness.target : null;
  card.dataset.target = String(target ?? "");
  // Each side's count goes on a line of its own: in the big figure, "5 (left 3 · right 2)
  // of 12" would not fit a card on one line at a size read from across the room.
  const count = repsOfTarget(fitness.reps, null, target);
  putText(field(card, "reps"), count);
  field(card, "sides").textContent = sidesText(fitness.sides);
  fitCount(card, count);
  putText(card.querySelector(".rep-unit"), repsWord(target ?? fitness.reps));
  field(card, "phase").textContent = phaseText(fitness.phase);
  if (fitness.cues?.length) {
    cue.textContent = fitness.cues[0].message;
    cue.dataset.fresh = "true";
    card.dataset.cue = fitness.cues[0].code;
  } else if (cue.dataset.fresh === "true") {
    cue.textContent = `Last cue: ${cue.textContent}`;
    cue.dataset.fresh = "false";
  }
}

// The count's width in em, for fitness.css to size it to the card (.card-reps): digits at
// 0.7 em (DejaVu Sans Bold's 0.696, the widest of the usual sans fonts), " of " at 1.85 em,
// and the space before "reps". Worked out, not measured: measuring the text would force a
// layout per card and result.
function fitCount(card, count) {
  const digits = count.replace(/\D/g, "").length;
  const em = 0.7 * digits + (count.includes(" of ") ? 1.85 : 0) + 0.35;
  card.querySelector(".card-reps").style.setProperty("--count-em", em.toFixed(2));
}

function drawFigure(card, message) {
  const canvas = field(card, "figure");
  const pose = message.landmarks?.pose;
  if (!skeleton || !pose) return;
  const { width, height } = message.image ?? {};
  const wide = Math.round((shownWidth.get(canvas) ?? 0) * devicePixelRatio);
  const across = Math.min(FIGURE_MOST, Math.max(FIGURE_WIDTH, wide));
  const fitted = width > 0 && height > 0 ? Math.round((across * height) / width) : canvas.height;
  if (canvas.width !== across) canvas.width = across;
  if (canvas.height !== fitted) canvas.height = fitted;
  canvas.hidden = false;
  shown.set(canvas, { card, message });
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  drawSkeleton(ctx, { pose }, skeleton, canvas.width, canvas.height);
  markExercise(canvas, { pose }, message.fitness, exercises);
}

// A card opened while its person is paused (a reload, a locked phone) gets the workout
// but no result until they are back: its big count read "0 reps" under "–" meanwhile,
// though the sets line said 6. The set being counted stands in for the result.
function showCurrentSet(card, workout) {
  const set = Array.isArray(workout.sets) ? workout.sets.at(-1) : null;
  if (typeof set?.exercise !== "string" || !Number.isInteger(set.reps)) return;
  showResult(card, { exercise: set.exercise, reps: set.reps, target: set.target, sides: set.sides, phase: "" });
}

// A card no longer watching has no phase, and its cue is one that was: under "This
// session has ended." it read "Phase: Down" and the cue in red, as if still counting.
function settle(card) {
  field(card, "phase").textContent = phaseText(null);
  card.dataset.phase = "";
  const cue = field(card, "cue");
  if (cue.dataset.fresh === "true") {
    cue.textContent = `Last cue: ${cue.textContent}`;
    cue.dataset.fresh = "false";
  }
}

// "Sets: Push-up 6 · Squat 3 (now) · 9 reps in all" (1 rep), from the session's workout.
// A card no longer watching (its session ended) has no set going on now.
function showSets(card, workout, ongoing = true) {
  const sets = Array.isArray(workout.sets) ? workout.sets : [];
  const line = field(card, "sets");
  line.hidden = sets.length === 0;
  card.dataset.sets = String(sets.length);
  const done = sets.map(
    (s, i) => `${titleOf(exercises, s.exercise)} ${repsOfTarget(s.reps, null, s.target)}${ongoing && i === sets.length - 1 ? " (now)" : ""}`,
  );
  const total = workout.total_reps ?? 0;
  line.textContent = `Sets: ${done.join(" · ")} · ${total} ${repsWord(total)} in all`;
}

// false when the token's card is already watching, or still trying to. A card that has
// given up (its session's link pasted again once the network is back) is tried again in
// its place.
function watch(token) {
  const shown = watched.get(token);
  if (shown && !shown.over) return false;
  const card = newCard(token);
  if (shown) {
    shown.card.before(card);
    remove(token, false);
  } else {
    cards.append(card);
  }
  const setState = (state, text) => {
    card.dataset.state = state;
    showStatus(field(card, "status"), text, state === "ended" ? "info" : "error");
  };
  const watcher = new WatchSocket({
    url: routed(socketUrl(), token, { watcher: true }),
    token,
    bye: "the coach closed the card",
    handlers: {
      watching: (message) => {
        card.dataset.state = "watching";
        entry.lastResult = null;
        entry.watchedSince = performance.now();
        card.dataset.session = message.session;
        field(card, "title").textContent = `Session ${message.session}`;
        showStatus(field(card, "status"), "Live: waiting for the next frame…", "ok");
      },
      result: (message) => {
        if (card.dataset.state !== "watching") return;
        entry.lastResult = performance.now();
        // Said once as results come back, not again with each of them.
        const status = field(card, "status");
        if (status.textContent !== "Live." || status.dataset.kind !== "ok") showStatus(status, "Live.", "ok");
        showResult(card, message.fitness);
        drawFigure(card, message);
      },
      workout: (message) => {
        entry.workout = message;
        showSets(card, message);
        if (entry.lastResult === null) showCurrentSet(card, message);
      },
      unopened: (text) => {
        entry.over = true;
        setState("refused", text);
      },
      closed: (close) => {
        // A server stopped (1001) or killed (1006, as a lost network), or a person whose
        // network was gone past the grace, comes back with the person's page on the same link.
        if (close.wasWatching) entry.awaiting = awaitedAfter(close);
        const next = afterClose({ ...close, awaiting: entry.awaiting });
        entry.over = next.delay === null;
        setState(next.state, next.text);
        if (entry.over && entry.workout) showSets(card, entry.workout, false);
        if (entry.over) settle(card);
        return next.delay;
      },
    },
  });
  // awaiting: what the card waits for since it last watched (awaitedAfter in watcher.js).
  // watchedSince: when its last "watching" came, for the silence before any result.
  // workout: the last the session sent, for its sets line once the card is over.
  const entry = { card, watcher, lastResult: null, watchedSince: null, over: false, awaiting: null, workout: null };
  watched.set(token, entry);
  keepTokens((tokens) => (tokens.includes(token) ? tokens : [...tokens, token].slice(-KEPT_MOST)));
  watcher.start();
  empty.hidden = true;
  return true;
}

// forget: the coach's Remove; a card replaced by its own link pasted again stays kept.
function remove(token, forget = true) {
  const entry = watched.get(token);
  if (!entry) return;
  if (forget) keepTokens((tokens) => tokens.filter((t) => t !== token));
  entry.watcher.stop();
  resized.unobserve(field(entry.card, "figure"));
  // The keyboard stays among the cards (the next one's Remove, else the one before's,
  // else the links box): with the card it was in gone, it went back to the page's top.
  if (entry.card.contains(document.activeElement)) {
    const near = entry.card.nextElementSibling ?? entry.card.previousElementSibling;
    (near?.querySelector(".remove") ?? input).focus();
  }
  entry.card.remove();
  watched.delete(token);
  empty.hidden = watched.size > 0;
}

// A pasted link or token adds its card; a typed pairing code (the fitness page's "code to
// type", pair_code.js) is traded for its token first. A whole entry may be one code typed
// with a space in it ("K7QM 2XDA"). Returns the tokens, the pieces that name none, the
// codes the server refused (kept in the box to be mended) and what it said of each code
// that added no card.
async function tokensOf(text) {
  const pieces = normalizeCode(text) || looksLikeCode(text) ? [text] : text.split(/\s+/).filter(Boolean);
  const found = { tokens: [], unread: [], refused: [], said: [] };
  for (const piece of pieces) {
    const code = normalizeCode(piece);
    if (code === null) {
      const token = tokenOf(piece);
      if (token !== null) {
        found.tokens.push(token);
      } else if (looksLikeCode(piece)) {
        // A letter missed or one too many read "No watch token in: K7QM-2XD.", and one
        // typed with a space was split in two lines in the box.
        found.refused.push(piece);
        found.said.push(`${piece}: a code is 8 letters and digits, with no 0, O, 1, I or L, as their page shows it (like K7QM-2XDA).`);
      } else {
        found.unread.push(piece);
      }
      continue;
    }
    try {
      const handed = await claimCode(code);
      if (handed.watch) found.tokens.push(handed.watch);
      // Used up by this claim: the avatar page that made it makes another.
      else found.said.push(`${shownCode(code)} was an avatar page’s code, for a camera: type it on the avatar page, after asking that page for another.`);
    } catch (error) {
      found.refused.push(piece);
      found.said.push(`${shownCode(code)}: ${error.message}.`);
    }
  }
  return found;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text) {
    showStatus(status, "Paste at least one watch link, or type a code.", "error");
    return;
  }
  addButton.disabled = true;
  const { tokens, unread, refused, said } = await tokensOf(text);
  addButton.disabled = false;
  const added = tokens.filter((token) => watch(token)).length;
  const words = [`Added ${added} session${added === 1 ? "" : "s"}.`];
  const already = new Set(tokens).size - added;
  if (already) words.push(`${already} ${already === 1 ? "was" : "were"} shown already.`);
  if (unread.length) words.push(`No watch token in: ${unread.join(" ")}.`);
  words.push(...said);
  showStatus(status, words.join(" "), unread.length || said.length ? "error" : "ok");
  input.value = [...unread, ...refused].join("\n");
});
// Silence is news from the last result, or from "watching" when none has come: a card
// opened while its person was paused said "Live: waiting for the next frame…" for the
// whole pause.
setInterval(() => {
  const now = performance.now();
  for (const { card, lastResult, watchedSince } of watched.values()) {
    const since = lastResult ?? watchedSince;
    if (card.dataset.state !== "watching" || since === null || now - since < QUIET_MS) continue;
    const seconds = Math.round((now - since) / 1000);
    showStatus(field(card, "status"), `No news for ${seconds} s: they may have paused, or a network is slow.`, "busy", { ticking: true });
  }
}, 1000);

window.addEventListener("pagehide", () => {
  for (const { watcher } of watched.values()) watcher.stop();
});

const problems = [];
try {
  exercises = await loadExercises();
} catch (error) {
  problems.push(`Cannot load the exercises' names from the server (${error.message}); cards show their short names.`);
}
try {
  skeleton = await loadSkeleton();
} catch (error) {
  problems.push(`Cannot load the bone tables from the server (${error.message}); cards show no figure.`);
}
if (problems.length) showStatus(status, problems.join(" "), "error");
// The cards kept from before, then /coach?watch=A&watch=B's, which open at once; or, with
// the coach's view open in another tab, there.
function watchHere(linked) {
  elsewhere.hidden = true;
  empty.hidden = watched.size > 0;
  for (const token of keptTokens()) watch(token);
  for (const token of linked) watch(token);
  tabs.serve((tokens) => {
    const added = tokens.filter((token) => isToken(token) && watch(token));
    if (added.length) showStatus(status, `Added ${added.length} ${added.length === 1 ? "session" : "sessions"} from a link opened in another tab.`, "ok");
  });
}

const linked = [];
for (const token of new URLSearchParams(window.location.search).getAll("watch")) {
  if (isToken(token)) linked.push(token);
  else showStatus(status, "This page's address holds a watch token that is not one: paste the whole link from the person's page.", "error");
}
const tabs = new CoachTabs();
const elsewhere = $("coach-elsewhere");
if (await tabs.handOver(linked)) {
  const what = linked.length ? "this link's card was added there" : "its cards are there";
  $("coach-elsewhere-words").textContent = `The coach's view is open in another tab of this browser: ${what}. Watching here too opens every card twice, each taking one of the places the server keeps for watchers.`;
  elsewhere.hidden = false;
  empty.hidden = true;
  $("coach-here").addEventListener("click", () => watchHere(linked), { once: true });
} else {
  watchHere(linked);
}
document.body.dataset.coachReady = "true";
