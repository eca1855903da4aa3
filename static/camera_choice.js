// Which camera a page opens: the front or the back one (a phone), or, where there are
// several, one by name: a PC with a webcam, a capture card and OBS's virtual camera (which
// browsers often open first, showing the stream back to itself), a phone's wide lens for
// a whole body. Browsers name cameras only once the site may use one, so the names are
// listed from the first Start on. The choice is kept in this browser.

import { DEVICE } from "./capture.js";
import { browserStorage } from "./storage.js";

const KEPT = "holotrack.camera";
const LAST_TIME = "The camera chosen last time";

export class CameraChoice {
  // select: a <select> whose options are the sides ("user", "environment"), the first the
  // default; the cameras by name are added after them.
  constructor(select) {
    this.select = select;
    this.default = select.options[0].value;
    this.group = document.createElement("optgroup");
    this.group.label = "Cameras";
    this.kept = browserStorage()?.getItem(KEPT) ?? null;
    this.changed = null; // () => ...: the camera to open is another (chosen, or back)
    // Until the browser names its cameras, one chosen before stands for itself.
    if (this.kept?.startsWith(DEVICE)) this.fill([[this.kept, LAST_TIME]]);
    if (this.has(this.kept)) select.value = this.kept;
    select.addEventListener("change", () => {
      this.keep(select.value);
      this.changed?.();
    });
    navigator.mediaDevices?.addEventListener?.("devicechange", () => this.list());
    this.list();
  }

  get value() {
    return this.select.value;
  }

  // The cameras the browser names, after the sides (none while there is only one): the
  // one chosen stays chosen while it is there, and is chosen again when it is back.
  async list() {
    let devices;
    try {
      devices = await navigator.mediaDevices.enumerateDevices();
    } catch {
      return; // no camera access here: openCamera says so
    }
    const cameras = devices.filter((d) => d.kind === "videoinput" && d.deviceId && d.label);
    if (cameras.length === 0) return; // not named yet
    const chosen = this.select.value;
    this.fill(cameras.length > 1 ? cameras.map((c) => [DEVICE + c.deviceId, c.label]) : []);
    this.select.value = [this.kept, chosen].find((value) => this.has(value)) ?? this.default;
    if (this.select.value !== chosen) this.changed?.();
  }

  // The stream opened for `choice` (the value chosen when it was asked for): for a camera
  // chosen by name that is not there, the words saying which the browser opened instead;
  // null when it is the one chosen. The choice shows the default meanwhile (unless another
  // was chosen while it opened), and the chosen one again when it is plugged in.
  opened(stream, choice) {
    const chosen = [...this.select.options].find((option) => option.value === choice);
    const track = stream.getVideoTracks()[0];
    const missed = choice.startsWith(DEVICE) && choice !== DEVICE + track?.getSettings().deviceId;
    if (missed && this.select.value === choice) this.select.value = this.default;
    this.list();
    if (!missed) return null;
    const label = chosen?.textContent ?? LAST_TIME;
    const which = label === LAST_TIME ? LAST_TIME : `The camera “${label}”`;
    return `${which} is not connected: this is ${track?.label || "the browser's default camera"}.`;
  }

  selectedName() {
    return this.select.selectedOptions[0]?.textContent ?? "";
  }

  // Back to `value`, kept as the choice: the one chosen instead could not be opened.
  restore(value) {
    if (!this.has(value)) return;
    this.select.value = value;
    this.keep(value);
  }

  keep(value) {
    this.kept = value;
    try {
      browserStorage()?.setItem(KEPT, value);
    } catch {
      // Storage full or refused: the choice holds for this visit.
    }
  }

  has(value) {
    return value != null && [...this.select.options].some((option) => option.value === value);
  }

  fill(entries) {
    this.group.replaceChildren(
      ...entries.map(([value, label]) => {
        const option = document.createElement("option");
        option.value = value;
        option.textContent = label;
        return option;
      }),
    );
    if (entries.length > 0) this.select.append(this.group);
    else this.group.remove();
  }
}
