"""What an uploaded file is, from its first bytes and its box layout; no pixel is decoded.

The declared type is only a hint: the bytes decide. MP4 and MOV are ISO base media files
(boxes: a 4-byte size, then a 4-byte type), MKV and WebM are Matroska (an EBML header).
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from webapp.content_types import HEIF_BRANDS, check_declared
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
        # An Android phone's .3gp (and .3g2) is an ISO file too, as a browser labels it.
        "video/3gpp",
        "video/3gpp2",
    }
)
ISO_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid"})
EBML = b"\x1a\x45\xdf\xa3"
# A segment of an HLS or DASH stream (.m4s) starts with one of these, and holds frames
# that only its stream's initialization segment (init.mp4: ftyp and moov) describes.
SEGMENT_BOXES = frozenset({b"styp", b"sidx", b"moof"})
# Files a client might send by mistake: refused as a wrong type (415), not as corrupt (400).
OTHER_FORMATS = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"ID3", "an MP3 file"),
    (b"FLV", "an FLV video"),
    (b"\x00\x00\x01\xba", "an MPEG program stream (.mpg, .vob)"),
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "an ASF file (.wmv)"),
    (b"OggS", "an Ogg file"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
)
# RIFF says what it holds after its size: a WebP (an animated one looks like a clip) was
# "a RIFF file (AVI or WAV)".
RIFF = b"RIFF"
RIFF_FORMS = {b"WEBP": "a WebP image", b"AVI ": "an AVI video", b"WAVE": "a WAV sound file"}
# ISO files that are pictures (HEIF and AVIF, a phone's photos): an AVIF photo was "the
# video is AV1", and asked to be re-encoded as H.264.
IMAGE_BRANDS = HEIF_BRANDS | {b"avif", b"avis"}
ISO_HEADER = struct.Struct(">I4s")
# An MPEG transport stream (a screen recorder's or a TV capture's .ts, an HLS segment) has
# no header: a sync byte starts each 188-byte packet (192 in a Blu-ray .m2ts, after a
# 4-byte time code): three in a row tell it from noise.
TS_SYNC = 0x47
TS_PACKETS = ((0, 188), (4, 192))
TS_SEEN = 3
# More samples than any video within the limits has (600 s at 240 fps is 144,000): a sample
# table claiming more is not read, so a crafted one cannot make the server list billions.
MOST_SAMPLES = 1_000_000
# More top-level boxes than a video within the limits has (an MP4 fragmented at every
# frame, 10 minutes at 240 fps, has under 300,000); walking 8 million 8-byte boxes (a
# 64 MiB upload) took 6.1 s.
MOST_BOXES = 1_000_000
# A moov larger than a video within the limits needs (10 minutes at 240 fps: about 3 MB
# of sample tables) is not read into memory for its edit list.
MOST_MOOV_BYTES = 16 * 1024 * 1024


def check_declared_type(content_type: str) -> None:
    check_declared(
        content_type,
        VIDEO_TYPES,
        f"{SUPPORTED} (video/mp4, video/webm, video/quicktime or video/x-matroska)",
    )


def check_container(file: IO[bytes], size: int) -> str:
    """ "iso" or "matroska"; a known other format is 415, anything else 400."""
    file.seek(0)
    head = file.read(TS_SEEN * max(packet for _, packet in TS_PACKETS))
    if head.startswith(EBML):
        return "matroska"
    if head[4:8] == b"ftyp" and head[8:12] in IMAGE_BRANDS:
        raise UnsupportedTypeError(f"the file is a HEIF or AVIF image; send {SUPPORTED}")
    if len(head) >= 8 and head[4:8] in ISO_BOXES:
        _check_iso_boxes(file, size)
        return "iso"
    if len(head) >= 8 and head[4:8] in SEGMENT_BOXES:
        raise NotAVideoError(
            "the file is a segment of an MP4 stream (.m4s) without its initialization "
            "segment, which says how to decode it: send them joined (cat init.mp4 "
            "segment.m4s > video.mp4)"
        )
    if head.startswith(RIFF):
        what = RIFF_FORMS.get(head[8:12], "a RIFF file (AVI or WAV)")
        raise UnsupportedTypeError(f"the file is {what}; send {SUPPORTED}")
    for magic, what in OTHER_FORMATS:
        if head.startswith(magic):
            raise UnsupportedTypeError(f"the file is {what}; send {SUPPORTED}")
    syncs = bytes([TS_SYNC] * TS_SEEN)
    if any(head[at::packet][:TS_SEEN] == syncs for at, packet in TS_PACKETS):
        raise UnsupportedTypeError(
            f"the file is an MPEG transport stream (.ts, .m2ts); send {SUPPORTED} "
            "(ffmpeg -i IN.ts -c copy OUT.mp4 rewraps it)"
        )
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
    return all(kind != b"moof" for kind, _, _ in top_boxes(file))


def video_track(file: IO[bytes]) -> bytes | None:
    """The body of an MP4/MOV's first video track (trak), for frames_before_edit() and
    mirroring(); None for Matroska, without one, or when the boxes do not read."""
    try:
        moov = _top_level(file, b"moov")
        if moov is None:
            return None
        for trak in _children(moov, b"trak"):
            mdia = _child(trak, b"mdia")
            if mdia is not None and _child(mdia, b"hdlr", 8, 12) == b"vide":
                return trak
    except (struct.error, ValueError, IndexError):
        pass  # damaged boxes: FFmpeg's own reading, and the checks on it, decide
    return None


def frames_before_edit(trak: bytes | None) -> int:
    """Frames of a video track (video_track()) before the time its edit list starts
    showing it: a cut made without re-encoding (ffmpeg -ss 3.5 -i IN -t 2 -c copy OUT.mp4)
    keeps the frames from the key frame before 3.5 s, which the decoder needs, and an edit
    list that shows from 3.5 s on. FFmpeg decodes them and presents none, yet counts them
    among the track's frames. 0 without a track or such an edit, or when the boxes do not
    read."""
    if trak is None:
        return 0
    try:
        start = _edit_start(trak)
        table = _child(_child(_child(trak, b"mdia") or b"", b"minf") or b"", b"stbl")
        return 0 if start <= 0 or table is None else _before(table, start)
    except (struct.error, ValueError, IndexError):
        return 0


def mirroring(trak: bytes | None) -> Mirror | None:
    """A video track's (video_track()) display matrix when it mirrors the picture (a
    negative determinant: QuickTime's Flip Horizontal, a selfie camera's file): OpenCV's
    FFmpeg backend takes only a rotation from it, and turned a mirrored person upside
    down. None for any other matrix (OpenCV turns those right), or boxes that do not read."""
    tkhd = None if trak is None else _child(trak, b"tkhd")
    if tkhd is None:
        return None
    try:
        # After version and flags, times and ids (20 bytes, or 32 in version 1), then 16
        # bytes of layer, group, volume and reserved: {a b u, c d v, x y w}, 16.16 fixed.
        a, b, _, c, d = struct.unpack_from(">5i", tkhd, 40 if tkhd[0] == 0 else 52)
    except (struct.error, IndexError):
        return None
    sign = (a > 0) - (a < 0), (b > 0) - (b < 0), (c > 0) - (c < 0), (d > 0) - (d < 0)
    if sign[0] * sign[3] - sign[1] * sign[2] != -1:
        return None  # not mirrored, or not a quarter-turn matrix (OpenCV's, as it is)
    return Mirror(*sign)


@dataclass(frozen=True)
class Mirror:
    """A display matrix of quarter turns that mirrors: stored (x, y) is shown at
    (a*x + c*y, b*x + d*y), each of a, b, c, d -1, 0 or 1."""

    a: int
    b: int
    c: int
    d: int

    @property
    def sideways(self) -> bool:
        """Whether the stored frame's width is shown as its height."""
        return self.a == 0

    @property
    def rotation(self) -> int:
        """Degrees clockwise a player turns the stored frame after flipping it left to
        right: 0 for a plain mirror image."""
        # The matrix is the flip, then a rotation {cos sin, -sin cos}: that is {-a -b, c d}.
        return round(math.degrees(math.atan2(-self.b, -self.a))) % 360


def top_boxes(file: IO[bytes]) -> Iterator[tuple[bytes, int, int]]:
    """(type, body offset, body length) of each top-level box, up to MOST_BOXES; a size of
    0 runs to the end of the file, and it stops at one whose size it cannot follow (damage
    check_container reports)."""
    end = file.seek(0, os.SEEK_END)
    offset = 0
    for _ in range(MOST_BOXES):
        file.seek(offset)
        head = file.read(16)
        if len(head) < ISO_HEADER.size:
            return
        length, kind = ISO_HEADER.unpack_from(head)
        skip = ISO_HEADER.size
        if length == 1 and len(head) == 16:  # a 64-bit size follows the type
            (length,) = struct.unpack_from(">Q", head, 8)
            skip = 16
        elif length == 0:
            length = end - offset
        if length < skip:
            return
        yield kind, offset + skip, length - skip
        offset += length


def _top_level(file: IO[bytes], kind: bytes) -> bytes | None:
    """The body of the first top-level box of `kind`, when under MOST_MOOV_BYTES."""
    for found, offset, length in top_boxes(file):
        if found == kind and length <= MOST_MOOV_BYTES:
            file.seek(offset)
            return file.read(length)
    return None


def _children(body: bytes, kind: bytes) -> list[bytes]:
    """The bodies of the boxes of `kind` directly inside `body`."""
    found, offset = [], 0
    while offset + ISO_HEADER.size <= len(body):
        length, child = ISO_HEADER.unpack_from(body, offset)
        if length < ISO_HEADER.size:
            break  # a 64-bit or to-the-end size: no box this one needs is that large
        if child == kind:
            found.append(body[offset + ISO_HEADER.size : offset + length])
        offset += length
    return found


def _child(body: bytes, kind: bytes, start: int = 0, end: int | None = None) -> bytes | None:
    """The first `kind` box's body inside `body` (or its bytes start:end)."""
    found = _children(body, kind)
    return found[0][start:end] if found else None


def _edit_start(trak: bytes) -> int:
    """Where the track's first edit that shows media starts, in its media's units."""
    elst = _child(_child(trak, b"edts") or b"", b"elst")
    if elst is None:
        return 0
    version, count = elst[0], struct.unpack_from(">I", elst, 4)[0]
    entry = struct.Struct(">Qq4x" if version == 1 else ">Ii4x")
    for index in range(count):
        _, media_time = entry.unpack_from(elst, 8 + index * entry.size)
        if media_time >= 0:  # -1 is an empty edit: a late start, not a cut
            return int(media_time)
    return 0


def _before(table: bytes, start: int) -> int:
    """Samples of a sample table presented before `start`: decoding times from stts, each
    moved by its composition offset (ctts) where frames are reordered."""
    stts = _child(table, b"stts")
    if stts is None:
        return 0
    runs = list(struct.iter_unpack(">II", stts[8 : 8 + 8 * _entries(stts)]))
    if sum(count for count, _ in runs) > MOST_SAMPLES:
        return 0
    times: list[int] = []
    clock = 0
    for count, delta in runs:
        times.extend(range(clock, clock + count * delta, delta) if delta else [clock] * count)
        clock += count * delta
    ctts = _child(table, b"ctts")
    if ctts is not None:
        runs = list(struct.iter_unpack(">Ii", ctts[8 : 8 + 8 * _entries(ctts)]))
        if sum(count for count, _ in runs) > MOST_SAMPLES:
            return 0
        offsets = [offset for count, offset in runs for _ in range(count)]
        times = [time + offset for time, offset in zip(times, offsets, strict=False)]
    return sum(1 for time in times if time < start)


def _entries(box: bytes) -> int:
    return int(struct.unpack_from(">I", box, 4)[0])


def _check_iso_boxes(file: IO[bytes], size: int) -> None:
    """A truncated MP4 still opens and decodes up to where it was cut; its top-level boxes
    say how long it should be, so it is refused here, before any line is streamed."""
    offset = 0
    for boxes in range(MOST_BOXES + 1):
        if offset >= size:
            return
        if boxes == MOST_BOXES:
            raise NotAVideoError(
                f"the file has over {MOST_BOXES:,} top-level boxes; no video within the "
                "limits has as many"
            )
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
