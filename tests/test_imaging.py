"""Pixel formats that PIL converts to 8-bit RGB badly, as the server decodes them."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageOps

from webapp.engine.imaging import animated, decode, probe
from webapp.errors import NotAnImageError


def tiff(values: list[list[float]]) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.array(values, dtype=np.float32)).save(out, "TIFF")
    return out.getvalue()


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # 0 to 1, as float images hold it: 0.8 was clipped to 0, a black picture.
        ([[0.0, 0.5], [0.8, 1.0]], [[0, 127], [204, 255]]),
        # Wider than 1: scaled to the brightest, as 16-bit images are.
        ([[0.0, 100.0], [200.0, 400.0]], [[0, 63], [127, 255]]),
        # Nothing above 0 (and no number at all) is black, not inverted to white.
        ([[-1.0, -0.5], [-2.0, -0.25]], [[0, 0], [0, 0]]),
        ([[-1.0, float("nan")], [-2.0, -0.25]], [[0, 0], [0, 0]]),
        ([[float("inf"), 0.5], [float("-inf"), 1.0]], [[0, 127], [0, 255]]),
    ],
)
def test_a_float_image_is_scaled_to_8_bits(
    values: list[list[float]], expected: list[list[int]]
) -> None:
    rgb = decode(tiff(values), max_pixels=100)
    assert rgb.dtype == np.uint8
    assert rgb.shape == (2, 2, 3)
    assert rgb[..., 0].tolist() == expected
    assert (rgb[..., 0] == rgb[..., 2]).all()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def turned_png(where: str) -> bytes:
    """A 2x1 PNG whose orientation 6 (turn clockwise) is said `where`."""
    out = io.BytesIO()
    Image.new("RGB", (2, 1)).save(out, "PNG")
    data = out.getvalue()
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    tiff = exif.tobytes()
    first_idat = data.index(b"IDAT") - 4
    iend = data.index(b"IEND") - 4
    if where == "before_the_pixels":
        return data[:first_idat] + png_chunk(b"eXIf", tiff) + data[first_idat:]
    if where == "after_the_pixels":
        return data[:iend] + png_chunk(b"eXIf", tiff) + data[iend:]
    if where == "raw_profile_text":  # as ImageMagick writes it
        raw = b"Exif\x00\x00" + tiff
        text = b"\nexif\n%8d\n%s\n" % (len(raw), raw.hex().encode())
        chunk = png_chunk(b"tEXt", b"Raw profile type exif\x00" + text)
        return data[:first_idat] + chunk + data[first_idat:]
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/'
        b'02/22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/"'
        b' tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
    )
    chunk = png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp)
    return data[:first_idat] + chunk + data[first_idat:]


@pytest.mark.parametrize(
    ("where", "shape"),
    [
        ("before_the_pixels", (2, 1, 3)),
        # Browsers read none of these: the page drew the photo as stored, under points
        # found on the photo turned.
        ("after_the_pixels", (1, 2, 3)),
        ("raw_profile_text", (1, 2, 3)),
        ("xmp", (1, 2, 3)),
    ],
)
def test_a_png_is_turned_only_by_the_exif_browsers_read(where: str, shape: tuple[int, ...]) -> None:
    data = turned_png(where)
    # Pillow reads each of them: the PNG says orientation 6 to it, wherever it is said.
    assert ImageOps.exif_transpose(Image.open(io.BytesIO(data))).size == (1, 2)
    assert decode(data, max_pixels=100).shape == shape


@pytest.mark.parametrize("kind", [b"zTXt", b"iCCP"])
@pytest.mark.parametrize("stage", ["probe", "decode"])
def test_a_png_with_metadata_past_pillows_limit_is_not_called_corrupt(
    kind: bytes, stage: str
) -> None:
    """A photo with a 2 MB comment or ICC profile (compressed) was "the image header is
    corrupt: Decompressed data too large for PngImagePlugin.MAX_TEXT_CHUNK"."""
    out = io.BytesIO()
    Image.new("RGB", (2, 1)).save(out, "PNG")
    data = out.getvalue()
    body = b"Comment\x00\x00" if kind == b"zTXt" else b"icc\x00\x00"
    body += zlib.compress(b"\x00" * 2_000_000)
    chunk = struct.pack(">I", len(body)) + kind + body
    chunk += struct.pack(">I", zlib.crc32(kind + body))
    # Before the pixels, the header's walk meets it; after them, only the full decode.
    at = data.index(b"IDAT" if stage == "probe" else b"IEND") - 4
    read = probe if stage == "probe" else decode
    with pytest.raises(NotAnImageError) as refused:
        read(data[:at] + chunk + data[at:], 100)
    assert str(refused.value) == (
        "the PNG's metadata (a compressed text chunk or ICC profile) inflates past the 1 MiB "
        "the server reads of it: save the image without its metadata, or as JPEG"
    )


def test_a_png_whose_text_chunks_pass_pillows_total_is_not_said_to_have_one_too_big() -> None:
    """70 compressed comments of 1000 KiB each: each under the 1 MiB a chunk may inflate
    to, together past the 64 MiB of text Pillow reads."""
    out = io.BytesIO()
    Image.new("RGB", (2, 1)).save(out, "PNG")
    data = out.getvalue()
    comment = zlib.compress(b"a" * 1000 * 1024)
    chunks = b"".join(png_chunk(b"zTXt", b"c%d\x00\x00" % n + comment) for n in range(70))
    at = data.index(b"IDAT") - 4
    with pytest.raises(NotAnImageError) as refused:
        decode(data[:at] + chunks + data[at:], 100)
    assert str(refused.value) == (
        "the PNG's text metadata inflates past the 64 MiB in all the server reads of it: "
        "save the image without its metadata, or as JPEG"
    )


@pytest.mark.parametrize("frames", [1, 2])
def test_an_apng_whose_poster_is_not_animated_is_read_from_its_animation(frames: int) -> None:
    """The IDAT of an APNG may be a poster left out of its animation: the browser shows the
    animation's first frame, and the server tracked the poster."""
    poster = Image.new("RGB", (2, 1), (0, 0, 0))
    shown = Image.new("RGB", (2, 1), (255, 255, 255))
    out = io.BytesIO()
    poster.save(out, "PNG", save_all=True, append_images=[shown] * frames, default_image=True)
    data = out.getvalue()
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == frames + 1
    assert decode(data, max_pixels=100).tolist() == [[[255, 255, 255]] * 2]
    # One frame besides the poster is a still picture to a browser, not an animation.
    assert animated(data) is (frames > 1)


def test_an_apng_past_its_poster_is_not_turned_by_an_exif_after_the_poster() -> None:
    """Read from the animation's first frame, the APNG was seeked past the poster's pixels,
    which had Pillow read the eXIf after them that browsers ignore."""
    poster = Image.new("RGB", (2, 1), (0, 0, 0))
    shown = Image.new("RGB", (2, 1), (255, 255, 255))
    out = io.BytesIO()
    poster.save(out, "PNG", save_all=True, append_images=[shown] * 2, default_image=True)
    data = out.getvalue()
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    after_idat = data.index(b"IDAT") - 4
    after_idat += 12 + struct.unpack(">I", data[after_idat : after_idat + 4])[0]
    late = data[:after_idat] + png_chunk(b"eXIf", exif.tobytes()) + data[after_idat:]
    assert decode(late, max_pixels=100).tolist() == [[[255, 255, 255]] * 2]
