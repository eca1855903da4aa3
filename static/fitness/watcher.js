// What a close means to a coach's card, and which token a pasted link names; the connection
// itself is ../watch.js.

import { hasKeyForm } from "../link_key.js";
import { backoffMs, CLOSE, describeClose } from "../protocol.js";

const MAX_ATTEMPTS = 5;
// After a server restart the link is unknown until the person's page reconnects, which it
// does by itself, with backoff: the card keeps asking for about two minutes. So it does
// when the server let go of the session after a lost connection: the person's page, its
// network back, opens the same link again (the workout's key makes the same token).
const AWAITED_ATTEMPTS = 16;
const AWAITED_MAX_DELAY_MS = 10000;
const AWAITING = {
  server: "The connection to the server was lost, or it restarted: waiting for this session to come back.",
  person: "Their connection was lost for longer than the server keeps a session: waiting for their page to come back on this link.",
};
// The server's words when a session's grace ran out, or it was let go of early as too many
// waited (docs/protocol.md). Not after a pause:
// a fitness page back from one that long opens a new link.
const GRACE_RAN_OUT = /^the watched session ended: its camera was not back /;
const PAUSED = /\(its camera paused\)/;

// What a card waits for after a close that ended its watching: "server" (gone away),
// "person" (their connection lost past the grace) or null (the session is over).
export function awaitedAfter({ code, reason }) {
  if ([CLOSE.GOING_AWAY, CLOSE.ABNORMAL].includes(code)) return "server";
  if (code === CLOSE.NORMAL && GRACE_RAN_OUT.test(reason) && !PAUSED.test(reason)) return "person";
  return null;
}

// What a close means for a watcher: {state, text, retry}. state: "ended" (the session is
// over), "invalid" (no such session), "lost" (trying again may help) or "refused".
// The server's reasons for an invalid link and an ended session only repeat the words.
// awaiting: what the card waits for since it last watched (awaitedAfter), or null.
function watchClose(code, reason, wasWatching, awaiting = null) {
  if (code === CLOSE.UNKNOWN_WATCH) {
    if (awaiting) return { state: "lost", text: AWAITING[awaiting], retry: true };
    return { state: "invalid", text: "This link is not valid, or its session had already ended.", retry: false };
  }
  if (wasWatching && (code === CLOSE.GOING_AWAY || (code === CLOSE.NORMAL && awaiting))) {
    return { state: "lost", text: AWAITING[awaiting ?? "server"], retry: true };
  }
  if (wasWatching && code === CLOSE.NORMAL) {
    return { state: "ended", text: "This session has ended.", retry: false };
  }
  const close = describeClose(code, reason, true);
  return { state: close.retry ? "lost" : "refused", text: close.text, retry: close.retry };
}

// A card's status after a close, {state, text, delay}; delay is null once the card gives up.
export function afterClose({ code, reason, wasWatching, attempt, awaiting = null }) {
  const close = watchClose(code, reason, wasWatching, awaiting);
  if (awaiting && close.retry) {
    if (attempt >= AWAITED_ATTEMPTS) {
      return { state: "lost", text: "The session did not come back within two minutes. Paste its link again to look for it again.", delay: null };
    }
    const delay = Math.min(AWAITED_MAX_DELAY_MS, backoffMs(attempt, 2000));
    return { state: "lost", text: `${close.text} Trying again in ${(delay / 1000).toFixed(1)} s…`, delay };
  }
  if (!close.retry || attempt >= MAX_ATTEMPTS) {
    const text = close.retry ? `${close.text} Gave up after ${MAX_ATTEMPTS} attempts.` : close.text;
    return { state: close.state, text, delay: null };
  }
  const delay = backoffMs(attempt, code === CLOSE.TRY_AGAIN_LATER ? 3000 : 0);
  return { state: "lost", text: `${close.text} Trying again in ${(delay / 1000).toFixed(1)} s…`, delay };
}

// Anything without a watch token's form was a card that could only ever say "not valid":
// "hello world" pasted made two, and the status said it added them.
export const isToken = hasKeyForm;

// A pasted watch link (…/coach?watch=T or …/avatar?watch=T) or a bare token -> the token,
// or null for text that names none.
export function tokenOf(text) {
  const piece = text.trim();
  if (!piece) return null;
  let token = piece;
  if (piece.includes("watch=")) {
    try {
      token = new URL(piece, window.location.href).searchParams.get("watch") ?? "";
    } catch {
      token = new URLSearchParams(piece.slice(piece.indexOf("watch="))).get("watch") ?? "";
    }
  }
  return isToken(token) ? token : null;
}
