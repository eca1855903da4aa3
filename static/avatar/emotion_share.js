// The request that holds an expression on this page's link from outside the browser: a
// stream deck's button, a hotkey app, a script (docs/protocol.md, "Held emotions"). It
// carries the link's key, which moves the avatar, so it stays folded away until asked for.
// It holds what the Expression row shows, at its strength: set a stream deck's button up
// by choosing on the page, then copying.

import { currentKey } from "../access.js";
import { showStatus } from "../format.js";
import { copyAndSay } from "../share.js";
import { emotionBody } from "./emotion.js";

// Inside double quotes a POSIX shell still reads these; cmd and curl.exe take \" as well.
const quoted = (text) => `"${text.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`;

export function emotionCommand(token, linkKey, accessKey = "", name = "happy", weight = 1, location = window.location) {
  const url = `${location.origin}/api/emotion/${encodeURIComponent(token)}`;
  const headers = [`Holotrack-Link-Key: ${linkKey}`, ...(accessKey ? [`Authorization: Bearer ${accessKey}`] : [])];
  const body = JSON.stringify(emotionBody(name, weight));
  return ["curl -X PUT", url, ...headers.map((h) => `-H ${quoted(h)}`), `-d ${quoted(body)}`].join(" ");
}

export class EmotionShare {
  // labelOf(name): the Expression row's words for an emotion (null: None).
  constructor({ box, command, named, button, status, labelOf }) {
    this.box = box;
    this.command = command;
    this.named = named; // where the text names the expression the command holds
    this.labelOf = labelOf;
    this.status = status;
    this.link = null; // [token, linkKey]
    this.emotion = ["happy", 1]; // Happy, whole, until the page chooses
    button.addEventListener("click", () => copyAndSay(this.command.textContent, this.status, "command"));
  }

  // token: the link's ("" or null: none to show); linkKey: the key it is made of.
  show(token, linkKey) {
    const known = typeof token === "string" && token !== "" && Boolean(linkKey);
    this.box.hidden = !known;
    if (!known) this.box.open = false;
    this.link = known ? [token, linkKey] : null;
    this.write();
  }

  // What was copied is old news once the session it was copied in is over.
  forgetCopied() {
    showStatus(this.status, "");
  }

  // The Expression row's choice (undefined: none made yet; null: None) and strength.
  follow(name, weight) {
    this.emotion = [name === undefined ? "happy" : name, weight];
    this.write();
  }

  write() {
    const [name, weight] = this.emotion;
    const command = this.link ? emotionCommand(...this.link, currentKey(), name, weight) : "";
    // "Command copied." stayed under another command than the one copied.
    if (command !== this.command.textContent) showStatus(this.status, "");
    this.command.textContent = command;
    const label = this.labelOf(name);
    this.named.textContent = name === null ? `no expression (${label})` : `${label}${weight < 1 ? ` at ${Math.round(weight * 100)}%` : ""}`;
  }
}
