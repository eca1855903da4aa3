// The last .vrm the user chose, kept in this browser's IndexedDB so the next visit shows it
// again. One record: the file's bytes, name and type. Nothing here sends it anywhere.
// IndexedDB, not localStorage: a .vrm is megabytes of binary, past localStorage's few MB of
// strings.

const DATABASE = "holotrack-avatar";
const STORE = "avatar";
const KEY = "last";

export class KeptAvatarError extends Error {}

function opened() {
  return new Promise((resolve, reject) => {
    // Private windows of some browsers have no indexedDB at all, or throw on open.
    const request = globalThis.indexedDB.open(DATABASE, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

// One transaction on the store; resolves with `use`'s request's result once it commits, so
// a write that fails late (quota) rejects instead of passing as kept.
async function withStore(mode, use) {
  const database = await opened();
  try {
    return await new Promise((resolve, reject) => {
      const transaction = database.transaction(STORE, mode);
      const request = use(transaction.objectStore(STORE));
      transaction.oncomplete = () => resolve(request.result);
      transaction.onerror = () => reject(transaction.error ?? request.error);
      transaction.onabort = () => reject(transaction.error ?? new Error("the browser gave up storing it"));
    });
  } finally {
    database.close();
  }
}

// The kept file, or null when there is none. A record that is not what keep() writes is a
// KeptAvatarError: the caller forgets it like a file that no longer loads.
export async function keptAvatar() {
  const record = await withStore("readonly", (store) => store.get(KEY));
  if (record === undefined) return null;
  if (!(record?.bytes instanceof ArrayBuffer) || typeof record.name !== "string") {
    throw new KeptAvatarError("what this browser kept is not a file");
  }
  return new File([record.bytes], record.name, { type: typeof record.type === "string" ? record.type : "" });
}

// Bytes, not the File itself: every browser stores an ArrayBuffer by value, where Blobs in
// IndexedDB have been refused by some browsers' private windows.
export async function keepAvatar(file) {
  const bytes = await file.arrayBuffer();
  await withStore("readwrite", (store) => store.put({ bytes, name: file.name, type: file.type }, KEY));
}

export async function forgetKeptAvatar() {
  await withStore("readwrite", (store) => store.delete(KEY));
}
