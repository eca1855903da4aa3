// The browser's localStorage, or null where it is blocked: even reading
// window.localStorage throws there (a sandboxed frame).
export function browserStorage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}
