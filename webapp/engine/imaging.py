"""Turning untrusted bytes into RGB pixels, refusing anything unsafe before decoding it."""

from __future__ import annotations

import io
import math
import struct
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from cv2.typing import MatLike
from numpy.typing import NDArray
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from webapp.engine import image_layout
from webapp.errors import (
    EmptyInputError,
    NotAnImageError,
    TooManyPixelsError,
    UnsupportedTypeError,
)

# Pillow's own bomb guard warns at one size and raises at another; ours is one
# configurable limit checked against the header before anything is allocated.
Image.MAX_IMAGE_PIXELS = None

SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "MPO"})
MIME_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "GIF": "image/gif",
    "TIFF": "image/tiff",
}
# Variance of the Laplacian on a 256-px-wide grey copy; sharp photos of people
# score in the hundreds, a strong blur falls well below this.
BLUR_THRESHOLD = 40.0
# A JPEG of one colour comes back a level or two either side of it.
FLAT_LEVELS = 4
RGBImage = NDArray[np.uint8]
# The longest side an image may have, whatever its pixel count: MediaPipe aborts its whole
# worker process (SIGABRT, every session there ended) on a side of 32767 px or more; a
# 198-byte PNG of 1x40000 did it. No camera or phone makes a side of this.
MAX_SIDE = 16384
# A video's frames reach a worker scaled down to at most this (webapp/video/decode.py),
# after the video was judged by --video-max-pixels: the server's own size, not an upload's.
VIDEO_WORK_PIXELS = 1280 * 720
# What Pillow's plugins raise on malformed data: the usual I/O and value errors, and the
# four its own Image.open takes to mean "not this format" (a corrupt TIFF tag, for one,
# gives a TypeError from deep inside load()).
CORRUPT = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    TypeError,
    IndexError,
    KeyError,
    struct.error,
)


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int


def probe(data: bytes, max_pixels: int) -> ImageInfo:
    """Reads only the header: format and declared size."""
    if not data:
        raise EmptyInputError("the image is empty (0 bytes)")
    image_layout.check(data)
    try:
        # Pillow warns about malformed metadata (TIFF tags, EXIF) while opening; as in
        # decode, that is not the client's to write into the server's log.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format or "unknown"
                width, height = img.size
    except UnidentifiedImageError:
        raise NotAnImageError("the bytes are not an image in any known format") from None
    except CORRUPT as exc:
        raise _unreadable(exc, "the image header is corrupt") from None
    if fmt not in SUPPORTED_FORMATS:
        raise UnsupportedTypeError(
            f"{fmt} images are not supported; send JPEG, PNG, WebP, BMP, GIF or TIFF"
        )
    if width < 1 or height < 1:
        raise NotAnImageError(f"the image declares an empty size {width}x{height}")
    if max(width, height) > MAX_SIDE:
        raise TooManyPixelsError(
            f"the image declares {width}x{height}; the longest side may be {MAX_SIDE} px"
        )
    if width * height > max_pixels:
        # A size that fits, in the image's shape: "4000 px on the long side" was still over
        # a live frame's limit (--max-frame-pixels, 4 million), as a 4K camera's 3840 was.
        scale = math.sqrt(max_pixels / (width * height))
        fits = f"{max(1, math.floor(width * scale))}x{max(1, math.floor(height * scale))}"
        raise TooManyPixelsError(
            f"the image declares {width}x{height} = {width * height} pixels; "
            f"the limit is {max_pixels}: scale it down first, to {fits} or less (the model "
            "works on far fewer)"
        )
    return ImageInfo(fmt, width, height)


def decode(data: bytes, max_pixels: int) -> RGBImage:
    """Full decode to 8-bit RGB, upright as EXIF says, after the header passed `probe`."""
    probe(data, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                # Taken before the seek: seeking an APNG past its poster reads the chunks
                # after the poster's pixels, and a late eXIf among them joins img.info.
                early_exif = img.info.get("exif")
                img.seek(_first_frame(img))
                upright = (
                    _png_upright(img, early_exif)
                    if img.format == "PNG"
                    else ImageOps.exif_transpose(img)
                )
                rgb = _to_rgb(upright)
    except CORRUPT as exc:
        raise _unreadable(exc, "the image data is corrupt or truncated") from None
    return rgb


# EXIF Orientation -> the turn that makes the picture upright.
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _png_upright(img: Image.Image, early: object) -> Image.Image:
    """A PNG turned as its eXIf chunk before the pixels says: the one orientation browsers
    read (PNG's third edition puts eXIf before IDAT). Pillow also reads an eXIf after the
    pixels, ImageMagick's "Raw profile type exif" text and XMP: a PNG turned by one of those
    alone was answered turned, its points on a picture nobody saw, and the page drew them
    over the photo as the browser shows it, sideways."""
    # `early` is img.info's at open, which stops at the first IDAT; getexif() would read to
    # the end.
    if not isinstance(early, bytes):
        return img
    orientation = Image.Exif()
    orientation.load(early)
    turn = UPRIGHT.get(orientation.get(ExifTags.Base.Orientation, 1))
    return img if turn is None else img.transpose(turn)


def _unreadable(exc: Exception, what: str) -> NotAnImageError:
    """A PNG whose metadata passed Pillow's limits was "the image header is corrupt:
    Decompressed data too large for PngImagePlugin.MAX_TEXT_CHUNK": a photo every browser
    shows, said to be broken, in words for Pillow's developers. Pillow's guards against zip
    bombs there name themselves in their errors: MAX_TEXT_CHUNK (a compressed text chunk or
    ICC profile past 1 MiB) and MAX_TEXT_MEMORY (text past 64 MiB in all)."""
    if isinstance(exc, ValueError) and "MAX_TEXT_MEMORY" in str(exc):
        # Each chunk under 1 MiB, many of them past the total: "a chunk inflates past
        # 1 MiB" sent the sender looking for one that did not.
        return NotAnImageError(
            "the PNG's text metadata inflates past the 64 MiB in all the server reads of "
            "it: save the image without its metadata, or as JPEG"
        )
    if isinstance(exc, ValueError) and "MAX_TEXT_CHUNK" in str(exc):
        return NotAnImageError(
            "the PNG's metadata (a compressed text chunk or ICC profile) inflates past the "
            "1 MiB the server reads of it: save the image without its metadata, or as JPEG"
        )
    return NotAnImageError(f"{what}: {exc}")


ANIMATED_FORMATS = frozenset({"GIF", "WEBP", "PNG"})


def _first_frame(img: Image.Image) -> int:
    """The frame a viewer shows first. An APNG's default image (its IDAT) may be left out
    of its animation, a poster for viewers that cannot animate; Pillow counts it as frame
    0, and a person in every frame of the animation, as the browser showed it, was
    answered no_person from a blank poster."""
    return 1 if img.format == "PNG" and getattr(img, "default_image", False) else 0


def _frames_shown(img: Image.Image) -> int:
    return int(getattr(img, "n_frames", 1)) - _first_frame(img)


def animated(data: bytes) -> bool:
    """Whether an image (GIF, WebP, APNG) has frames after its first, which decode() leaves
    out: said, so that a first frame with nobody in it is not taken for the whole."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                # A phone's JPEG with a second picture (an MPO: Ultra HDR's gain map) and a
                # TIFF of several pages are "animated" to Pillow, but not to anyone else.
                return img.format in ANIMATED_FORMATS and _frames_shown(img) > 1
    except CORRUPT:
        return False


def _to_rgb(img: Image.Image) -> RGBImage:
    if img.mode in {"I;16", "I;16B", "I;16L", "I", "F"}:
        # 16-bit, 32-bit and float greyscale: scale to 8 bits rather than clip to white.
        # float32 and in place: a 25 MP image in float64 held three 200 MB arrays at once.
        wide = np.array(img, dtype=np.float32)
        np.nan_to_num(wide, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        peak = float(wide.max())
        # Float images hold 0 to 1 as a rule: converted as they were, 0.8 was 0, and a
        # person in one came back as nobody in a black picture.
        # Nothing above 0 is black whatever the scale; a negative one would invert it.
        wide *= 255.0 if img.mode == "F" and 0.0 < peak <= 1.0 else 255.0 / max(peak, 1e-30)
        grey = np.clip(wide, 0, 255, out=wide).astype(np.uint8)
        return np.ascontiguousarray(np.stack([grey] * 3, axis=-1))
    if img.mode in {"RGBA", "LA", "PA"} or (img.mode == "P" and "transparency" in img.info):
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
        return np.ascontiguousarray(np.asarray(background, dtype=np.uint8))
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def _small(image: MatLike) -> MatLike:
    height, width = image.shape[:2]
    scale = 256.0 / max(1, width)
    if scale >= 1.0:
        return image
    return cv2.resize(image, (256, max(1, round(height * scale))), interpolation=cv2.INTER_AREA)


def sharpness(rgb: RGBImage) -> float:
    grey = _small(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def flat(rgb: RGBImage) -> bool:
    """Whether the image is one colour throughout (a lens cap, a blank canvas): it has
    sharpness 0, but nothing in it is blurred, and there is nobody to find."""
    small = _small(rgb).reshape(-1, 3)
    return bool((small.max(axis=0).astype(int) - small.min(axis=0)).max() <= FLAT_LEVELS)
