// Taking a file the person picks or drops, and saving one the page made.

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

// Calls onFile(file, count) for a file chosen in `input` or dropped on `zone` (marked
// "dragging" while one is over it); count: how many were dropped together, of which `file`
// is the first and the only one taken. The input is emptied after each choice, so choosing
// the same file again (a retry) is a choice too. onNoFile(): something without a file was
// dropped (a picture dragged from a web page comes as its address), which else did nothing.
export function acceptFiles(input, zone, onFile, onNoFile = () => {}) {
  input.addEventListener("change", () => {
    const [file] = input.files;
    input.value = "";
    if (file) onFile(file, 1);
  });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    zone.addEventListener(type, () => zone.classList.remove("dragging"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    const { files } = event.dataTransfer;
    if (files.length) onFile(files[0], files.length);
    else onNoFile();
  });
  // A file dropped beside the zone must not replace the page.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
}
