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
        _check_has_video(_matroska_track_kinds(file, size))
        return "matroska"
    if len(head) >= 8 and head[4:8] in ISO_BOXES:
        _check_iso_boxes(file, size)
        _check_has_video(_iso_track_kinds(file, size))
        return "iso"
    for magic, what in OTHER_FORMATS:
        if head.startswith(magic):
            raise UnsupportedTypeError(f"the file is {what}; send {SUPPORTED}")
    raise NotAVideoError("the file is not a video: it has neither an MP4/MOV nor a Matroska header")


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


def _check_has_video(kinds: list[str] | None) -> None:
    """An audio file in an MP4 or WebM container (a voice memo, an .m4a) opened as no video
    at all: FFmpeg's failure said "it may be corrupt". `kinds` None: the tracks were not
    found, and the decoder decides."""
    if kinds and "video" not in kinds:
        raise UnsupportedTypeError(
            f"the file has no video track, only {' and '.join(sorted(set(kinds)))}; "
            f"send a video: {SUPPORTED}"
        )


def _boxes(file: IO[bytes], start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, body offset, body end) of each box in file[start:end], by their headers only."""
    found = []
    while start + ISO_HEADER.size <= end:
        file.seek(start)
        head = file.read(16)
        length, kind = ISO_HEADER.unpack_from(head)
        body = start + ISO_HEADER.size
        if length == 1 and len(head) == 16:
            (length,) = struct.unpack_from(">Q", head, 8)
            body += 8
        elif length == 0:
            length = end - start
        if length < body - start or start + length > end:
            break
        found.append((kind, body, start + length))
        start += length
    return found


ISO_HANDLERS = {b"vide": "video", b"soun": "audio"}


def _iso_track_kinds(file: IO[bytes], size: int) -> list[str] | None:
    """What each track of the movie holds, by its handler (moov/trak/mdia/hdlr)."""
    kinds = []
    for kind, body, end in _boxes(file, 0, size):
        if kind != b"moov":
            continue
        for trak, trak_body, trak_end in _boxes(file, body, end):
            if trak != b"trak":
                continue
            for mdia, mdia_body, mdia_end in _boxes(file, trak_body, trak_end):
                if mdia != b"mdia":
                    continue
                for hdlr, hdlr_body, _ in _boxes(file, mdia_body, mdia_end):
                    if hdlr == b"hdlr":
                        # version and flags, pre_defined, then the handler type
                        file.seek(hdlr_body + 8)
                        handler = file.read(4)
                        kinds.append(ISO_HANDLERS.get(handler, handler.decode("latin-1")))
    return kinds or None


MKV_SEGMENT = 0x18538067
MKV_TRACKS = 0x1654AE6B
MKV_TRACK_ENTRY = 0xAE
MKV_TRACK_TYPE = 0x83
MKV_CLUSTER = 0x1F43B675
MKV_TRACK_TYPES = {1: "video", 2: "audio", 17: "subtitles"}


def _ebml(file: IO[bytes], start: int, end: int) -> list[tuple[int, int, int]]:
    """(id, body offset, body end) of each EBML element in file[start:end]; one of unknown
    size (a live WebM's segment and clusters) ends the list, reaching to `end`."""
    found = []
    while start < end:
        file.seek(start)
        head = file.read(12)
        ident = _vint(head, 0, marker=True)
        if ident is None:
            break
        size = _vint(head, ident[1])
        if size is None:
            break
        body = start + ident[1] + size[1]
        unknown = size[0] == (1 << (7 * size[1])) - 1
        stop = end if unknown else min(body + size[0], end)
        found.append((ident[0], body, stop))
        if unknown:
            break
        start = body + size[0]
    return found


def _vint(data: bytes, at: int, *, marker: bool = False) -> tuple[int, int] | None:
    """(value, length) of the EBML variable-length integer at data[at]; an id keeps its
    length marker. None where there is none."""
    if at >= len(data) or not data[at]:
        return None
    length = 8 - data[at].bit_length() + 1
    if at + length > len(data):
        return None
    value = data[at] if marker else data[at] & ((1 << (8 - length)) - 1)
    for byte in data[at + 1 : at + length]:
        value = (value << 8) | byte
    return value, length


def _matroska_track_kinds(file: IO[bytes], size: int) -> list[str] | None:
    """What each track holds, by its TrackType (Segment/Tracks/TrackEntry/TrackType)."""
    kinds = []
    for ident, body, end in _ebml(file, 0, size):
        if ident != MKV_SEGMENT:
            continue
        for child, child_body, child_end in _ebml(file, body, end):
            if child == MKV_CLUSTER:
                break  # the tracks come before the frames
            if child != MKV_TRACKS:
                continue
            for entry, entry_body, entry_end in _ebml(file, child_body, child_end):
                if entry != MKV_TRACK_ENTRY:
                    continue
                for field, field_body, field_end in _ebml(file, entry_body, entry_end):
                    if field == MKV_TRACK_TYPE:
                        file.seek(field_body)
                        number = int.from_bytes(file.read(min(8, field_end - field_body)), "big")
                        kinds.append(MKV_TRACK_TYPES.get(number, f"type {number}"))
    return kinds or None
