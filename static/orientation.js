// A photo drawn the way the server read it. The server turns every photo upright as its EXIF
// orientation says; browsers do so for JPEG and PNG, but Chromium (and others) not for WebP,
// which then showed sideways under a skeleton drawn for the upright photo.

// A 2x1 lossless WebP whose EXIF says "turn 90 degrees clockwise": a browser that honours
// WebP's EXIF decodes it 1x2. Made with Pillow: Image.new("RGB", (2, 1)).save(buffer,
// "WEBP", lossless=True, exif=<Orientation 6>).
const PROBE =
  "UklGRk4AAABXRUJQVlA4WAoAAAAIAAAAAQAAAAAAVlA4TA4AAAAvAQAAAAcQEf0PRET/A0VYSUYaAAAATU0AKgAAAAgAAQESAAMAAAABAAYAAAAAAAA=";
const ORIENTATION_TAG = 0x0112;

let orientsWebp = null; // a promise of whether this browser honours a WebP's EXIF

function browserOrientsWebp() {
  orientsWebp ??= (async () => {
    try {
      const bytes = Uint8Array.from(atob(PROBE), (c) => c.charCodeAt(0));
      const probe = await createImageBitmap(new Blob([bytes], { type: "image/webp" }));
      return probe.width === 1 && probe.height === 2;
    } catch {
      return true; // cannot tell: leave the photo as the browser draws it
    }
  })();
  return orientsWebp;
}

function text(bytes, at, length) {
  return String.fromCharCode(...bytes.subarray(at, at + length));
}

// The Orientation tag (1 to 8) of a TIFF block (EXIF's layout), 1 when it has none.
function tiffOrientation(view, start, end) {
  if (end - start < 8) return 1;
  const little = view.getUint16(start) === 0x4949; // "II"; "MM" is big-endian
  const first = start + view.getUint32(start + 4, little);
  if (first + 2 > end) return 1;
  const entries = view.getUint16(first, little);
  for (let i = 0; i < entries; i += 1) {
    const entry = first + 2 + i * 12;
    if (entry + 12 > end) return 1;
    if (view.getUint16(entry, little) === ORIENTATION_TAG) {
      const value = view.getUint16(entry + 8, little);
      return value >= 1 && value <= 8 ? value : 1;
    }
  }
  return 1;
}

// A WebP's EXIF orientation (1 to 8), from its RIFF chunks; null for anything not a WebP.
export function webpOrientation(buffer) {
  const bytes = new Uint8Array(buffer);
  if (bytes.length < 12 || text(bytes, 0, 4) !== "RIFF" || text(bytes, 8, 4) !== "WEBP") {
    return null;
  }
  const view = new DataView(buffer);
  let at = 12;
  while (at + 8 <= bytes.length) {
    const size = view.getUint32(at + 4, true);
    if (text(bytes, at, 4) === "EXIF") {
      let start = at + 8;
      // Some writers put JPEG's "Exif\0\0" before the TIFF block.
      if (text(bytes, start, 6) === "Exif\0\0") start += 6;
      return tiffOrientation(view, start, Math.min(at + 8 + size, bytes.length));
    }
    at += 8 + size + (size % 2); // chunks are padded to an even length
  }
  return 1;
}

// The canvas transform that turns a width x height image as EXIF orientation `value` says.
function orient(ctx, value, width, height) {
  const transforms = {
    2: [-1, 0, 0, 1, width, 0],
    3: [-1, 0, 0, -1, width, height],
    4: [1, 0, 0, -1, 0, height],
    5: [0, 1, 1, 0, 0, 0],
    6: [0, 1, -1, 0, height, 0],
    7: [0, -1, -1, 0, height, width],
    8: [0, -1, 1, 0, 0, width],
  };
  ctx.transform(...transforms[value]);
}

// The file decoded upright, as the server reads it; null when this browser cannot decode it.
export async function uprightBitmap(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    return null; // e.g. TIFF: the server reads it, this browser cannot show it
  }
  const value = webpOrientation(await file.arrayBuffer());
  if (value === null || value === 1 || (await browserOrientsWebp())) return bitmap;
  const turned = value >= 5;
  const canvas = new OffscreenCanvas(
    turned ? bitmap.height : bitmap.width,
    turned ? bitmap.width : bitmap.height,
  );
  const ctx = canvas.getContext("2d");
  orient(ctx, value, bitmap.width, bitmap.height);
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return canvas.transferToImageBitmap();
}
