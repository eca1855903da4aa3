"""Awkward images built from the shared photos, each with the answer it must get.

`CORPUS` is what `tests/test_corpus.py` sends through POST /predict and /ws; `seeds()` and
`mutate()` feed the fuzz tests in `tests/test_fuzz.py`.
"""

from __future__ import annotations

import enum
import functools
import io
import random
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from tests.media import PERSON_JPEG, png_declaring

EXIF_ORIENTATION = 0x0112
# Orientation 6: the stored pixels must be turned 90 degrees clockwise to be upright.
ROTATE_CW = 6


@functools.cache
def person() -> Image.Image:
    """The shared photo of one person, upright, as RGB (480x640)."""
    with Image.open(PERSON_JPEG) as img:
        return img.convert("RGB")


def encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **options)
    return out.getvalue()


def small(width: int = 96) -> Image.Image:
    photo = person()
    return photo.resize((width, round(photo.height * width / photo.width)), Image.Resampling.BOX)


def truncated_jpeg() -> bytes:
    data = PERSON_JPEG.read_bytes()
    return data[: len(data) // 2]


def jpeg_of_many_scans(scans: int = 500) -> bytes:
    """The person, small, as a progressive JPEG, its last scan repeated until it has `scans`: each
    scan makes a decoder walk every block of the image again (a scan bomb)."""
    data = encode(small(), "JPEG", progressive=True, quality=80)
    last = data.rindex(b"\xff\xda")
    end = data.rindex(b"\xff\xd9")
    have = data.count(b"\xff\xda")
    return data[:end] + data[last:end] * (scans - have) + data[end:]


def jpeg_of_tiny_comments(comments: int = 10_001) -> bytes:
    """The person, small, with `comments` empty COM segments after SOI: Pillow walks each in
    Python (10 MB of them held it 4.1 s)."""
    data = encode(small(), "JPEG")
    return data[:2] + b"\xff\xfe\x00\x02" * comments + data[2:]


def png_of_empty_chunks(chunks: int = 20_001) -> bytes:
    """The person, small, with `chunks` empty private chunks after IHDR (10 MB of them: 3.8 s)."""
    data = encode(small(), "PNG")
    after_ihdr = 8 + 25
    empty = struct.pack(">I", 0) + b"zzZz" + struct.pack(">I", zlib.crc32(b"zzZz"))
    return data[:after_ihdr] + empty * chunks + data[after_ihdr:]


def gif_of_tiny_sub_blocks(sub_blocks: int = 100_001) -> bytes:
    """The person, small, with a comment of `sub_blocks` 1-byte sub-blocks before the image
    (10 MB of them: 1.6 s)."""
    data = encode(small(), "GIF")
    after_palette = 13 + 3 * (2 << (data[10] & 0x07))
    comment = b"\x21\xfe" + b"\x01x" * sub_blocks + b"\x00"
    return data[:after_palette] + comment + data[after_palette:]


def random_bytes() -> bytes:
    # A leading NUL keeps it from starting with any image signature by chance.
    return b"\x00" + random.Random(6).randbytes(4095)


def animated_gif() -> bytes:
    photo = small(240)
    frames = [photo, photo.rotate(10), photo.rotate(-10)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)


def animated_webp() -> bytes:
    photo = small(240)
    return encode(photo, "WEBP", save_all=True, append_images=[photo.rotate(10)], duration=80)


def multipage_tiff() -> bytes:
    return encode(person(), "TIFF", save_all=True, append_images=[small(64)])


def png_16bit() -> bytes:
    grey = np.asarray(person().convert("L"), dtype=np.uint16) * 257
    return encode(Image.fromarray(grey), "PNG")


def float_tiff() -> bytes:
    """Grey in 0 to 1, as float TIFFs hold it: it was tracked as a black picture. Four
    bytes a pixel: at 360x480 within a live frame's 1 MiB, which refuses it as a type."""
    grey = np.asarray(person().convert("L").resize((360, 480)), dtype=np.float32) / 255.0
    return encode(Image.fromarray(grey), "TIFF")


def cmyk_jpeg() -> bytes:
    return encode(person().convert("CMYK"), "JPEG", quality=90)


def with_orientation(stored: Image.Image, orientation: int, fmt: str = "JPEG") -> bytes:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    return encode(stored, fmt, exif=exif.tobytes(), quality=95)


def exif_rotated_jpeg() -> bytes:
    """The photo stored lying on its side, with orientation 6 saying how to stand it up."""
    return with_orientation(person().transpose(Image.Transpose.ROTATE_90), ROTATE_CW)


def upright_jpeg() -> bytes:
    """The same pixels as `exif_rotated_jpeg`, stored upright: the reference for it."""
    return encode(person(), "JPEG", quality=95)


def png_alpha() -> bytes:
    rgba = person().convert("RGBA")
    alpha = Image.linear_gradient("L").resize(rgba.size)
    rgba.putalpha(alpha.point(lambda v: 255 if v > 40 else v * 6))
    return encode(rgba, "PNG")


def palette_png_transparent() -> bytes:
    palette = person().convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    return encode(palette, "PNG", transparency=0)


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real JPEG whose SOF marker was rewritten to declare another size."""
    data = bytearray(encode(small(64), "JPEG"))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def jpeg_with_trailing_garbage() -> bytes:
    return PERSON_JPEG.read_bytes() + random.Random(7).randbytes(2048)


def motion_photo() -> bytes:
    """The photo with a video after its end, as a phone's motion photo has: bytes that look
    like 40,000 markers and 20,000 scans, none of them the photo's."""
    return PERSON_JPEG.read_bytes() + b"\xff\xda\xff\xe1" * 20_000


def jpeg_of_fill_bytes(fill: int = 10_001) -> bytes:
    """The person, small, with `fill` 0xFF bytes after SOI, each a step of Pillow's walk."""
    data = encode(small(), "JPEG")
    return data[:2] + b"\xff" * fill + data[2:]


def gif_of_stray_bytes(stray: int = 100_001) -> bytes:
    """The person, small, with `stray` zero bytes before its image, each a step of Pillow's."""
    data = encode(small(), "GIF")
    after_palette = 13 + 3 * (2 << (data[10] & 0x07))
    return data[:after_palette] + bytes(stray) + data[after_palette:]


def png_bad_crc() -> bytes:
    data = bytearray(encode(small(), "PNG"))
    idat = data.index(b"IDAT")
    length = struct.unpack(">I", data[idat - 4 : idat])[0]
    data[idat + 4 + length] ^= 0xFF  # first byte of the IDAT chunk's CRC
    return bytes(data)


class Ws(enum.Enum):
    """What a /ws session does with the image as a frame."""

    RESULT = "result"  # a result, and the session goes on
    BAD_FRAME = "bad_frame"  # an error message naming the seq, and the session goes on
    TOO_MANY_PIXELS = "too_many_pixels"  # the same, with this code
    UNSUPPORTED = 1003  # the session is closed: frames must be JPEG, WebP or PNG


@dataclass(frozen=True)
class Awkward:
    name: str
    build: Callable[[], bytes]
    status: int  # POST /predict
    error: str | None  # the `error` code of a refusal
    ws: Ws
    # The person is whole in the image: pose must be found (else only the shape is checked).
    person: bool = False
    # width x height the answers report: the upright size.
    size: tuple[int, int] | None = None

    @functools.cached_property
    def data(self) -> bytes:
        return self.build()


PERSON_SIZE = (480, 640)
CORPUS: Sequence[Awkward] = (
    Awkward("truncated-jpeg", truncated_jpeg, 400, "not_an_image", Ws.BAD_FRAME),
    Awkward("zero-bytes", lambda: b"", 400, "empty", Ws.BAD_FRAME),
    Awkward("random-bytes", random_bytes, 400, "not_an_image", Ws.UNSUPPORTED),
    Awkward("png", lambda: encode(person(), "PNG"), 200, None, Ws.RESULT, True, PERSON_SIZE),
    Awkward("gif", lambda: encode(person(), "GIF"), 200, None, Ws.UNSUPPORTED, True, PERSON_SIZE),
    Awkward("gif-animated", animated_gif, 200, None, Ws.UNSUPPORTED, size=(240, 320)),
    Awkward("bmp", lambda: encode(person(), "BMP"), 200, None, Ws.UNSUPPORTED, True, PERSON_SIZE),
    Awkward(
        "webp",
        lambda: encode(person(), "WEBP", quality=80),
        200,
        None,
        Ws.RESULT,
        True,
        PERSON_SIZE,
    ),
    Awkward("webp-animated", animated_webp, 200, None, Ws.RESULT, size=(240, 320)),
    Awkward("tiff", lambda: encode(person(), "TIFF"), 200, None, Ws.UNSUPPORTED, True, PERSON_SIZE),
    Awkward("tiff-multipage", multipage_tiff, 200, None, Ws.UNSUPPORTED, True, PERSON_SIZE),
    Awkward("tiff-float", float_tiff, 200, None, Ws.UNSUPPORTED, True, (360, 480)),
    Awkward(
        "1x1",
        lambda: encode(Image.new("RGB", (1, 1), (90, 60, 30)), "PNG"),
        200,
        None,
        Ws.RESULT,
        size=(1, 1),
    ),
    Awkward(
        "1x1-jpeg",
        lambda: encode(Image.new("RGB", (1, 1)), "JPEG"),
        200,
        None,
        Ws.RESULT,
        size=(1, 1),
    ),
    Awkward(
        "strip-2000x2",
        lambda: encode(person().resize((2000, 2)), "PNG"),
        200,
        None,
        Ws.RESULT,
        size=(2000, 2),
    ),
    Awkward("png-16bit", png_16bit, 200, None, Ws.RESULT, True, PERSON_SIZE),
    Awkward(
        "greyscale-jpeg",
        lambda: encode(person().convert("L"), "JPEG"),
        200,
        None,
        Ws.RESULT,
        True,
        PERSON_SIZE,
    ),
    Awkward(
        "bilevel-png",
        lambda: encode(person().convert("1"), "PNG"),
        200,
        None,
        Ws.RESULT,
        size=PERSON_SIZE,
    ),
    Awkward("cmyk-jpeg", cmyk_jpeg, 200, None, Ws.RESULT, True, PERSON_SIZE),
    Awkward(
        "progressive-jpeg",
        lambda: encode(person(), "JPEG", progressive=True),
        200,
        None,
        Ws.RESULT,
        True,
        PERSON_SIZE,
    ),
    Awkward("exif-rotated-jpeg", exif_rotated_jpeg, 200, None, Ws.RESULT, True, PERSON_SIZE),
    Awkward(
        "exif-rotated-png",
        lambda: with_orientation(person().transpose(Image.Transpose.ROTATE_90), ROTATE_CW, "PNG"),
        200,
        None,
        Ws.RESULT,
        True,
        PERSON_SIZE,
    ),
    Awkward("png-alpha", png_alpha, 200, None, Ws.RESULT, True, PERSON_SIZE),
    Awkward(
        "png-palette-transparent", palette_png_transparent, 200, None, Ws.RESULT, size=PERSON_SIZE
    ),
    Awkward(
        "jpeg-trailing-garbage", jpeg_with_trailing_garbage, 200, None, Ws.RESULT, True, PERSON_SIZE
    ),
    # Pillow checks chunk CRCs only in verify(), not when decoding: the image is served.
    Awkward("png-bad-crc", png_bad_crc, 200, None, Ws.RESULT, size=(96, 128)),
    Awkward(
        "png-declaring-30000x30000",
        lambda: png_declaring(30000, 30000),
        413,
        "too_many_pixels",
        Ws.TOO_MANY_PIXELS,
    ),
    Awkward("png-declaring-0x0", lambda: png_declaring(0, 0), 400, "not_an_image", Ws.BAD_FRAME),
    Awkward(
        "jpeg-declaring-65535x65535",
        lambda: jpeg_declaring(65535, 65535),
        413,
        "too_many_pixels",
        Ws.TOO_MANY_PIXELS,
    ),
    # 2 KB declaring 12 Mpx, under the pixel limit: libjpeg pads the missing scan with grey,
    # so it is decoded and run like any 12-Mpx photo (max_pixels is the bound on this). As a
    # live frame it is over --max-frame-pixels (4 Mpx), refused undecoded.
    Awkward(
        "jpeg-declaring-4000x3000",
        lambda: jpeg_declaring(4000, 3000),
        200,
        None,
        Ws.TOO_MANY_PIXELS,
        size=(4000, 3000),
    ),
    Awkward("jpeg-500-scans", jpeg_of_many_scans, 400, "not_an_image", Ws.BAD_FRAME),
    Awkward("jpeg-10001-comments", jpeg_of_tiny_comments, 400, "not_an_image", Ws.BAD_FRAME),
    Awkward("png-20001-chunks", png_of_empty_chunks, 400, "not_an_image", Ws.BAD_FRAME),
    Awkward("jpeg-10001-fill-bytes", jpeg_of_fill_bytes, 400, "not_an_image", Ws.BAD_FRAME),
    Awkward("gif-100001-stray-bytes", gif_of_stray_bytes, 400, "not_an_image", Ws.UNSUPPORTED),
    Awkward("jpeg-motion-photo", motion_photo, 200, None, Ws.RESULT, True, PERSON_SIZE),
    Awkward("gif-100001-sub-blocks", gif_of_tiny_sub_blocks, 400, "not_an_image", Ws.UNSUPPORTED),
    # 198 bytes of real pixels, far under the pixel limit: MediaPipe aborted its whole
    # worker process (SIGABRT) on a side this long, every session there with it.
    Awkward(
        "png-1x40000",
        lambda: encode(Image.new("RGB", (40000, 1), (128, 128, 128)), "PNG"),
        413,
        "too_many_pixels",
        Ws.TOO_MANY_PIXELS,
    ),
)


# -- mutations, for the fuzz tests -------------------------------------------------------


@functools.cache
def seeds() -> tuple[tuple[str, bytes], ...]:
    """Small real images in every accepted format, the starting points of mutations."""
    photo = small()
    return (
        ("jpeg", encode(photo, "JPEG", quality=80)),
        ("jpeg-exif", with_orientation(photo.transpose(Image.Transpose.ROTATE_90), ROTATE_CW)),
        ("png", encode(photo, "PNG")),
        ("png-alpha", encode(photo.convert("RGBA"), "PNG")),
        (
            "png-16bit",
            encode(Image.fromarray(np.asarray(photo.convert("L"), np.uint16) * 257), "PNG"),
        ),
        ("webp", encode(photo, "WEBP", quality=80)),
        ("webp-lossless", encode(photo, "WEBP", lossless=True)),
        ("gif", encode(photo, "GIF")),
        ("bmp", encode(photo, "BMP")),
        ("tiff", encode(photo, "TIFF")),
        ("tiff-deflate", encode(photo, "TIFF", compression="tiff_adobe_deflate")),
        ("real-jpeg", PERSON_JPEG.read_bytes()),
    )


@dataclass(frozen=True)
class Mutation:
    """One edit of a byte string; positions are taken modulo its length."""

    kind: str  # flip, set, truncate, insert, delete, duplicate
    at: int
    value: int = 0
    payload: bytes = b""

    def apply(self, data: bytes) -> bytes:
        if not data:
            return self.payload if self.kind == "insert" else data
        at = self.at % len(data)
        if self.kind == "flip":
            return data[:at] + bytes([data[at] ^ (1 << (self.value % 8))]) + data[at + 1 :]
        if self.kind == "set":
            return data[:at] + bytes([self.value % 256]) + data[at + 1 :]
        if self.kind == "truncate":
            return data[:at]
        if self.kind == "insert":
            return data[:at] + self.payload + data[at:]
        if self.kind == "delete":
            return data[:at] + data[at + 1 + self.value % 64 :]
        if self.kind == "duplicate":
            return data[:at] + data[at : at + 1 + self.value % 64] + data[at:]
        raise ValueError(f"unknown mutation {self.kind!r}")


MUTATION_KINDS = ("flip", "set", "truncate", "insert", "delete", "duplicate")
# Where formats keep their sizes and offsets: mutations there find the interesting bugs.
HEADER_BYTES = 96


def mutate(data: bytes, mutations: Sequence[Mutation]) -> bytes:
    for mutation in mutations:
        data = mutation.apply(data)
    return data


def random_mutations(rng: random.Random, count: int) -> list[Mutation]:
    """The same kinds of edits as the hypothesis strategy, from a seeded generator."""
    edits = []
    for _ in range(count):
        at = rng.randrange(HEADER_BYTES) if rng.random() < 0.6 else rng.randrange(1 << 20)
        edits.append(
            Mutation(
                rng.choice(MUTATION_KINDS),
                at,
                rng.randrange(256),
                rng.randbytes(rng.randrange(1, 16)),
            )
        )
    return edits
