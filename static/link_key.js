// A kept watch link (docs/protocol.md, "A kept link"): a secret this browser keeps and
// sends in every hello, from which the server makes the same watch link each time, on
// any day and after it restarts, so an OBS source or the VMC relay is set up once. The
// key is not the link: who has the link can watch, who has the key can be the camera.

const STORAGE_PREFIX = "holotrack.linkKey:";
const KEY_BYTES = 32; // 43 characters of base64url
const VALID = /^[A-Za-z0-9_-]{22,64}$/;

function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(KEY_BYTES));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// Even reading window.localStorage throws where storage is blocked (a sandboxed frame).
function browserStorage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}

export class LinkKey {
  // page: whose key (the avatar page's); storage: localStorage, or a stand-in.
  constructor(page, storage = browserStorage()) {
    this.name = STORAGE_PREFIX + page;
    this.storage = storage;
    this.value = this.load() ?? this.renew();
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
    this.value = randomKey();
    try {
      this.storage?.setItem(this.name, this.value);
    } catch {
      // storage refused (a private window's quota): the link is kept for this page's life
    }
    return this.value;
  }
}
