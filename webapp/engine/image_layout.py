"""Counting the pieces Pillow would read one at a time in Python, before it reads them.

Pillow opens a JPEG by walking its marker segments, a PNG by walking its chunks and a GIF by
walking its blocks, each in a Python loop. Ten megabytes of the smallest pieces (4-byte JPEG
comments, empty PNG chunks, 1-byte GIF sub-blocks) took it 1.6-4.6 s per open, and a frame
is opened twice: by the server's probe and again by the worker. Counting here costs
milliseconds; the limits are far above what any camera, phone or editor writes.
"""

from __future__ import annotations

import numpy as np

from webapp.errors import NotAnImageError

JPEG_MAGIC = b"\xff\xd8"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GIF_MAGICS = (b"GIF87a", b"GIF89a")
# A progressive photo has about ten scans; libjpeg walks every block of the image again
# for each one, so a 0.9 MB file of 20,000 empty scans over 5000x5000 took a worker 36 s.
MAX_JPEG_SCANS = 100
# A phone's photo has 10-40 segments. Metadata may hold bytes that look like markers (one
# in about 1260 random bytes), so this allows some 10 MB of random metadata.
MAX_JPEG_SEGMENTS = 10_000
# libpng writes 8 KiB IDAT chunks: 1280 for a 10 MiB PNG.
MAX_PNG_CHUNKS = 20_000
# Encoders write 255-byte sub-blocks: 41,000 for 10 MiB, all frames together.
MAX_GIF_BLOCKS = 100_000
_SOS = 0xDA
# After 0xFF: 0x00 is a stuffed byte in entropy-coded data, 0xFF fill, and D0-D9 the
# restart markers, SOI and EOI, none of which opens a segment Pillow walks.
_NOT_SEGMENTS = np.zeros(256, dtype=bool)
_NOT_SEGMENTS[[0x00, 0xFF, *range(0xD0, 0xDA)]] = True


def check(data: bytes) -> None:
    """Raises NotAnImageError for a JPEG, PNG or GIF of too many pieces; passes the rest."""
    if data.startswith(JPEG_MAGIC):
        _check_jpeg(data)
    elif data.startswith(PNG_MAGIC):
        _check_png(data)
    elif data.startswith(GIF_MAGICS):
        _check_gif(data)


def _check_jpeg(data: bytes) -> None:
    raw = np.frombuffer(data, dtype=np.uint8)
    after_ff = raw[1:][raw[:-1] == 0xFF]
    markers = after_ff[~_NOT_SEGMENTS[after_ff]]
    scans = int(np.count_nonzero(markers == _SOS))
    if scans > MAX_JPEG_SCANS:
        raise NotAnImageError(
            f"the JPEG has {scans} scans; a photo has a few, and more than "
            f"{MAX_JPEG_SCANS} are refused"
        )
    if markers.size > MAX_JPEG_SEGMENTS:
        raise NotAnImageError(
            f"the JPEG has {markers.size} marker segments; a photo has a few dozen, and more "
            f"than {MAX_JPEG_SEGMENTS} are refused"
        )


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
    blocks = 0
    at = 13 + _colour_table(data, 10)
    while at < len(data):
        introducer = data[at]
        if introducer == 0x21:
            at += 2
        elif introducer == 0x2C:
            at += 10 + _colour_table(data, at + 9) + 1
        else:
            return
        # Each block ends in a chain of sub-blocks, each its length byte then its data.
        while at < len(data):
            blocks += 1
            if blocks > MAX_GIF_BLOCKS:
                raise NotAnImageError(
                    f"the GIF has more than {MAX_GIF_BLOCKS} blocks; an image has a few "
                    "thousand per megabyte at most"
                )
            size = data[at]
            at += 1 + size
            if size == 0:
                break


def _colour_table(data: bytes, flags_at: int) -> int:
    """The size in bytes of the colour table whose flags byte is at `flags_at`, if any."""
    if flags_at >= len(data) or not data[flags_at] & 0x80:
        return 0
    return 3 * (2 << (data[flags_at] & 0x07))
