// Choosing an avatar: a file input, or a .vrm dropped on the view. The file is read in the
// browser, and kept in this browser (kept_avatar.js) so the next visit shows it again;
// nothing here sends it anywhere. Only "Show it in OBS too" (obs_avatar.js), off until the
// user ticks it, sends it to the server, which gets `chosen` for that.

import { acceptFiles } from "../files.js";
import { showStatus } from "../format.js";
import { forgetKeptAvatar, keepAvatar, keptAvatar, KeptAvatarError } from "./kept_avatar.js";
import { AvatarFileError } from "./view.js";

const REMEMBERED = "remembered from your last visit";

// What a chosen avatar makes of the server's ARKit blendshapes (the names the page was
// rendered with): a perfect-sync model has expressions named after them.
function perfectSync(avatar) {
  const names = (document.body.dataset.arkitNames ?? "").split(" ").filter(Boolean);
  const own = avatar.countOwn(names);
  return own
    ? ` Perfect sync: it has ${own} of the ${names.length} ARKit blendshapes; tick "ARKit blendshapes" to drive them.`
    : " It has no ARKit blendshapes: its VRM expressions follow the face.";
}

function describe(avatar, file, from) {
  const name = avatar.vrm.meta?.name || avatar.vrm.meta?.title || file.name;
  const version = avatar.vrm.meta?.metaVersion === "0" ? "0.x" : "1.0";
  return `Showing ${name} (VRM ${version}), ${from}.${perfectSync(avatar)}`;
}

function whyRefused(error) {
  return error instanceof AvatarFileError ? error.message : `it could not be loaded (${error.message})`;
}

// chosen(file): the user's own file is on show, null: the default again (not called for a
// file that was refused). forget: the button that deletes the kept file, shown while there
// is one. showFirst() opens the page with the kept file, else the default; false if neither
// could be shown.
export function setupPicker({ view, input, dropTarget, status, forget, defaultAvatar, chosen = () => {} }) {
  async function choose(file) {
    showStatus(status, `Loading ${file.name}…`, "busy");
    let avatar;
    try {
      avatar = await view.load(file);
    } catch (error) {
      // The avatar on show stays; say why the file was refused.
      showStatus(status, `${file.name} is not a VRM avatar this page can show: ${whyRefused(error)}. The previous avatar stays.`, "error");
      return;
    }
    if (!avatar) return; // another chosen meanwhile: its own words follow
    const shown = describe(avatar, file, `from ${file.name}`);
    showStatus(status, shown, "ok");
    chosen(file);
    showStatus(status, `${shown} ${await remember(file)}`, "ok");
  }

  async function remember(file) {
    try {
      await keepAvatar(file);
      forget.hidden = false;
      return "This browser remembers it for your next visit.";
    } catch (error) {
      // The one kept before is not what the user chose last: the next visit must not show it.
      await forgetKeptAvatar().catch(() => {});
      forget.hidden = true;
      return `It will not be remembered for your next visit: this browser would not store it (${error.message}).`;
    }
  }

  async function showKept() {
    let file;
    try {
      file = await keptAvatar();
    } catch (error) {
      // No storage in this browser (a private window): the default, as on a first visit.
      if (!(error instanceof KeptAvatarError)) return false;
      await forgetKeptAvatar().catch(() => {});
      showStatus(status, `The avatar ${REMEMBERED} could not be read (${error.message}), so this browser forgot it. Showing the default avatar.`, "error");
      return false;
    }
    if (!file) return false;
    showStatus(status, `Loading ${file.name}, ${REMEMBERED}…`, "busy");
    try {
      const avatar = await view.load(file);
      if (!avatar) return true; // the user chose another while it loaded
      showStatus(status, describe(avatar, file, `${file.name}, ${REMEMBERED}`), "ok");
      forget.hidden = false;
      chosen(file);
      return true;
    } catch (error) {
      await forgetKeptAvatar().catch(() => {});
      showStatus(status, `${file.name}, ${REMEMBERED}, no longer loads: ${whyRefused(error)}. This browser forgot it; showing the default avatar.`, "error");
      return false;
    }
  }

  async function showFirst() {
    if (await showKept()) return true;
    try {
      await view.load(defaultAvatar);
      return true;
    } catch (error) {
      showStatus(status, `Cannot load the default avatar: ${error.message}. Load your own .vrm instead.`, "error");
      return false;
    }
  }

  async function forgetOwn() {
    forget.disabled = true;
    try {
      await forgetKeptAvatar();
    } catch (error) {
      showStatus(status, `Could not forget it: this browser would not delete it (${error.message}).`, "error");
      return;
    } finally {
      forget.disabled = false;
    }
    forget.hidden = true;
    showStatus(status, "Forgotten: this browser no longer keeps your .vrm. Loading the default avatar…", "busy");
    try {
      if (!(await view.load(defaultAvatar))) return; // another chosen meanwhile
    } catch (error) {
      showStatus(status, `Forgotten, but the default avatar cannot load: ${error.message}. Yours stays on show until you reload.`, "error");
      return;
    }
    chosen(null);
    showStatus(status, "Forgotten: this browser no longer keeps your .vrm. Showing the default avatar.", "info");
  }

  // A .vrm's link dragged from a download site comes as its address, with no file.
  acceptFiles(input, dropTarget, choose, () => {
    showStatus(status, "What was dropped is not a file: a link dragged from a web page comes as its address. Download the .vrm first, then drop or choose the file. The avatar on show stays.", "error");
  });
  forget.addEventListener("click", forgetOwn);
  return { showFirst };
}
