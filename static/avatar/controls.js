// The page's controls as plain values, and the hello options they make (protocol issue 12):
// {"rig": true, "mirror": bool, "smoothing": {"min_cutoff": Hz, "beta": float} | "off",
//  "blendshapes": true when asked for, "vmc": [{"host", "port"}...] when receivers are named}.
// The controls are kept in this browser (../kept_inputs.js): the next visit starts as this
// one was left.

import { keepInputs } from "../kept_inputs.js";
import { onSettledChange } from "../settled.js";

// The slider runs 0 (snappy) to 10 (smooth) along a log scale between these One Euro
// filter settings (webapp/analysis/smoothing.py: min_cutoff in Hz, beta per body-part size
// per second): a high cutoff and beta follow quickly and jitter, low ones are calm and lag.
// Its middle, 5, is the server's default today (0.02 Hz, beta 3, from bench/avatar_quality.py);
// min_speed is left out, so the server's default floor applies at every position.
const SNAPPY = Object.freeze({ min_cutoff: 0.4, beta: 10 });
const SMOOTH = Object.freeze({ min_cutoff: 0.001, beta: 0.9 });
const STEPS = 10;

function logLerp(a, b, t) {
  return a * (b / a) ** t;
}

function smoothingFor(position) {
  const t = Math.min(1, Math.max(0, position / STEPS));
  // Three significant digits: the hello stays readable and the server's logs too.
  const round = (x) => Number(x.toPrecision(3));
  return {
    min_cutoff: round(logLerp(SNAPPY.min_cutoff, SMOOTH.min_cutoff, t)),
    beta: round(logLerp(SNAPPY.beta, SMOOTH.beta, t)),
  };
}

// "HOST:PORT, HOST:PORT" as the hello's receivers; the server judges each against its
// --vmc-allow and closes the session with the reason when one is not there. A receiver the
// server could not even read would end the session over a typo: problem says what is wrong
// with the first such one instead, and then there are no targets. NFKC: a Japanese or
// Chinese input method left on types an address full-width (１９２．１６８．１．３０：３９５３９),
// whose colon no port followed and whose digits the server knew no host by.
function vmcTargets(text) {
  const targets = [];
  for (const item of text.normalize("NFKC").split(",").map((part) => part.trim()).filter(Boolean)) {
    const at = item.lastIndexOf(":");
    const host = at > 0 ? item.slice(0, at).replace(/^\[|\]$/g, "") : "";
    const port = item.slice(at + 1);
    let problem = "";
    if (at < 0) problem = `${item} has no port`;
    else if (!host) problem = `${item} has no host`;
    else if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) problem = `${item}: the port must be a number from 1 to 65535`;
    if (problem) return { targets: [], problem: `${problem}. Write HOST:PORT, such as 192.168.1.30:39539.` };
    targets.push({ host, port: Number(port) });
  }
  return { targets, problem: "" };
}

const KEPT = "holotrack.avatar.controls";

export class Controls {
  constructor(get) {
    this.mirror = get("avatar-mirror");
    this.blendshapes = get("avatar-blendshapes");
    this.vmc = get("avatar-vmc"); // null unless the server allows VMC out
    this.vmcStatus = get("avatar-vmc-status");
    this.smoothing = get("avatar-smoothing");
    this.smoothingValue = get("avatar-smoothing-value");
    this.smoothingOff = get("avatar-smoothing-off");
    this.showCamera = get("avatar-show-camera");
    const framing = [...document.querySelectorAll('input[name="avatar-framing"]')];
    const kept = keepInputs(KEPT, [
      this.mirror, this.blendshapes, this.vmc, this.smoothing, this.smoothingOff, this.showCamera, ...framing,
    ].filter(Boolean));
    // Until the slider is moved (on this visit or an earlier one) the hello leaves
    // smoothing out: the server's default, which the server side tunes, applies.
    this.smoothingTouched = kept.has(this.smoothing.id);
    this.smoothing.addEventListener("input", () => {
      this.smoothingTouched = true;
      this.showSmoothing();
    });
    this.smoothingOff.addEventListener("change", () => this.showSmoothing());
    this.showSmoothing();
  }

  get framing() {
    return document.querySelector('input[name="avatar-framing"]:checked').value;
  }

  showSmoothing() {
    this.smoothing.disabled = this.smoothingOff.checked;
    const value = this.helloSmoothing();
    this.smoothingValue.textContent =
      value === undefined ? "server's default" : value === "off" ? "off" : `${value.min_cutoff} Hz, β ${value.beta}`;
  }

  helloSmoothing() {
    if (this.smoothingOff.checked) return "off";
    return this.smoothingTouched ? smoothingFor(Number(this.smoothing.value)) : undefined;
  }

  // Extra hello fields for LiveSession.
  helloOptions() {
    // This hello carries the slider where it is now: a keyed move still settling has no
    // session left to start (a Start or a Mirror click within it started two).
    this.dropSettling?.();
    const options = { rig: true, mirror: this.mirror.checked };
    const smoothing = this.helloSmoothing();
    if (smoothing !== undefined) options.smoothing = smoothing;
    if (this.blendshapes.checked) options.blendshapes = true;
    const { targets, problem } = this.checkVmc();
    // A receiver written wrong while running leaves those in use sending: a new session
    // for another setting (Mirror, smoothing) silently stopped VSeeFace otherwise.
    const keep = problem && this.vmcInUse !== undefined;
    const asked = keep ? vmcTargets(this.vmcInUse).targets : targets;
    if (asked.length) options.vmc = asked;
    this.vmcAsked = keep ? this.vmcInUse : this.vmc?.value;
    return options;
  }

  // The receivers in the box; what is wrong with them is said next to it.
  checkVmc() {
    if (!this.vmc) return { targets: [], problem: "" };
    const checked = vmcTargets(this.vmc.value);
    this.vmcStatus.textContent = checked.problem;
    this.vmcStatus.hidden = !checked.problem;
    this.vmc.setAttribute("aria-invalid", String(Boolean(checked.problem)));
    return checked;
  }

  // The receivers of the running session: its hello's, which the server accepted.
  vmcAccepted() {
    this.vmcInUse = this.vmcAsked;
  }

  // Stopped: the next Start's receivers are those typed, nothing to go back to.
  vmcStopped() {
    this.vmcInUse = undefined;
  }

  // The server refused the receivers a change named (not in its --vmc-allow), ending the
  // session that asked: the box goes back to those in use, which `reopen()` goes on with,
  // and says why. It stopped the avatar, the OBS view and VSeeFace mid-stream. False when
  // the refused ones are those the session began with: nothing to go back to.
  vmcRefused(reason, reopen) {
    if (!this.vmc || this.vmcInUse === undefined || this.vmc.value === this.vmcInUse) return false;
    this.vmc.value = this.vmcInUse;
    reopen();
    this.vmcStatus.textContent = `Not changed: ${reason}.`;
    this.vmcStatus.hidden = false;
    return true;
  }

  // Fires `handler` when a control that the hello carries has settled on a new value
  // (the slider on release, not on every step), so the page can start a new session.
  onHelloChange(handler) {
    this.mirror.addEventListener("change", handler);
    this.blendshapes.addEventListener("change", handler);
    // A receiver written wrong is said next to the box, and the running session goes on.
    this.vmc?.addEventListener("change", () => {
      if (!this.checkVmc().problem) handler();
    });
    this.dropSettling = onSettledChange([this.smoothing], handler);
    this.smoothingOff.addEventListener("change", handler);
  }
}
