// A button that disables itself when pressed (Start, Stop) took the keyboard's focus with
// it to the page's body: a screen reader lost its place, and Tab began again from the top.

// Sets the buttons' disabled states; the focus moves from one that lost it to the first
// of `arriving` that can take it.
export function swapEnabled(states, arriving) {
  const before = document.activeElement;
  for (const [button, disabled] of states) button.disabled = disabled;
  if (before instanceof HTMLElement && before.disabled) {
    arriving.find((button) => !button.disabled)?.focus();
  }
}
