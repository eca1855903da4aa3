"""Reading an uploaded image from a request: multipart field `file` or a raw image body."""

from __future__ import annotations

from aiohttp import web

from webapp.content_types import HEIF_BRANDS, check_declared, multipart_parsing
from webapp.engine.imaging import MIME_TYPES
from webapp.errors import EmptyInputError, UnsupportedTypeError
from webapp.uploads import ENVELOPE_BYTES, FIELD, file_part, read_limited, refuse_declared_size

IMAGE_TYPES = frozenset(MIME_TYPES.values()) | {"image/jpg", "image/pjpeg", "image/x-ms-bmp"}


# ISO BMFF major brands of videos (MP4, MOV, 3GP, M4V, DASH): other brands are images
# (HEIF, AVIF) or raw photos (Canon's CR3, "crx "), which are not videos.
VIDEO_BRANDS = frozenset(
    {b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"qt  ", b"M4V "}
    | {b"M4VH", b"3gp4", b"3gp5", b"3gp6", b"3g2a", b"dash", b"mmp4", b"MSNV", b"XAVC"}
)
# Where a video goes, said to whoever sends one here.
VIDEO_ELSEWHERE = "POST videos to /api/video; /predict takes one image"


def check_declared_type(content_type: str) -> None:
    declared = content_type.split(";")[0].strip().lower()
    if declared.startswith("video/"):
        raise UnsupportedTypeError(f"content type {declared!r} is a video: {VIDEO_ELSEWHERE}")
    check_declared(
        content_type,
        IMAGE_TYPES,
        "image/jpeg, image/png, image/webp, image/bmp, image/gif or image/tiff",
    )


def check_not_heif(data: bytes) -> None:
    """Pillow does not know HEIF, so a phone's photo was a 400 "not an image in any known
    format", as if it were damaged; it is an image of a format outside the list (415)."""
    if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        raise UnsupportedTypeError(
            "HEIC/HEIF images (an iPhone's default) are not supported; send JPEG, PNG, WebP, "
            "BMP, GIF or TIFF"
        )


def check_not_video(data: bytes) -> None:
    """A video sent here (labelled as an image, or not at all) was "not an image in any
    known format", which says nothing of where it should go."""
    mp4 = data[4:8] == b"ftyp" and data[8:12] in VIDEO_BRANDS
    if mp4 or data.startswith(b"\x1a\x45\xdf\xa3"):  # an ISO BMFF box, or EBML (Matroska)
        raise UnsupportedTypeError(
            f"this is a video (MP4/MOV or Matroska/WebM), not an image: {VIDEO_ELSEWHERE}"
        )


async def read_image(request: web.Request, limit: int) -> bytes:
    refuse_declared_size(request, limit, ENVELOPE_BYTES)
    if request.content_type.startswith("multipart/"):
        return await _read_multipart(request, limit)
    check_declared_type(request.content_type)
    data = await read_limited(request.content.read, limit, "image")
    if not data:
        raise EmptyInputError("the request body is empty; send an image")
    return data


async def _read_multipart(request: web.Request, limit: int) -> bytes:
    with multipart_parsing():
        file = await file_part(request, FIELD, ENVELOPE_BYTES, file_limit=limit)
        if file is None:
            raise EmptyInputError(
                f"no multipart field named {FIELD!r}; send the image as {FIELD!r}"
            )
        check_declared_type(file.part.headers.get("Content-Type", ""))
        data = await read_limited(file.read_chunk, limit, "image")
        await file.refuse_another()
    if not data:
        raise EmptyInputError(f"the multipart field {FIELD!r} is empty")
    return data
