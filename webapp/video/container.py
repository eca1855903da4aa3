"""What an uploaded file is, from its first bytes and its box layout; no pixel is decoded.

The declared type is only a hint: the bytes decide. MP4 and MOV are ISO base media files
(boxes: a 4-byte size, then a 4-byte type), MKV and WebM are Matroska (an EBML header).
"""

from __future__ import annotations

import array
import itertools
import math
import os
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from webapp.content_types import HEIF_BRANDS, check_declared
from webapp.errors import NotAVideoError, TooLargeError, UnsupportedTypeError

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
# Samples a second of video, with its sound, lists at most: 240 fps and AAC's 47 frames a
# second are under 300; the rest leaves room for a second sound track and an edit or two.
# A longer --video-max-seconds than 1,000 s raises the bound above MOST_SAMPLES with it.
SAMPLES_PER_SECOND = 1000
# Where FFmpeg's MP4 reader (libavformat/mov.c) meets one of these inside a track, it takes
# it for that track's, at any depth: inside a sample description too, or a udta. It sizes
# the track's sample index (24 bytes a sample, built as the file opens) by stsz/stz2's
# count, or for uncompressed sound timed by a single stts run of 1 by stsc's samples per
# chunk (in pieces of 160 to 1024) times stco/co64's chunks; each edit in elst copies it
# again; hdlr says whether the track is sound. A fragment's trun adds its own count.
INDEX_TABLES = (b"stsz", b"stz2", b"stts", b"stsc", b"stco", b"co64", b"elst", b"hdlr")
TRACK, FRAGMENT_RUN = b"trak", b"trun"
# A compressed moov (cmov: zlib, an option of QuickTime 3 no current writer uses): FFmpeg
# inflates and reads it, so its tables cannot be checked before it does.
COMPRESSED_MOOV = b"cmov"
# Encryption (Common Encryption, as DRM streams use): with a tenc or schm anywhere, FFmpeg
# keeps each sample's key information that a senc or saiz box lists, about 470 bytes a
# sample and no cap: 1.3 KB listing 6 million took 2.9 GB. The server has no key to decode
# such a video, so it is refused. A count from INT_MAX / 8 FFmpeg refuses itself (so does
# text that reads as one: "presence" holds a senc).
PROTECTION = frozenset({b"tenc", b"schm"})
PROTECTED_SAMPLES = frozenset({b"senc", b"saiz"})
UNPROTECTED_SAMPLES = 0x7FFFFFFF // 8
# Top-level boxes FFmpeg does not read inside: the media, padding and opaque extensions.
# A free or hoov box that opens with a movie header is read as the moov, as FFmpeg does.
OPAQUE_BOXES = frozenset({b"mdat", b"wide", b"free", b"skip", b"hoov", b"uuid"})
MOOV_HEADS = frozenset({b"mvhd", COMPRESSED_MOOV})
HANDLERS = frozenset({b"vide", b"soun", b"subp", b"clcp"})  # those that set a track's kind
# FFmpeg indexes a chunk of uncompressed sound in pieces of at least this many samples.
FEWEST_PIECE_SAMPLES = 160
# A stsz or trun count from which FFmpeg refuses to index at all (UINT_MAX / 24 bytes an
# entry): not counted, so a comment's "truncated" read as a trun box does not refuse a file.
UNINDEXED_SAMPLES = 0xFFFFFFFF // 24
SCAN_BYTES = 4 * 1024 * 1024
# A box's header (up to 16 bytes) and the first 24 of its body: every field this check reads
# but stsc's entries.
HEAD_BYTES = 40
# More tracks, sample tables, or boxes in a track, than any video has: each costs reading.
MOST_TRACKS = 100
MOST_TABLES = 1000
MOST_CHILDREN = 1000
# stsc entries are read this many bytes at a time (a whole number of 12-byte entries).
ENTRY_BLOCK = 12 * 65536
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
    return all(kind != b"moof" for kind, _, _ in _top_boxes(file))


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


def _top_boxes(file: IO[bytes]) -> Iterator[tuple[bytes, int, int]]:
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
    for found, offset, length in _top_boxes(file):
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


def most_samples(max_seconds: float) -> int:
    """The most samples a file's tables may list for a video of at most `max_seconds`."""
    return max(MOST_SAMPLES, math.ceil(max_seconds * SAMPLES_PER_SECOND))


def check_sample_tables(file: IO[bytes], most: int) -> None:
    """Refuses an MP4/MOV whose tables would have FFmpeg index more than `most` samples
    (413), before FFmpeg opens it: it builds that index in the server's own process, and
    1.2 KB claiming 89 million samples took 2.2 GB there. The tables are found by their
    box types wherever FFmpeg might read them in a track, not only where they belong. A
    compressed moov or an encrypted file, whose tables cost FFmpeg as much unchecked, is
    refused (415)."""
    file.seek(0)
    if file.read(len(EBML)) == EBML:
        return
    found = _Found(file)
    for start, end in _read_boxes(file):
        found.scan(start, end)
    if found.protected and found.protected_samples:
        raise UnsupportedTypeError(
            "the video is encrypted (Common Encryption, as DRM streams are); this server "
            "has no key to decode it"
        )
    listed = found.fragment_samples
    for track in found.tracks:
        track.sound = _read_as_sound(file, track)
        listed += track.indexed()
    if listed > most:
        raise TooLargeError(
            f"the file's sample tables list {listed:,} samples (frames and sound); a video "
            f"within the limits has at most {most:,}: the file is corrupt or crafted"
        )


@dataclass
class _Track:
    """What FFmpeg sizes one track's sample index by: every table found in its bytes."""

    start: int
    end: int
    handlers: set[bytes] = field(default_factory=set)
    sound: bool = False  # FFmpeg surely takes it for sound (_read_as_sound)
    samples: int = 0  # the most a stsz or stz2 lists
    uniform: bool = False  # a stts of one run of 1-unit samples: uncompressed sound's
    varied: bool = False  # any other stts
    chunks: int = 0  # the most a stco or co64 lists
    chunk_samples: int = 0  # the most samples a stsc puts in a chunk
    edits: int = 1

    def indexed(self) -> int:
        """The most index entries FFmpeg makes of it (mov_build_index, then mov_fix_index
        for each edit): by chunk only for sound it surely reads as such, by sample unless
        it surely does not; either way, the larger."""
        by_chunk = 0
        if self.uniform:
            by_chunk = self.chunks * -(-self.chunk_samples // FEWEST_PIECE_SAMPLES)
        by_sample = 0 if self.sound and self.uniform and not self.varied else self.samples
        return self.edits * max(by_chunk, by_sample)

    def note(self, table: _Table) -> None:
        """Takes in what one table in its bytes says."""
        kind, head = table.kind, table.head
        if kind == b"hdlr":
            self.handlers.add(head[8:12])
        elif kind in (b"stsz", b"stz2"):
            self.samples = max(self.samples, _indexable(_field(head, 8)))
        elif kind == b"stts":
            uniform = _field(head, 4) == _field(head, 12) == 1
            self.uniform, self.varied = self.uniform or uniform, self.varied or not uniform
        elif kind == b"stsc":
            self.chunk_samples = max(self.chunk_samples, table.most)
        elif kind in (b"stco", b"co64"):
            self.chunks = max(self.chunks, min(_field(head, 4), table.most))
        elif kind == b"elst":
            self.edits = max(self.edits, table.most)


@dataclass(frozen=True)
class _Table:
    kind: bytes
    at: int
    head: bytes  # its body's first 24 bytes
    most: int = 0  # what its entries say at most: see _Found._most


@dataclass
class _Found:
    """The tracks, tables and fragments' samples of a file, found by box type."""

    file: IO[bytes]
    tracks: list[_Track] = field(default_factory=list)
    tables: int = 0  # tracks and their tables
    runs: int = 0  # fragments' trun boxes, and encryption boxes
    fragment_samples: int = 0
    entry_bytes: int = 0  # stsc entries read
    protected: bool = False  # a tenc or schm box
    protected_samples: int = 0  # what senc and saiz boxes list

    def scan(self, start: int, end: int) -> None:
        tables: list[_Table] = []
        for kind, at, head in _box_types(self.file, start, end):
            body, stop = _box(head, at, end)
            if not body:
                continue  # a size FFmpeg stops at: it never reads the box
            self._count(kind)
            if kind == COMPRESSED_MOOV:
                _refuse_compressed(head, body - at)
            elif kind == FRAGMENT_RUN:
                self.fragment_samples += _indexable(_field(head, body - at + 4))
            elif kind in PROTECTION:
                self.protected = True
            elif kind in PROTECTED_SAMPLES:
                self.protected_samples += _protected_samples(kind, head[body - at :])
            elif kind == TRACK:
                self.tracks.append(_Track(at, stop))
            else:
                tables.append(_Table(kind, at, head[body - at :], self._most(kind, body, stop)))
        for table in tables:
            # Each track around it takes it: a track's bytes can hold a fake trak type.
            for track in self.tracks:
                if track.start < table.at < track.end:
                    track.note(table)

    def _most(self, kind: bytes, body: int, end: int) -> int:
        """The most samples a stsc entry puts in a chunk; the chunks a stco or co64 can
        list, as FFmpeg reads entries past the box while the file lasts; the edits an elst
        holds, counted by its size as FFmpeg counts them."""
        if kind == b"stsc":
            most, read = _most_per_chunk(self.file, body, end)
            self.entry_bytes += read
            if self.entry_bytes > self.file.seek(0, os.SEEK_END):
                raise NotAVideoError("the file's sample-to-chunk tables overlap")
            return most
        if kind in (b"stco", b"co64"):
            width = 4 if kind == b"stco" else 8
            return max(0, self.file.seek(0, os.SEEK_END) - body - 8) // width
        if kind == b"elst":
            return (end - body - 8) // (20 if _read(self.file, body, 1) == b"\1" else 12)
        return 0

    def _count(self, kind: bytes) -> None:
        """Refuses more tracks, tables or fragments than any video has: each costs some
        reading, and a crafted file can hold millions."""
        if kind == FRAGMENT_RUN or kind in PROTECTION | PROTECTED_SAMPLES:
            self.runs += 1  # one a fragment, in a fragmented file
        else:
            self.tables += 1
        tracks = len(self.tracks) + (kind == TRACK)
        if tracks > MOST_TRACKS or self.tables > MOST_TABLES or self.runs > MOST_BOXES:
            raise NotAVideoError(
                f"the file has over {MOST_TRACKS} tracks, {MOST_TABLES:,} sample tables or "
                f"{MOST_BOXES:,} fragments; no video has as many"
            )


def _read_boxes(file: IO[bytes]) -> Iterator[tuple[int, int]]:
    """(start, end) of each top-level box FFmpeg reads the boxes inside of, its own header
    included: a top-level trak is read as one in the moov."""
    start = 0
    for kind, body, length in _top_boxes(file):
        moov = kind in (b"free", b"hoov") and _read(file, body + 4, 4) in MOOV_HEADS
        if kind not in OPAQUE_BOXES or moov:
            yield start, body + length
        start = body + length


def _box_types(file: IO[bytes], start: int, end: int) -> Iterator[tuple[bytes, int, bytes]]:
    """(type, offset of its box, the box's first HEAD_BYTES) of every place in
    file[start:end] where a type this check reads stands, whether or not the boxes around
    it lead there."""
    kinds = (*INDEX_TABLES, TRACK, FRAGMENT_RUN, COMPRESSED_MOOV, *PROTECTION, *PROTECTED_SAMPLES)
    for offset in range(start, end, SCAN_BYTES):
        file.seek(offset)
        # A box found near this piece's end has its head read with it, and is found once.
        piece = file.read(min(SCAN_BYTES + HEAD_BYTES, end - offset))
        for kind in kinds:
            at = piece.find(kind)
            while 0 <= at < SCAN_BYTES:
                box = offset + at - 4
                head = piece[at - 4 : at - 4 + HEAD_BYTES] if at >= 4 else b""
                if box >= 0:
                    # FFmpeg reads a field past its box's end as long as the file lasts.
                    yield kind, box, head if len(head) == HEAD_BYTES else _head(file, box)
                at = piece.find(kind, at + 1)


def _box(head: bytes, at: int, limit: int) -> tuple[int, int]:
    """(body offset, end) of the box at `at` that starts with `head`, cut at `limit` as
    FFmpeg cuts a box that overruns its parent; (0, 0) for a size FFmpeg stops at."""
    length, header = _field(head, 0), ISO_HEADER.size
    if length == 1:  # a 64-bit size follows the type
        length, header = int.from_bytes(head[8:16], "big"), 16
    elif length == 0:  # to the end of its parent
        length = limit - at
    if length < header:
        return 0, 0
    return at + header, min(at + length, limit)


def _refuse_compressed(head: bytes, header: int) -> None:
    """A cmov box FFmpeg would inflate (a dcom box first) is refused."""
    if head[header + 4 : header + 8] == b"dcom":
        raise UnsupportedTypeError(
            "the file's movie header is compressed (cmov, an old QuickTime option), which "
            "this server does not read; rewrap it (ffmpeg -i IN -c copy OUT.mp4)"
        )


def _read_as_sound(file: IO[bytes], track: _Track) -> bool:
    """Whether FFmpeg surely takes the track for sound: no hdlr anywhere in it says
    otherwise (FFmpeg takes the last it reads), and one FFmpeg does read, in the trak or its
    mdia, says soun."""
    if track.handlers & HANDLERS != {b"soun"}:
        return False
    body, _ = _box(_head(file, track.start), track.start, track.end)
    read = itertools.islice(_track_boxes(file, body, track.end), MOST_CHILDREN)
    return any(kind == b"hdlr" and _read(file, at + 8, 4) == b"soun" for kind, at in read)


def _track_boxes(file: IO[bytes], start: int, end: int) -> Iterator[tuple[bytes, int]]:
    """(type, body offset) of the boxes in a trak and in its mdia, as FFmpeg reads them."""
    for kind, body, stop in _in_order(file, start, end):
        yield kind, body
        if kind == b"mdia":
            yield from ((inner, at) for inner, at, _ in _in_order(file, body, stop))


def _in_order(file: IO[bytes], start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, body offset, end) of the boxes in file[start:end] as FFmpeg reads them (its
    mov_read_default): a size under 8 ends the box they are in, and so does a trak or mdat
    (taken for a broken file)."""
    offset = start
    while offset + ISO_HEADER.size <= end:
        head = _head(file, offset)
        body, stop = _box(head, offset, end)
        if not body or head[4:8] in (TRACK, b"mdat"):
            return
        yield head[4:8], body, stop
        offset = stop


def _most_per_chunk(file: IO[bytes], body: int, end: int) -> tuple[int, int]:
    """The most samples one of a stsc box's entries (first chunk, samples, description)
    puts in a chunk, and the bytes read for it; FFmpeg refuses a box too short for the
    entries it says it has."""
    count = min(_field(_read(file, body, 8), 4), max(0, end - body - 8) // 12)
    most, offset, stop = 0, body + 8, body + 8 + 12 * count
    while offset < stop:
        block = _read(file, offset, min(ENTRY_BLOCK, stop - offset))
        entries = array.array("I", block[: len(block) // 12 * 12])
        if sys.byteorder == "little":
            entries.byteswap()  # stored big-endian
        most = max(most, max(entries[1::3], default=0))
        offset += ENTRY_BLOCK
    return most, 12 * count


def _protected_samples(kind: bytes, body: bytes) -> int:
    """The samples a senc or saiz box (`body`: its first 24 bytes) lists; a saiz box's count
    follows its default size, and an aux_info_type and its parameter when its flags say so."""
    typed = len(body) > 3 and body[3] & 1
    count = _field(body, 4 if kind == b"senc" else 13 if typed else 5)
    return count if count < UNPROTECTED_SAMPLES else 0


def _indexable(count: int) -> int:
    return count if count < UNINDEXED_SAMPLES else 0


def _field(head: bytes, at: int) -> int:
    """The 32-bit number at `at` in `head`, 0 where it is cut short by the file's end."""
    found = head[at : at + 4]
    return int.from_bytes(found, "big") if len(found) == 4 else 0


def _head(file: IO[bytes], at: int) -> bytes:
    return _read(file, at, HEAD_BYTES)


def _read(file: IO[bytes], at: int, size: int) -> bytes:
    file.seek(at)
    return file.read(size)
