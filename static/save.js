// Saving what the page made (a JSON answer, a recording, a workout log) as a file.

// Firefox reads a blob URL after the click returns: revoking it at once can cancel the save.
const KEEP_URL_MS = 10000;

export function saveFile(name, blob) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), KEEP_URL_MS);
}
