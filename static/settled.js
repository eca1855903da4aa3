// A control whose change starts a new session, acted on once the keyboard is done with it.
// An arrow key on a slider, a closed select or a radio group picks the next value and fires
// "change" at once, at every press: four presses started four sessions, each read out as
// "Connecting…" and a gap in tracking (and in the avatar, the OBS view and VMC). A pointer's
// pick is acted on at once.

// How long a control moved by the keyboard waits for the next key.
export const KEYS_SETTLE_MS = 700;

// Calls `handler` on the controls' settled change; returns what drops a change still
// settling, for a session started meanwhile with the controls as they are now.
export function onSettledChange(controls, handler, ms = KEYS_SETTLE_MS) {
  let keyed = false;
  let settling;
  for (const control of controls) {
    control.addEventListener("keydown", () => (keyed = true));
    control.addEventListener("pointerdown", () => (keyed = false));
    control.addEventListener("change", () => {
      clearTimeout(settling);
      if (keyed) settling = setTimeout(handler, ms);
      else handler();
    });
  }
  return () => clearTimeout(settling);
}

// Calls `handler` once typing in `input` has stopped for `ms`, or at once when the box is
// left (its "change"): a number typed is one value, not one per key.
export function onSettledInput(input, handler, ms = KEYS_SETTLE_MS) {
  let settling;
  input.addEventListener("input", () => {
    clearTimeout(settling);
    settling = setTimeout(handler, ms);
  });
  input.addEventListener("change", () => {
    clearTimeout(settling);
    handler();
  });
}
