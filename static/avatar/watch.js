// What a close means to the OBS view (GET /avatar?watch=<token>); the connection itself is
// ../watch.js.

import { CLOSE, describeClose } from "../protocol.js";

// An OBS browser source may wait for hours: retry the same token, gently, but often enough
// that a streamer's Start shows on the stream within seconds (the link is kept: its camera
// comes back). A refused try costs the server one upgrade and one close.
const RETRY_MIN_MS = 3000;
const RETRY_MAX_MS = 10000;
// A connection lost while its session goes on (a network blip: the server stops hearing a
// watcher sooner than its camera, which keeps sending) is taken up again at once.
const LOST_RETRY_MIN_MS = 1000;

// Only 1000 says the session ended; 4003, that the link names none (now). Any other close
// is the connection's, not the session's: a view once said "has ended" after a blip.
function linkGone(code) {
  return code === CLOSE.NORMAL || code === CLOSE.UNKNOWN_WATCH;
}

// The server's reasons for these two only repeat the words, so they are left out.
export function describeWatchClose(code, reason, wasWatching) {
  if (wasWatching && code === CLOSE.NORMAL) return "The session this view watches has ended.";
  if (code === CLOSE.UNKNOWN_WATCH) return "This watch link is not valid, or its session has ended.";
  return describeClose(code, reason, true).text;
}

// The view never gives up: {text, delay} for every close.
export function afterClose({ code, reason, wasWatching, attempt }) {
  const gone = linkGone(code);
  const delay = Math.min(RETRY_MAX_MS, (gone ? RETRY_MIN_MS : LOST_RETRY_MIN_MS) * 2 ** attempt);
  const seconds = Math.round(delay / 1000);
  const next = gone
    ? `Waiting for this link to come back (next try in ${seconds} s): the avatar page brings it back as its camera returns (by itself after a restart of the server, else at its next Start), unless it made a new link.`
    : `Connecting again in ${seconds} s.`;
  return { text: `${describeWatchClose(code, reason, wasWatching)} ${next}`, delay };
}
