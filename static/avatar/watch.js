// What a close means to the OBS view (GET /avatar?watch=<token>); the connection itself is
// ../watch.js.

import { describeClose } from "../protocol.js";
import { CLOSE_UNKNOWN_TOKEN } from "../watch.js";

// An OBS browser source may wait for hours: retry the same token, gently.
const RETRY_MIN_MS = 3000;
const RETRY_MAX_MS = 30000;

export function describeWatchClose(code, reason, wasWatching) {
  const why = reason ? `: ${reason}` : "";
  if (wasWatching) return `The session this view watches has ended${why} (close ${code}).`;
  if (code === CLOSE_UNKNOWN_TOKEN) return `This watch link is not (or no longer) valid${why} (close ${code}).`;
  return describeClose(code, reason).text;
}

// The view never gives up: {text, delay} for every close.
export function afterClose({ code, reason, wasWatching, attempt }) {
  const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** attempt);
  const text =
    `${describeWatchClose(code, reason, wasWatching)} Waiting for this link to come back ` +
    `(next try in ${Math.round(delay / 1000)} s); for a new session, open its new link from the avatar page.`;
  return { text, delay };
}
