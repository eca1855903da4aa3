"""The test media in media/ (real people) and awkward inputs built from them."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image

from swarm.config import media_dir

ROOT = Path(__file__).resolve().parent.parent
MEDIA = media_dir()
STILLS = sorted(p for p in MEDIA.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
ASL_VIDEO = MEDIA / "asl_signer_intel_640x480_30fps.mp4"
GESTURE_VIDEO = MEDIA / "gesture_mpsamples_640x360_25fps.mp4"
PERSON_JPEG = MEDIA / "COCO_val2014_000000000241.jpg"
# 60 frames of the push-up video, of which the first 20 need a keyframe the cut left out.
CUT_BETWEEN_KEYFRAMES = (
    MEDIA / "pushups_cut_between_keyframes.mp4",
    MEDIA / "pushups_cut_between_keyframes.mkv",
)


def reencode(path: Path, fmt: str, **options: object) -> bytes:
    with Image.open(path) as img:
        out = io.BytesIO()
        img.convert("RGB").save(out, format=fmt, **options)
        return out.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A valid PNG header that declares a huge size, with almost no pixel data behind it."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
