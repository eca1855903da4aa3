// A kept watch link (docs/protocol.md, "A kept link"): a secret this browser keeps and
// sends in every hello, from which the server makes the same watch link each time, on
// any day and after it restarts, so an OBS source or the VMC relay is set up once. The
// key is not the link: who has the link can watch, who has the key can be the camera.

import { browserStorage } from "./storage.js";

const STORAGE_PREFIX = "holotrack.linkKey:";
// The server's token of a key is the first 16 bytes of SHA-256(SALT + key), base64url
// (webapp/live/watch.py kept_token): the page knows its link before its first connection.
const SALT = "holotrack kept watch link\0";
const TOKEN_BYTES = 16;
const KEY_BYTES = 32; // 43 characters of base64url
// A link key's form, which a watch token has too (webapp/live/options.is_link_key).
const VALID = /^[A-Za-z0-9_-]{22,64}$/;

// Whether `text` has a link key's or a watch token's form: anything else names no link.
export function hasKeyForm(text) {
  return VALID.test(text);
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function newLinkKey() {
  return base64url(crypto.getRandomValues(new Uint8Array(KEY_BYTES)));
}

// The watch token the server makes of `key`; null where the browser has no SubtleCrypto
// (a page over plain http on another machine, which cannot open a camera either).
export async function keptToken(key) {
  if (!globalThis.crypto?.subtle) return null;
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(SALT + key));
  return base64url(new Uint8Array(digest, 0, TOKEN_BYTES));
}

// Keys handed to this page in its address, #link_key=KEY[&key=ACCESS_KEY] (another page's
// QR code: the phone becomes the camera of that page's link). link: the link key, null for
// one cut short or mangled, undefined when none was handed; access: the access key that
// page used (the link stays with it, under --access-keys), or null. The fragment is wiped
// from the address at once, so no key is bookmarked, shared or seen on a screen later.
export function handedKeys(location = window.location, history = window.history) {
  if (!location.hash.startsWith("#link_key=")) return { link: undefined, access: null };
  const fields = new URLSearchParams(location.hash.slice(1));
  history.replaceState(history.state, "", `${location.pathname}${location.search}`);
  const link = fields.get("link_key") ?? "";
  return { link: VALID.test(link) ? link : null, access: fields.get("key") || null };
}

export class LinkKey {
  // page: whose key (the avatar page's); storage: localStorage, or a stand-in.
  constructor(page, storage = browserStorage()) {
    this.name = STORAGE_PREFIX + page;
    this.storage = storage;
    this.value = this.load() ?? this.renew();
  }

  // The link's watch token, before any session has said it (keptToken).
  token() {
    return keptToken(this.value).catch(() => null);
  }

  load() {
    try {
      const kept = this.storage?.getItem(this.name);
      return VALID.test(kept ?? "") ? kept : null;
    } catch {
      return null;
    }
  }

  // Another key, so another link: the old one ends with the session that holds it.
  renew() {
    return this.adopt(newLinkKey());
  }

  // `key` from now on (a handed one, handedKeys), kept like one made here.
  adopt(key) {
    this.value = key;
    try {
      this.storage?.setItem(this.name, this.value);
    } catch {
      // storage refused (a private window's quota): the link is kept for this page's life
    }
    return this.value;
  }
}
