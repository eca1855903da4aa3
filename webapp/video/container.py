"""What an uploaded file is, from its first bytes and its box layout; no pixel is decoded.

The declared type is only a hint: the bytes decide. MP4 and MOV are ISO base media files
(boxes: a 4-byte size, then a 4-byte type), MKV and WebM are Matroska (an EBML header).
"""

from __future__ import annotations

import struct
from typing import IO

from webapp.content_types import check_declared
from webapp.errors import NotAVideoError, UnsupportedTypeError

SUPPORTED = "MP4, WebM, MOV or MKV"
# Declared types a client may send; the neutral ones leave it to the bytes.
VIDEO_TYPES = frozenset(
    {
        "video/mp4",
        "video/webm",
        "video/quicktime",
        "video/x-matroska",
        "video/matroska",
        "video/x-m4v",
    }
)
ISO_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid"})
EBML = b"\x1a\x45\xdf\xa3"
# Files a client might send by mistake: refused as a wrong type (415), not as corrupt (400).
OTHER_FORMATS = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"RIFF", "a RIFF file (AVI or WAV)"),
    (b"ID3", "an MP3 file"),
    (b"FLV", "an FLV video"),
    (b"OggS", "an Ogg file"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
)
ISO_HEADER = struct.Struct(">I4s")


def check_declared_type(content_type: str) -> None:
    check_declared(
        content_type,
        VIDEO_TYPES,
        f"{SUPPORTED} (video/mp4, video/webm, video/quicktime or video/x-matroska)",
    )


def check_container(file: IO[bytes], size: int) -> str:
    """ "iso" or "matroska"; a known other format is 415, anything else 400."""
    file.seek(0)
    head = file.read(16)
    if head.startswith(EBML):
        return "matroska"
    if len(head) >= 8 and head[4:8] in ISO_BOXES:
        _check_iso_boxes(file, size)
        return "iso"
    for magic, what in OTHER_FORMATS:
        if head.startswith(magic):
            raise UnsupportedTypeError(f"the file is {what}; send {SUPPORTED}")
    raise NotAVideoError("the file is not a video: it has neither an MP4/MOV nor a Matroska header")


def lists_frames(file: IO[bytes]) -> bool:
    """Whether the container lists its frames before them: an MP4/MOV's sample tables do.
    A Matroska file never does, nor a fragmented MP4 (moof boxes: a browser's
    MediaRecorder, a segment saved from a live stream), whose moov holds none: FFmpeg's
    count of either is its duration times a rate guessed from the first frames."""
    file.seek(0)
    head = file.read(16)
    if head.startswith(EBML):
        return False
    offset = 0
    while len(head) >= ISO_HEADER.size:
        length, kind = ISO_HEADER.unpack_from(head)
        if kind == b"moof":
            return False
        if length == 1 and len(head) == 16:
            (length,) = struct.unpack_from(">Q", head, 8)
        if length < ISO_HEADER.size:
            return True  # to the end of the file, or damage check_container reports
        offset += length
        file.seek(offset)
        head = file.read(16)
    return True


def _check_iso_boxes(file: IO[bytes], size: int) -> None:
    """A truncated MP4 still opens and decodes up to where it was cut; its top-level boxes
    say how long it should be, so it is refused here, before any line is streamed."""
    offset = 0
    while offset < size:
        file.seek(offset)
        head = file.read(16)
        if len(head) < ISO_HEADER.size:
            raise NotAVideoError(f"the file is truncated: a box header is cut at byte {offset}")
        length, _ = ISO_HEADER.unpack_from(head)
        if length == 1:  # a 64-bit size follows the type
            if len(head) < 16:
                raise NotAVideoError(f"the file is truncated at byte {offset}")
            (length,) = struct.unpack_from(">Q", head, 8)
        elif length == 0:  # the box runs to the end of the file
            return
        if length < ISO_HEADER.size:
            raise NotAVideoError(f"the file is corrupt: a box at byte {offset} has size {length}")
        if offset + length > size:
            raise NotAVideoError(
                f"the file is truncated: it ends at byte {size}, its boxes at {offset + length}"
            )
        offset += length
