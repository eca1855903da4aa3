// The request that holds an expression on this page's link from outside the browser: a
// stream deck's button, a hotkey app, a script (docs/protocol.md, "Held emotions"). It
// carries the link's key, which moves the avatar, so it stays folded away until asked for.

import { currentKey } from "../access.js";
import { copyAndSay } from "../share.js";

// Inside double quotes a POSIX shell still reads these; cmd and curl.exe take \" as well.
const quoted = (text) => `"${text.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`;

export function emotionCommand(token, linkKey, accessKey = "", name = "happy", location = window.location) {
  const url = `${location.origin}/api/emotion/${encodeURIComponent(token)}`;
  const headers = [`Holotrack-Link-Key: ${linkKey}`, ...(accessKey ? [`Authorization: Bearer ${accessKey}`] : [])];
  const body = JSON.stringify({ name });
  return ["curl -X PUT", url, ...headers.map((h) => `-H ${quoted(h)}`), `-d ${quoted(body)}`].join(" ");
}

export class EmotionShare {
  constructor({ box, command, button, status }) {
    this.box = box;
    this.command = command;
    this.status = status;
    button.addEventListener("click", () => copyAndSay(this.command.textContent, this.status, "command"));
  }

  // token: the link's ("" or null: none to show); linkKey: the key it is made of.
  show(token, linkKey) {
    const known = typeof token === "string" && token !== "" && Boolean(linkKey);
    this.box.hidden = !known;
    if (!known) this.box.open = false;
    this.command.textContent = known ? emotionCommand(token, linkKey, currentKey()) : "";
  }
}
