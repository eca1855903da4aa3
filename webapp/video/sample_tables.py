"""Whether FFmpeg could be made to index more samples than a video within the limits has.

FFmpeg's MP4 reader builds each track's sample index as the file opens, in the server's own
process, sized by what the file's tables claim; this reads those claims first, by box type,
as FFmpeg would find them. Matroska files have no such tables.
"""

from __future__ import annotations

import array
import itertools
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from webapp.errors import NotAVideoError, TooLargeError, UnsupportedTypeError
from webapp.video.container import EBML, ISO_HEADER, MOST_BOXES, MOST_SAMPLES, top_boxes

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
    for kind, body, length in top_boxes(file):
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
