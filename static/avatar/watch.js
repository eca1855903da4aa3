// What a close means to the OBS view (GET /avatar?watch=<token>); the connection itself is
// ../watch.js.

import { CLOSE, describeClose } from "../protocol.js";

// An OBS browser source may wait for hours: retry the same token, gently, but often enough
// that a streamer's Start shows on the stream within seconds (the link is kept: its camera
// comes back). A refused try costs the server one upgrade and one close.
const RETRY_MIN_MS = 3000;
const RETRY_MAX_MS = 10000;

// The server's reasons for these two only repeat the words, so they are left out.
export function describeWatchClose(code, reason, wasWatching) {
  if (wasWatching) return "The session this view watches has ended.";
  if (code === CLOSE.UNKNOWN_WATCH) return "This watch link is not valid, or its session has ended.";
  return describeClose(code, reason).text;
}

// The view never gives up: {text, delay} for every close.
export function afterClose({ code, reason, wasWatching, attempt }) {
  const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** attempt);
  const text =
    `${describeWatchClose(code, reason, wasWatching)} Waiting for this link to come back ` +
    `(next try in ${Math.round(delay / 1000)} s): the avatar page's next Start brings it back, unless it made a new link.`;
  return { text, delay };
}
