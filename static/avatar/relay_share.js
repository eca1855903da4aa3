// The VMC relay's command for this page's watch link, to paste on the PC that runs
// VSeeFace, VNyan or Warudo (README, "VSeeFace, VNyan, Warudo"): the relay watches the
// session from there and sends it as VMC to the app, wherever this server is. The link is
// kept (link_key.js), so the command is too, and --wait lets the relay outlast a Stop.

import { socketUrl } from "../protocol.js";
import { showStatus } from "../format.js";
import { copyAndSay } from "../share.js";

// --token=: a token may begin with "-", which argparse would take for an option.
function relayCommand(token, location = window.location) {
  return `python -m webapp.vmc.relay --watch ${socketUrl(location)} --token=${token} --wait`;
}

export class RelayShare {
  constructor({ box, command, button, status }) {
    this.box = box;
    this.command = command;
    this.status = status;
    button.addEventListener("click", () => this.copy());
  }

  // token: the ready message's "watch"; without one there is nothing to relay.
  show(token) {
    const known = typeof token === "string" && token !== "";
    this.box.hidden = !known;
    const command = known ? relayCommand(token) : "";
    // "Command copied." stayed under a new link's command, the clipboard holding the old.
    if (command !== this.command.textContent) showStatus(this.status, "");
    this.command.textContent = command;
  }

  // What was copied is old news once the session it was copied in is over.
  forgetCopied() {
    showStatus(this.status, "");
  }

  async copy() {
    const text = this.command.textContent;
    if (!text) return;
    await copyAndSay(text, this.status, "command");
  }
}
