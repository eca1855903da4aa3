// Access keys (README "Access keys"): whether this server needs one, the key kept in this
// browser's storage, and a small form that asks for it. A page that opens a camera session
// or uploads imports this module; watch links need no key and never show the form.

const STORAGE = "holotrack.accessKey";

function storedKey() {
  try {
    return localStorage.getItem(STORAGE) || "";
  } catch {
    return ""; // storage refused (private mode, a sandboxed frame): ask each time
  }
}

function keep(key) {
  try {
    if (key) localStorage.setItem(STORAGE, key);
    else localStorage.removeItem(STORAGE);
  } catch {
    // nothing to keep it in: it lives as long as the page
  }
  memory = key;
}

let memory = storedKey();

// A key handed over by another page of this person's (the avatar page's QR code or its
// pairing code), kept as one typed in the form would be. The form asking for one goes:
// a code typed after the page had asked still read "This server needs an access key".
export function adoptKey(key) {
  keep(key);
  if (form && !form.hidden) {
    form.hidden = true;
    document.body.dataset.accessKey = "handed";
  }
}

export function currentKey() {
  return storedKey() || memory;
}

// Headers for fetch(): Authorization when a key is kept.
export function authHeaders(headers = {}) {
  const key = currentKey();
  return key ? { ...headers, Authorization: `Bearer ${key}` } : headers;
}

// Extra hello fields for GET /ws.
export function helloKey() {
  const key = currentKey();
  return key ? { key } : {};
}

async function askServer(key) {
  const headers = key ? { Authorization: `Bearer ${key}` } : {};
  const response = await fetch("/api/access", { headers });
  if (!response.ok) throw new Error(`GET /api/access answered ${response.status}`);
  return response.json();
}

let form = null;
let accepted = ""; // the name of the key the form last accepted

function field(name) {
  return form.querySelector(`[data-access="${name}"]`);
}

function say(text, kind) {
  const status = field("status");
  status.textContent = text;
  status.dataset.kind = kind;
  status.hidden = text === "";
}

function buildForm() {
  form = document.createElement("form");
  form.className = "card access-key";
  form.id = "access-form";
  form.setAttribute("aria-labelledby", "access-heading");
  form.innerHTML = `
    <h2 id="access-heading">Access key</h2>
    <p>This server needs an access key. Ask whoever runs it for one; this browser keeps it.</p>
    <div class="access-row">
      <label>Key <input type="password" id="access-key" data-access="key" autocomplete="off" spellcheck="false" required></label>
      <button type="submit" class="primary">Use this key</button>
      <button type="button" data-access="forget">Forget the key</button>
    </div>
    <p class="status" data-access="status" role="alert" hidden></p>`;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    tryKey(field("key").value.trim());
  });
  field("forget").addEventListener("click", () => {
    keep("");
    field("key").value = "";
    say("The key is forgotten.", "info");
  });
  const main = document.querySelector("main") ?? document.body;
  main.prepend(form);
}

// Keys are visible ASCII (README "Access keys"). Anything else cannot go in a header: a
// zero-width space pasted along from a chat read as fetch's "non ISO-8859-1 code point".
const KEY_CHARACTERS = /^[!-~]+$/;

async function tryKey(key) {
  if (!key) return;
  if (!KEY_CHARACTERS.test(key)) {
    say("This key has a character no access key has (keys are letters, digits and signs such as - _ .), perhaps an invisible one pasted along with it. Type or paste it again.", "error");
    return;
  }
  say("Checking the key…", "busy");
  let answer;
  try {
    answer = await askServer(key);
  } catch (error) {
    say(`Could not check the key: ${error.message}.`, "error");
    return;
  }
  if (!answer.key) {
    say("The server refused this key: it is not one of its keys. Check it and try again.", "error");
    return;
  }
  keep(key);
  accepted = answer.key.name;
  field("key").value = "";
  say(`Key accepted (${accepted}). Press Start again, or upload again.`, "ok");
  document.body.dataset.accessKey = "accepted";
}

// Shows the form with why; `why` is the server's reason (a close reason or an HTTP detail).
function askForKey(why = "") {
  if (!form) buildForm();
  form.hidden = false;
  document.body.dataset.accessKey = "asked";
  if (why) say(why, "error");
  field("key").focus();
}

// A session closed with 4401 or a request answered 401.
export function keyRefused(reason) {
  const kept = currentKey();
  // Without a kept key none was sent: the server's words for that are meant for scripts.
  const words = kept
    ? `The server refused the access key kept in this browser (${reason}). Enter another.`
    : "This server needs an access key.";
  askForKey(words);
}

// A session or upload refused for the key's quota (`limit`: the server's words for it). "Key
// accepted. Press Start again" stood on beside the refusal, as if starting again would do.
export function keyAtLimit(limit) {
  if (!form || form.hidden || document.body.dataset.accessKey !== "accepted") return;
  say(`Key accepted (${accepted}), but it is at its limit: ${limit}.`, "error");
  document.body.dataset.accessKey = "limited";
}

// A 401's answer (its JSON body, or null) in a person's words, the form shown with why: the
// server's detail ends in words for scripts ("send it as Authorization: Bearer KEY"), which
// a held expression's and an OBS avatar's refusals showed as they were.
export function keyRefusedBy(body) {
  const wrong = body?.reason === "wrong_key";
  keyRefused(wrong ? "it was not accepted" : "no key");
  return wrong
    ? "the server refused the access key kept in this browser: enter another above"
    : "this server needs an access key: enter it above";
}

// At load: ask now, rather than after the first refusal, when a key is needed and none is
// kept or the kept one no longer works.
async function checkAtLoad() {
  const asked = currentKey();
  let answer;
  try {
    answer = await askServer(asked);
  } catch {
    return; // an older server without /api/access: refusals will say what is needed
  }
  // A key handed over meanwhile (the avatar page's, from a scanned code): ask about that one.
  if (currentKey() !== asked) return checkAtLoad();
  if (!answer.keys_required) return;
  if (!currentKey()) askForKey("");
  else if (!answer.key) keyRefused("it is no longer accepted");
}

// A page that only watches (the coach's view, whose pairing codes import this module through
// pair_code.js) needs no key, and says so on its <body data-keyless>: the coach's view asked
// a coach for an access key that watching needs none of.
if (!document.body?.hasAttribute("data-keyless")) checkAtLoad();
