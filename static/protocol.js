// Live protocol v1 (docs/protocol.md): the frame header, close codes and what they mean.

export const VERSION = 1;
export const HEADER_BYTES = 12;

export const CLOSE = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  UNSUPPORTED_DATA: 1003,
  ABNORMAL: 1006,
  POLICY: 1008,
  TOO_BIG: 1009,
  INTERNAL: 1011,
  TRY_AGAIN_LATER: 1013,
  IDLE: 4000,
  PROTOCOL: 4001,
  PAUSED: 4002, // the page's own close: its watch link waits for the next session
  UNKNOWN_WATCH: 4003,
  RENEW: 4004, // a session at the server's length limit: reconnect at once, link kept
  UNAUTHORIZED: 4401,
});

// What each close means to the person at the camera, and whether trying again can help.
// `why`: whether the server's reason adds to the words (a reason that only repeats them, or
// is meant for whoever runs the server, is left out); `trim`: its part that repeats them;
// `hint`: what the person can do about it.
const CLOSES = {
  [CLOSE.NORMAL]: { text: "The server ended the session", retry: false, why: true },
  [CLOSE.GOING_AWAY]: { text: "The server is restarting or shutting down", retry: true, why: false },
  [CLOSE.UNSUPPORTED_DATA]: { text: "The server could not read the camera's pictures", retry: false, why: true },
  [CLOSE.ABNORMAL]: { text: "The connection to the server was lost", retry: true, why: false },
  [CLOSE.POLICY]: { text: "The server stopped the session", retry: false, why: true },
  [CLOSE.TOO_BIG]: { text: "A camera picture was too large for the server", retry: false, why: true },
  [CLOSE.INTERNAL]: { text: "The tracker on the server failed", retry: true, why: false },
  // The reasons: "server full: 1 of 1 sessions in use", "full for pose at --min-session-fps 15:
  // ...", a quota, "the server is shutting down", "no inference worker is running".
  [CLOSE.TRY_AGAIN_LATER]: { text: "The server is full or busy", retry: true, minDelayMs: 3000, why: true, trim: /^(server )?full( for \w+ at --[\w-]+ [\d.]+)?:\s*/i },
  [CLOSE.IDLE]: { text: "The server closed the session because no camera pictures arrived", retry: true, why: false },
  [CLOSE.PROTOCOL]: { text: "The server did not understand this page", retry: false, why: true, hint: " Reload the page: the server may have been updated." },
  // The page's own close, not the server's; said should a server ever echo it.
  [CLOSE.PAUSED]: { text: "The session was paused", retry: false, why: false },
  [CLOSE.RENEW]: { text: "The session reached the server's time limit", retry: true, why: false },
  [CLOSE.UNKNOWN_WATCH]: { text: "This watch link is not valid, or its session has ended", retry: false, why: false },
  // The reasons: "the access key was not accepted", or, none sent, "this server needs an
  // access key: send it in the hello..." (words for API clients, which the text says).
  [CLOSE.UNAUTHORIZED]: { text: "The server refused this session: it needs an access key", retry: false, why: true, trim: /^this server needs an access key.*$/ },
};

// An access key's limit (webapp/access/socket.py): 1013 while a wait frees a place, 1008
// for a limit of 0. As "The server is full or busy", it sent people to wait for a server
// that had room, and the operator who could raise the limit went unasked.
const QUOTA = /^quota \w+:\s*/;

// The limit an access key's quota close names ("max_sessions: 2 of 2 in use"), else null.
export function quotaOf(code, reason) {
  if ((code !== CLOSE.TRY_AGAIN_LATER && code !== CLOSE.POLICY) || !QUOTA.test(reason ?? "")) return null;
  return reason.replace(QUOTA, "");
}

// {text, retry, minDelayMs}: text is a sentence in words; the number is said only for a
// close this page has no words for. `watching`: the close is a watcher's, whose quota is
// the watched session's key (a coach, an OBS view have none of their own).
export function describeClose(code, reason, watching = false) {
  const known = CLOSES[code];
  const limit = quotaOf(code, reason);
  if (limit !== null) {
    const whose = watching ? "The access key of the session watched is" : "Your access key is";
    return {
      text: `${whose} at its limit (${limit}).`,
      retry: known.retry,
      minDelayMs: known.minDelayMs ?? 0,
    };
  }
  if (!known) {
    const why = reason ? `: ${reason}` : "";
    // Unknown application codes (4000-4999) are the server's refusals; the rest are transport trouble.
    return { text: `The connection closed unexpectedly (code ${code})${why}.`, retry: code < 4000, minDelayMs: 0 };
  }
  const detail = known.why && reason ? reason.replace(known.trim ?? /^$/, "") : "";
  return {
    text: `${known.text}${detail ? ` (${detail})` : ""}.${known.hint ?? ""}`,
    retry: known.retry,
    minDelayMs: known.minDelayMs ?? 0,
  };
}

// Exponential backoff with a little jitter: 0.5 s, 1 s, 2 s ... up to 15 s.
export function backoffMs(attempt, minDelayMs = 0) {
  const base = Math.min(15000, 500 * 2 ** attempt);
  return Math.max(minDelayMs, Math.round(base * (0.8 + 0.4 * Math.random())));
}

const FRAME_ERRORS = {
  bad_frame: "the server could not decode a frame",
  too_many_pixels: "a frame had more pixels than the server allows",
  model_error: "the model failed on a frame",
  // Raised by this page, not the server.
  too_big: "a frame was too big to send",
  capture: "a frame could not be captured",
};

export function describeError(message) {
  const what = FRAME_ERRORS[message.code] || `error ${message.code}`;
  const seq = message.seq === undefined ? "" : ` (frame ${message.seq})`;
  return `${what[0].toUpperCase()}${what.slice(1)}${seq}: ${message.message}`;
}

// `options`: extra hello fields a page asks for, e.g. the avatar page's {"rig": true,
// "mirror": ..., "smoothing": ...}; the live page sends none.
export function hello(track, fps, options = {}) {
  return JSON.stringify({ type: "hello", version: VERSION, track, fps, ...options });
}

// Where a camera ends its paused session for good (POST {"resume": <its last ready's>}),
// when it has no connection of its own to close with 1000. Over HTTP rather than a new
// WebSocket's `end`: a fetch with keepalive gets out even while the page is unloaded.
export const END_PATH = "/api/end";

// A server message from a WebSocket event's data, or null: the server sends only JSON text,
// so anything else is a proxy's or a stranger's and is passed over rather than thrown.
export function readMessage(data) {
  if (typeof data !== "string") return null;
  try {
    const message = JSON.parse(data);
    return message !== null && typeof message === "object" ? message : null;
  } catch {
    return null;
  }
}

// uint32 seq, float64 capture_ms, little-endian, then the encoded image.
export function encodeFrame(seq, captureMs, image) {
  const bytes = new Uint8Array(HEADER_BYTES + image.byteLength);
  const header = new DataView(bytes.buffer);
  header.setUint32(0, seq >>> 0, true);
  header.setFloat64(4, captureMs, true);
  bytes.set(new Uint8Array(image), HEADER_BYTES);
  return bytes.buffer;
}

// `address` with the watch token of the link it is about, so that a balancer in front of
// several replicas sends a camera, its reconnects, its watchers and its end to the one
// replica that holds the link (deploy/nginx hashes on ?link=); a single server ignores it.
// watcher: the connection only watches the link (a full server must not send it away).
export function routed(address, link, { watcher = false } = {}) {
  if (!link) return address;
  return `${address}?link=${encodeURIComponent(link)}${watcher ? "&watcher=1" : ""}`;
}

export function socketUrl(location = window.location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}
