"""Counting the steps Pillow would take one at a time in Python, before it takes them.

Pillow opens a JPEG by walking its marker segments (and any stray bytes between them, one
by one), a PNG by walking its chunks and a GIF by walking its blocks, each in a Python loop.
Ten megabytes of the smallest pieces (4-byte JPEG comments, 0xFF fill, empty PNG chunks,
1-byte GIF sub-blocks, stray bytes) took it 1.6-5.8 s per open, and a frame is opened twice:
by the server's probe and again by the worker. The walks here stop at their limits, far
above what any camera, phone or editor writes, so they cost milliseconds.
"""

from __future__ import annotations

from webapp.errors import NotAnImageError

JPEG_MAGIC = b"\xff\xd8"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GIF_MAGICS = (b"GIF87a", b"GIF89a")
# A progressive photo has about ten scans; libjpeg walks every block of the image again
# for each one, so a 0.9 MB file of 20,000 empty scans over 5000x5000 took a worker 36 s.
MAX_JPEG_SCANS = 100
# Segments and stray bytes before the first scan: a phone's photo has 10-40 segments, and
# their lengths carry the walk over what they hold, however big (EXIF, ICC, XMP).
MAX_JPEG_STEPS = 10_000
# libpng writes 8 KiB IDAT chunks: 1280 for a 10 MiB PNG.
MAX_PNG_CHUNKS = 20_000
# Encoders write 255-byte sub-blocks: 41,000 for 10 MiB, all frames together.
MAX_GIF_BLOCKS = 100_000
SOS, EOI = b"\xff\xda", b"\xff\xd9"
# Markers Pillow reads no length after: JPG, RST0-7, SOI, EOI and JPG0-13.
_BARE_MARKERS = frozenset({0xC8, *range(0xD0, 0xDA), *range(0xF0, 0xFE)})


def check(data: bytes) -> None:
    """Raises NotAnImageError for a JPEG, PNG or GIF of too many pieces; passes the rest."""
    if data.startswith(JPEG_MAGIC):
        _check_jpeg(data)
    elif data.startswith(PNG_MAGIC):
        _check_png(data)
    elif data.startswith(GIF_MAGICS):
        _check_gif(data)


def _check_jpeg(data: bytes) -> None:
    first_scan = _jpeg_header_end(data)
    # The scans are those of the first image: what follows its end (a motion photo's video,
    # an MPO's second picture) is not decoded. Entropy-coded data cannot hold 0xFFDA.
    end = data.find(EOI, first_scan)
    scans = 1 + data.count(SOS, first_scan, len(data) if end < 0 else end)
    if scans > MAX_JPEG_SCANS:
        raise NotAnImageError(
            f"the JPEG has {scans} scans; a photo has a few, and more than "
            f"{MAX_JPEG_SCANS} are refused"
        )


def _jpeg_header_end(data: bytes) -> int:
    """Where Pillow's walk of the header ends: after the first scan's header. It steps as
    Pillow does: over a stray byte, a fill byte, a bare marker or a whole segment."""
    at, steps = len(JPEG_MAGIC), 0
    while at + 1 < len(data):
        steps += 1
        if steps > MAX_JPEG_STEPS:
            raise NotAnImageError(
                f"the JPEG has more than {MAX_JPEG_STEPS} segments or stray bytes before its "
                "image; a photo has a few dozen"
            )
        if data[at] != 0xFF or data[at + 1] == 0xFF:
            at += 1
        elif data[at + 1] == 0x00 or data[at + 1] in _BARE_MARKERS:
            at += 2
        elif data[at + 1] >= 0xC0:
            marker = data[at + 1]
            at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
            if marker == SOS[1]:
                return at
        else:
            break  # no marker Pillow knows: it refuses the file itself
    return len(data)


def _check_png(data: bytes) -> None:
    at = len(PNG_MAGIC)
    chunks = 0
    # A chunk is its 4-byte length, 4-byte type, data and 4-byte CRC; what follows IEND,
    # or a length past the end, is Pillow's to call truncated or ignore.
    while at + 8 <= len(data):
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            raise NotAnImageError(
                f"the PNG has more than {MAX_PNG_CHUNKS} chunks; an image has a few "
                "thousand at most"
            )
        if data[at + 4 : at + 8] == b"IEND":
            return
        at += 12 + int.from_bytes(data[at : at + 4], "big")


def _check_gif(data: bytes) -> None:
    steps = 0
    at = 13 + _colour_table(data, 10)
    while at < len(data):
        steps = _gif_step(steps)
        introducer = data[at]
        if introducer == 0x3B:  # the trailer
            return
        if introducer == 0x21:
            at += 2
        elif introducer == 0x2C:
            at += 10 + _colour_table(data, at + 9) + 1
        else:
            at += 1  # a stray byte, which Pillow steps over as well
            continue
        # Each block ends in a chain of sub-blocks, each its length byte then its data.
        while at < len(data):
            steps = _gif_step(steps)
            size = data[at]
            at += 1 + size
            if size == 0:
                break


def _gif_step(steps: int) -> int:
    if steps >= MAX_GIF_BLOCKS:
        raise NotAnImageError(
            f"the GIF has more than {MAX_GIF_BLOCKS} blocks or stray bytes; an image has a "
            "few thousand per megabyte at most"
        )
    return steps + 1


def _colour_table(data: bytes, flags_at: int) -> int:
    """The size in bytes of the colour table whose flags byte is at `flags_at`, if any."""
    if flags_at >= len(data) or not data[flags_at] & 0x80:
        return 0
    return 3 * (2 << (data[flags_at] & 0x07))
