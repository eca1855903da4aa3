// Choosing an avatar: a file input, or a .vrm dropped on the view. The file is read in the
// browser; nothing here sends it anywhere. Only "Show it in OBS too" (obs_avatar.js), off
// until the user ticks it, sends it to the server, which gets `chosen` for that.

import { acceptFiles } from "../files.js";
import { showStatus } from "../format.js";
import { AvatarFileError } from "./view.js";

// What a chosen avatar makes of the server's ARKit blendshapes (the names the page was
// rendered with): a perfect-sync model has expressions named after them.
function perfectSync(avatar) {
  const names = (document.body.dataset.arkitNames ?? "").split(" ").filter(Boolean);
  const own = avatar.countOwn(names);
  return own
    ? ` Perfect sync: it has ${own} of the ${names.length} ARKit blendshapes; tick "ARKit blendshapes" to drive them.`
    : " It has no ARKit blendshapes: its VRM expressions follow the face.";
}

// chosen(file): the file is on show (not called for one that was refused).
export function setupPicker({ view, input, dropTarget, status, chosen = () => {} }) {
  async function choose(file) {
    showStatus(status, `Loading ${file.name}…`, "busy");
    try {
      const avatar = await view.load(file);
      const name = avatar.vrm.meta?.name || avatar.vrm.meta?.title || file.name;
      const version = avatar.vrm.meta?.metaVersion === "0" ? "0.x" : "1.0";
      showStatus(status, `Showing ${name} (VRM ${version}), from ${file.name}.${perfectSync(avatar)}`, "ok");
      chosen(file);
    } catch (error) {
      // The avatar on show stays; say why the file was refused.
      const why = error instanceof AvatarFileError ? error.message : `it could not be loaded (${error.message})`;
      showStatus(status, `${file.name} is not a VRM avatar this page can show: ${why}. The previous avatar stays.`, "error");
    }
  }

  acceptFiles(input, dropTarget, choose);
}
