// Pairing codes (README "Phone as the camera"; webapp/live/pairing.py): eight characters a
// person reads off one page and types on a device that cannot scan its QR code. The server
// trades them, once and within ten minutes, for that page's link key (and access key), or
// for a workout's watch token (a coach's view).

import { authHeaders, keyRefusedBy } from "./access.js";

// Neither 0 and O nor 1, I and L: what is read off one screen is typed on another.
const ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const LENGTH = 8;
// The largest multiple of 31 below 256: bytes above it would favour the first letters.
const FAIR_BYTES = 248;
const DRAWS = 3; // codes tried when the server already has one (409)

// Drawn by the page, not the server, so the offer and the claim name the code in their
// paths and reach the same replica behind nginx (deploy/nginx), as a watch token does.
function drawCode() {
  const letters = [];
  while (letters.length < LENGTH) {
    for (const byte of crypto.getRandomValues(new Uint8Array(LENGTH))) {
      if (byte < FAIR_BYTES && letters.length < LENGTH) letters.push(ALPHABET[byte % ALPHABET.length]);
    }
  }
  return letters.join("");
}

// What was typed, as plain letters and digits: a Japanese or Chinese input method left on
// types them full-width (Ｋ７ＱＭ－２ＸＤＡ), which looks like the code and was refused. The
// dashes NFKC leaves (the kana "ー", typographic dashes, minus) go with the plain one.
const typedPlain = (text) => text.normalize("NFKC").toUpperCase().replace(/[\s\-\u2010-\u2015\u2212\u30fc]/g, "");

// The code `text` spells as typed (any case, with spaces or a dash), or null.
export function normalizeCode(text) {
  const code = typedPlain(text);
  return code.length === LENGTH && [...code].every((letter) => ALPHABET.includes(letter)) ? code : null;
}

// Whether `text` reads as a code typed wrong (a letter missed or doubled, a 0 for an O,
// neither of which a code has) rather than as something else: a few letters and digits.
export function looksLikeCode(text) {
  return /^[A-Z0-9]{7,9}$/.test(typedPlain(text));
}

// Two groups of four, easier to read out and to type.
export function shownCode(code) {
  return `${code.slice(0, LENGTH / 2)}-${code.slice(LENGTH / 2)}`;
}

// A request that never reached the server (this device's network down, the server gone)
// rejects with the browser's own words, "Failed to fetch": said so, and what to do.
async function request(url, init) {
  try {
    return await fetch(url, init);
  } catch {
    throw new Error("could not reach the server: check this device’s network connection, then try again");
  }
}

async function refusal(response) {
  const body = await response.json().catch(() => null);
  // The detail ends in words for scripts ("send it as Authorization: Bearer KEY"): a person
  // is pointed at the form, which asks for one.
  if (response.status === 401) return new Error(`${keyRefusedBy(body)}, then ask again`);
  return new Error(body?.detail ?? `the server answered ${response.status}`);
}

// Offers `handed`, { link_key } or { watch }, under `wanted` (a code this page offered
// before), or a new code if that one is taken: { code, expiresIn } (seconds); throws the
// server's reason.
export async function offerCode(handed, wanted = null) {
  for (let draw = 1; ; draw += 1) {
    const code = draw === 1 && wanted ? wanted : drawCode();
    const response = await request(`/api/pair/${code}`, {
      method: "PUT",
      headers: authHeaders({ "Content-Type": "application/json" }),
      body: JSON.stringify(handed),
    });
    if (response.status === 409 && draw < DRAWS) continue;
    if (!response.ok) throw await refusal(response);
    return { code, expiresIn: (await response.json()).expires_in };
  }
}

// Ends `code` before its time; what it hands over proves it is this page's. Nothing to say
// if it fails: the code ends in minutes anyway.
export function withdrawCode(code, handed) {
  const proof = handed.watch ? { "Holotrack-Watch-Token": handed.watch } : { "Holotrack-Link-Key": handed.link_key };
  fetch(`/api/pair/${code}`, {
    method: "DELETE",
    headers: authHeaders(proof),
    keepalive: true,
  }).catch(() => {});
}

// What a typed code hands over: { link, access } (the access key or null), or { watch };
// throws the server's reason (no such code, too many wrong ones).
export async function claimCode(code) {
  const response = await request(`/api/pair/${code}/claim`, { method: "POST" });
  if (!response.ok) throw await refusal(response);
  const body = await response.json();
  return body.watch ? { watch: body.watch } : { link: body.link_key, access: body.key };
}
