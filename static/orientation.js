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

// The Orientation tag's value in a TIFF block (EXIF's layout), null when it has none.
function tiffOrientation(view, start, end) {
  if (end - start < 8) return null;
  const little = view.getUint16(start) === 0x4949; // "II"; "MM" is big-endian
  const first = start + view.getUint32(start + 4, little);
  if (first + 2 > end) return null;
  const entries = view.getUint16(first, little);
  for (let i = 0; i < entries; i += 1) {
    const entry = first + 2 + i * 12;
    if (entry + 12 > end) return null;
    if (view.getUint16(entry, little) === ORIENTATION_TAG) {
      // Some writers store it as a LONG (type 4), which a big-endian block puts in the
      // value's last two bytes; the server reads it whatever its type.
      const type = view.getUint16(entry + 2, little);
      if (type === 4) return view.getUint32(entry + 8, little);
      return type === 1 ? view.getUint8(entry + 8) : view.getUint16(entry + 8, little);
    }
  }
  return null;
}

// The Orientation an XMP packet gives (tiff:Orientation), as the server reads it when the
// EXIF has none; null when it gives none.
function xmpOrientation(bytes, start, end) {
  let packet = "";
  for (let i = start; i < end; i += 0x8000) {
    packet += String.fromCharCode(...bytes.subarray(i, Math.min(i + 0x8000, end)));
  }
  const found = /tiff:Orientation(="|>)([0-9])/.exec(packet);
  return found ? Number(found[2]) : null;
}

// VP8X flags (libwebp's EXIF_FLAG, XMP_FLAG): the server's decoder reads those chunks only
// when their flag is set, in an extended WebP (one that starts with VP8X).
const EXIF_FLAG = 0x08;
const XMP_FLAG = 0x04;

// A WebP's orientation (1 to 8) as the server reads it: its EXIF, else its XMP; null for
// anything not a WebP.
export function webpOrientation(buffer) {
  const bytes = new Uint8Array(buffer);
  if (bytes.length < 12 || text(bytes, 0, 4) !== "RIFF" || text(bytes, 8, 4) !== "WEBP") {
    return null;
  }
  // A simple WebP, or one whose VP8X leaves the flag out, has its EXIF ignored by the
  // server: turned here, an upright photo was drawn sideways under its skeleton.
  if (bytes.length < 21 || text(bytes, 12, 4) !== "VP8X") return 1;
  const flags = bytes[20];
  const view = new DataView(buffer);
  const found = {}; // the first EXIF and XMP chunks' orientations, null for none
  let at = 12;
  while (at + 8 <= bytes.length) {
    const size = view.getUint32(at + 4, true);
    const tag = text(bytes, at, 4);
    const end = Math.min(at + 8 + size, bytes.length);
    if (tag === "EXIF" && !("exif" in found) && flags & EXIF_FLAG) {
      let start = at + 8;
      // Some writers put JPEG's "Exif\0\0" before the TIFF block.
      if (text(bytes, start, 6) === "Exif\0\0") start += 6;
      found.exif = tiffOrientation(view, start, end);
    } else if (tag === "XMP " && !("xmp" in found) && flags & XMP_FLAG) {
      found.xmp = xmpOrientation(bytes, at + 8, end);
    }
    at += 8 + size + (size % 2); // chunks are padded to an even length
  }
  const value = found.exif ?? found.xmp ?? 1;
  return value >= 1 && value <= 8 ? value : 1;
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
