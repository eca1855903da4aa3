"""Videos for POST /api/video tests, cut from the shared media, and a reader of its lines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import cv2
from aiohttp import web

from tests.conftest import Client
from webapp.video.decode import encode


def write_clip(
    source: Path,
    target: Path,
    count: int,
    *,
    size: tuple[int, int] | None = None,
    fps: float | None = None,
    fourcc: str = "mp4v",
    turn: int | None = None,
) -> Path:
    """The first `count` frames of `source`, re-encoded (MPEG-4 part 2, which the wheel's
    FFmpeg can write), turned by `turn` (a cv2.ROTATE_ code), resized to `size` and retimed
    to `fps` when given."""
    capture = cv2.VideoCapture(str(source))
    rate = fps or capture.get(cv2.CAP_PROP_FPS)
    writer: cv2.VideoWriter | None = None
    written = 0
    try:
        while written < count:
            ok, bgr = capture.read()
            if not ok:
                break
            if turn is not None:
                bgr = cv2.rotate(bgr, turn)
            if size is not None:
                bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
            if writer is None:
                height, width = bgr.shape[:2]
                code = cv2.VideoWriter.fourcc(*fourcc)
                writer = cv2.VideoWriter(str(target), code, rate, (width, height))
                assert writer.isOpened(), f"cannot write {target} with {fourcc}"
            writer.write(bgr)
            written += 1
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    assert written == count
    return target


def decoded_frames(path: Path) -> list[tuple[float, bytes]]:
    """(presentation time, the JPEG the server sends its worker) of every frame, decoded
    here on its own, as a live client would send them."""
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames: list[tuple[float, bytes]] = []
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                return frames
            frames.append((float(capture.get(cv2.CAP_PROP_POS_MSEC)), encode(bgr)))
    finally:
        capture.release()


async def post(
    client: Client, body: bytes, query: str = "", content_type: str = "video/mp4"
) -> aiohttp.ClientResponse:
    return await client.post(
        "/api/video" + query, data=body, headers={"Content-Type": content_type}
    )


async def lines(response: aiohttp.ClientResponse) -> list[dict[str, Any]]:
    """Every line of a streamed answer; the last one is the summary."""
    assert response.status == 200, await response.text()
    assert response.content_type == "application/x-ndjson"
    found = [json.loads(line) async for line in response.content if line.strip()]
    assert "summary" in found[-1]
    assert all("summary" not in line for line in found[:-1])
    return found


@contextlib.asynccontextmanager
async def served(app: web.Application) -> AsyncIterator[str]:
    """The app on a free port the way `python -m webapp` runs it: a handler whose client
    left is cancelled (handler_cancellation, as the test client's server does too), and
    the client is a real socket that can leave mid-upload."""
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def _boxes(
    data: bytes | bytearray, start: int, end: int, path: tuple[bytes, ...]
) -> list[tuple[int, int]]:
    """(offset, size) of each box on `path` (b"moov", b"trak"...), from the outermost."""
    offset = start
    while offset < end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        if kind == path[0]:
            if len(path) == 1:
                return [(offset, size)]
            return [(offset, size), *_boxes(data, offset + 8, offset + size, path[1:])]
        offset += size
    raise AssertionError(f"no {path[0]!r} box")


TRACK = (b"moov", b"trak")
MEDIA_BOXES = (*TRACK, b"mdia", b"minf", b"stbl")


def retime(clip: Path, target: Path, runs: list[tuple[int, float]], *, edit_list: bool) -> Path:
    """`clip` (one video track, as write_clip writes it) with its frames timed by `runs`:
    (count, fps) stretches, as a phone records a dim scene. Its sample table (stts) says the
    new times; with `edit_list` the container's durations (mvhd, tkhd, mdhd and the edit
    list) are brought along, without it they keep saying the old length, so the edit list
    hides the frames past it."""
    data = bytearray(clip.read_bytes())
    mdhd = _boxes(data, 0, len(data), (*TRACK, b"mdia", b"mdhd"))[-1][0]
    mvhd = _boxes(data, 0, len(data), (b"moov", b"mvhd"))[-1][0]
    assert data[mdhd + 8] == data[mvhd + 8] == 0, "version 0 boxes expected"
    (media_scale,) = struct.unpack_from(">I", data, mdhd + 20)
    (movie_scale,) = struct.unpack_from(">I", data, mvhd + 20)
    deltas = [(count, round(media_scale / fps)) for count, fps in runs]
    length = sum(count * delta for count, delta in deltas)
    body = struct.pack(">II", 0, len(deltas)) + b"".join(struct.pack(">II", *d) for d in deltas)
    stts = struct.pack(">I4s", 8 + len(body), b"stts") + body
    *outer, (offset, size) = _boxes(data, 0, len(data), (*MEDIA_BOXES, b"stts"))
    data[offset : offset + size] = stts
    for box, box_size in outer:  # only moov follows mdat: no chunk offset moves
        struct.pack_into(">I", data, box, box_size + len(stts) - size)
    if edit_list:
        movie_length = round(length * movie_scale / media_scale)
        struct.pack_into(">I", data, mdhd + 24, length)
        struct.pack_into(">I", data, mvhd + 24, movie_length)
        tkhd = _boxes(data, 0, len(data), (*TRACK, b"tkhd"))[-1][0]
        struct.pack_into(">I", data, tkhd + 28, movie_length)
        elst = _boxes(data, 0, len(data), (*TRACK, b"edts", b"elst"))[-1][0]
        struct.pack_into(">I", data, elst + 16, movie_length)
    target.write_bytes(bytes(data))
    return target


def damaged(clip: Path, target: Path) -> Path:
    """`clip` with the last two thirds of its frames' bytes scrambled: it opens, its first
    frames decode, and FFmpeg gives up on the rest without an error of its own."""
    data = bytearray(clip.read_bytes())
    offset, size = _boxes(data, 0, len(data), (b"mdat",))[0]
    for i in range(offset + 8 + (size - 8) // 3, offset + size, 7):
        data[i] ^= 0x55
    target.write_bytes(bytes(data))
    return target


def stored_sideways(source: Path, target: Path, count: int) -> Path:
    """The first `count` frames of `source` as a phone stores a video filmed in portrait:
    each frame lying on its side (a quarter turn counter-clockwise), and the track's display
    matrix telling players to turn it a quarter clockwise, back upright."""
    write_clip(source, target, count, turn=cv2.ROTATE_90_COUNTERCLOCKWISE)
    # What FFmpeg writes for a 90-degree rotation.
    return with_display_matrix(target, target, (0, 1, -1, 0))


def with_display_matrix(clip: Path, target: Path, abcd: tuple[int, int, int, int]) -> Path:
    """`clip` (an MP4 as write_clip writes it) whose video track tells players to show
    stored (x, y) at (a*x + c*y, b*x + d*y): ISO/IEC 14496-12's matrix {a b u, c d v,
    x y w}, 16.16 fixed point but w 2.30."""
    data = bytearray(clip.read_bytes())
    tkhd = _boxes(data, 0, len(data), (*TRACK, b"tkhd"))[-1][0]
    assert data[tkhd + 8] == 0, "a version 0 tkhd expected"
    a, b, c, d = (v << 16 for v in abcd)
    struct.pack_into(">9i", data, tkhd + 48, a, b, 0, c, d, 0, 0, 0, 1 << 30)
    target.write_bytes(bytes(data))
    return target


def _vint(data: bytes | bytearray, at: int, *, marker: bool = False) -> tuple[int, int]:
    """An EBML variable-length integer at `at`: (value, length); an element id keeps its
    length marker."""
    length = 1
    while not data[at] & (0x80 >> (length - 1)):
        length += 1
        assert length <= 8, f"no EBML integer at byte {at}"
    value = data[at] if marker else data[at] & ((0x80 >> (length - 1)) - 1)
    for byte in data[at + 1 : at + length]:
        value = (value << 8) | byte
    return value, length


def _elements(data: bytes | bytearray, start: int, end: int) -> list[tuple[int, int, int]]:
    """(id, body offset, body size) of each EBML element in data[start:end]."""
    found = []
    while start < end:
        ident, id_length = _vint(data, start, marker=True)
        size, size_length = _vint(data, start + id_length)
        body = start + id_length + size_length
        found.append((ident, body, size))
        start = body + size
    return found


SEGMENT, INFO, DURATION, CLUSTER, TIMESTAMP, SIMPLE_BLOCK = (
    0x18538067,
    0x1549A966,
    0x4489,
    0x1F43B675,
    0xE7,
    0xA3,
)


def retime_matroska(clip: Path, target: Path, times_ms: list[float], duration_ms: float) -> Path:
    """`clip` (a Matroska file as write_clip writes it: millisecond timestamps, no B-frames)
    with its frames at `times_ms` and its Info's duration `duration_ms`; every size stays."""
    data = bytearray(clip.read_bytes())
    blocks: list[tuple[int, int]] = []  # (offset, its cluster's timestamp)
    ((_, segment, segment_size),) = (e for e in _elements(data, 0, len(data)) if e[0] == SEGMENT)
    for ident, body, size in _elements(data, segment, segment + segment_size):
        if ident not in (INFO, CLUSTER):
            continue  # not every element holds elements: a Void is zeros
        children = _elements(data, body, body + size)
        if ident == INFO:
            ((_, at, width),) = (c for c in children if c[0] == DURATION)
            struct.pack_into(">d" if width == 8 else ">f", data, at, duration_ms)
        elif ident == CLUSTER:
            ((_, at, width),) = (c for c in children if c[0] == TIMESTAMP)
            base = int.from_bytes(data[at : at + width], "big")
            blocks += [(at, base) for kind, at, _ in children if kind == SIMPLE_BLOCK]
    assert len(blocks) == len(times_ms)
    for (at, base), time_ms in zip(blocks, times_ms, strict=True):
        _, track_length = _vint(data, at)
        struct.pack_into(">h", data, at + track_length, round(time_ms) - base)
    target.write_bytes(bytes(data))
    return target


VOID = 0xEC


def without_duration(clip: Path, target: Path) -> Path:
    """`clip` (a Matroska or WebM file as write_clip writes it) as a browser's MediaRecorder
    writes a live WebM: no Duration in its Info, the element blanked to a Void of the same
    length, so every size and offset stays."""
    data = bytearray(clip.read_bytes())
    ((_, segment, segment_size),) = (e for e in _elements(data, 0, len(data)) if e[0] == SEGMENT)
    children = _elements(data, segment, segment + segment_size)
    ((_, info, info_size),) = (e for e in children if e[0] == INFO)
    ((_, body, size),) = (e for e in _elements(data, info, info + info_size) if e[0] == DURATION)
    start = body - 3  # its two-byte id and a one-byte size
    assert data[start : start + 3] == bytes([0x44, 0x89, 0x80 | size])
    data[start : body + size] = bytes([VOID, 0x80 | (size + 1)]) + bytes(size + 1)
    target.write_bytes(bytes(data))
    return target


TRACKS, TRACK_ENTRY, DEFAULT_DURATION = 0x1654AE6B, 0xAE, 0x23E383


def without_frame_rate(clip: Path, target: Path) -> Path:
    """`clip` (a Matroska or WebM file as write_clip writes it) as a browser's MediaRecorder
    writes its track: no DefaultDuration, so the file states no frame rate; the element
    blanked to a Void of the same length, so every size and offset stays."""
    data = bytearray(clip.read_bytes())
    ((_, segment, segment_size),) = (e for e in _elements(data, 0, len(data)) if e[0] == SEGMENT)
    ((_, tracks, tracks_size),) = (
        e for e in _elements(data, segment, segment + segment_size) if e[0] == TRACKS
    )
    ((_, entry, entry_size),) = (
        e for e in _elements(data, tracks, tracks + tracks_size) if e[0] == TRACK_ENTRY
    )
    ((_, body, size),) = (
        e for e in _elements(data, entry, entry + entry_size) if e[0] == DEFAULT_DURATION
    )
    start = body - 4  # its three-byte id and a one-byte size
    assert data[start : start + 4] == bytes([0x23, 0xE3, 0x83, 0x80 | size])
    data[start : body + size] = bytes([VOID, 0x80 | (size + 2)]) + bytes(size + 2)
    target.write_bytes(bytes(data))
    return target


def _box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def fragmented(clip: Path, target: Path, start_ms: float = 0.0) -> Path:
    """`clip` (one video track in one chunk, as write_clip writes it) as a fragmented MP4,
    as a browser's MediaRecorder or a live stream writes one: its moov lists no frame, and
    one moof lists them all, from `start_ms` on the track's clock (its tfdt: a segment saved
    from a stream starts where the stream was)."""
    data = clip.read_bytes()

    def raw(path: tuple[bytes, ...]) -> bytes:
        offset, size = _boxes(data, 0, len(data), path)[-1]
        return data[offset : offset + size]

    def no_duration(box: bytes, at: int) -> bytes:  # a version 0 box's duration field
        assert box[8] == 0, "a version 0 box expected"
        return box[:at] + bytes(4) + box[at + 4 :]

    mdhd, tkhd = raw((*TRACK, b"mdia", b"mdhd")), raw((*TRACK, b"tkhd"))
    (timescale,) = struct.unpack_from(">I", mdhd, 20)
    (track,) = struct.unpack_from(">I", tkhd, 20)
    stts = raw((*MEDIA_BOXES, b"stts"))
    runs = struct.iter_unpack(">II", stts[16 : 16 + 8 * struct.unpack_from(">I", stts, 12)[0]])
    deltas = [delta for count, delta in runs for _ in range(count)]
    stsz = raw((*MEDIA_BOXES, b"stsz"))
    assert struct.unpack_from(">I", stsz, 12) == (0,), "one size a sample expected"
    sizes = list(struct.unpack_from(f">{len(deltas)}I", stsz, 20))
    stss = raw((*MEDIA_BOXES, b"stss"))
    sync = set(struct.unpack_from(f">{struct.unpack_from('>I', stss, 12)[0]}I", stss, 16))
    stco = raw((*MEDIA_BOXES, b"stco"))
    assert struct.unpack_from(">II", stco, 12)[0] == 1, "one chunk expected"
    (chunk,) = struct.unpack_from(">I", stco, 16)
    empty = bytes(8)  # version, flags and no entries
    stbl = _box(
        b"stbl",
        raw((*MEDIA_BOXES, b"stsd")),
        _box(b"stts", empty),
        _box(b"stsc", empty),
        _box(b"stsz", bytes(12)),
        _box(b"stco", empty),
    )
    minf = _box(
        b"minf",
        raw((*TRACK, b"mdia", b"minf", b"vmhd")),
        raw((*TRACK, b"mdia", b"minf", b"dinf")),
        stbl,
    )
    mdia = _box(b"mdia", no_duration(mdhd, 24), raw((*TRACK, b"mdia", b"hdlr")), minf)
    trex = _box(b"trex", struct.pack(">IIIIII", 0, track, 1, 0, 0, 0))
    moov = _box(
        b"moov",
        no_duration(raw((b"moov", b"mvhd")), 24),
        _box(b"trak", no_duration(tkhd, 28), mdia),
        _box(b"mvex", trex),
    )

    def moof(data_offset: int) -> bytes:
        samples = b"".join(
            struct.pack(">III", delta, size, 0x02000000 if n in sync else 0x01010000)
            for n, (delta, size) in enumerate(zip(deltas, sizes, strict=True), start=1)
        )
        # trun: data offset, and each sample's duration, size and flags (a key frame or not)
        trun = _box(b"trun", struct.pack(">IIi", 0x000701, len(sizes), data_offset), samples)
        tfhd = _box(b"tfhd", struct.pack(">II", 0x020000, track))  # base: the moof
        tfdt = _box(b"tfdt", struct.pack(">IQ", 1 << 24, round(start_ms * timescale / 1000)))
        return _box(
            b"moof", _box(b"mfhd", struct.pack(">II", 0, 1)), _box(b"traf", tfhd, tfdt, trun)
        )

    fragment = moof(len(moof(0)) + 8)
    mdat = _box(b"mdat", data[chunk : chunk + sum(sizes)])
    target.write_bytes(raw((b"ftyp",)) + moov + fragment + mdat)
    return target


def relabelled(clip: Path, target: Path, codec_id: bytes) -> Path:
    """`clip` (a Matroska file as write_clip writes it: MPEG-4 part 2) with its track's
    CodecID `codec_id` (b"V_AV1"...), zero-padded as Matroska allows: FFmpeg opens it, with
    its size and rate, and hands its frames to that codec's decoder."""
    data = bytearray(clip.read_bytes())
    written = b"V_MPEG4/ISO/ASP"
    at = data.index(b"\x86" + bytes([0x80 | len(written)]) + written) + 2  # CodecID, 15 bytes
    data[at : at + len(written)] = codec_id.ljust(len(written), b"\0")
    target.write_bytes(bytes(data))
    return target


def cut_by_edit_list(clip: Path, target: Path, skip: int) -> Path:
    """`clip` (one video track, as write_clip writes it: a key frame every 12 frames) as
    a cut made without re-encoding (ffmpeg -ss 3.5 -i IN -t 2 -c copy OUT.mp4) lays it out:
    every frame kept, and an edit list that shows the track from frame `skip` on. The
    frames before it stay for the decoder, which needs the key frame they start with."""
    data = bytearray(clip.read_bytes())
    mdhd = _boxes(data, 0, len(data), (*TRACK, b"mdia", b"mdhd"))[-1][0]
    mvhd = _boxes(data, 0, len(data), (b"moov", b"mvhd"))[-1][0]
    (media_scale,) = struct.unpack_from(">I", data, mdhd + 20)
    (movie_scale,) = struct.unpack_from(">I", data, mvhd + 20)
    stts = _boxes(data, 0, len(data), (*MEDIA_BOXES, b"stts"))[-1][0]
    assert struct.unpack_from(">I", data, stts + 12) == (1,), "one frame rate expected"
    count, delta = struct.unpack_from(">II", data, stts + 16)
    shown = round((count - skip) * delta * movie_scale / media_scale)
    elst = _boxes(data, 0, len(data), (*TRACK, b"edts", b"elst"))[-1][0]
    assert data[elst + 8] == 0, "a version 0 elst expected"
    assert struct.unpack_from(">I", data, elst + 12) == (1,), "one edit expected"
    struct.pack_into(">Ii", data, elst + 16, shown, skip * delta)
    tkhd = _boxes(data, 0, len(data), (*TRACK, b"tkhd"))[-1][0]
    struct.pack_into(">I", data, tkhd + 28, shown)
    struct.pack_into(">I", data, mvhd + 24, shown)
    target.write_bytes(bytes(data))
    return target


def with_pixel_aspect(clip: Path, target: Path, wide: int, tall: int) -> Path:
    """`clip` (one video track, as write_clip writes it) with a pasp box in its sample entry:
    each stored pixel is shown `wide`:`tall`, as a DVD's or an HDV camera's are."""
    data = bytearray(clip.read_bytes())
    *outer, (stsd, _) = _boxes(data, 0, len(data), (*MEDIA_BOXES, b"stsd"))
    entry = stsd + 16  # after its version, flags and entry count
    (entry_size,) = struct.unpack_from(">I", data, entry)
    pasp = struct.pack(">I4sII", 16, b"pasp", wide, tall)
    data[entry + entry_size : entry + entry_size] = pasp
    for box in (*(offset for offset, _ in outer), stsd, entry):
        (size,) = struct.unpack_from(">I", data, box)
        struct.pack_into(">I", data, box, size + len(pasp))  # only moov follows mdat
    target.write_bytes(bytes(data))
    return target


def _resized(data: bytes, path: tuple[bytes, ...], at: int, cut: int, new: bytes) -> bytes:
    """`data` with `cut` bytes at `at`, inside the last box on `path`, replaced by `new`, and
    the sizes of the boxes on `path` brought along. In a clip as write_clip writes it only
    moov follows mdat, so no chunk offset moves."""
    out = bytearray(data[:at] + new + data[at + cut :])
    for box, size in _boxes(data, 0, len(data), path):
        struct.pack_into(">I", out, box, size + len(new) - cut)
    return bytes(out)


def _with_box(data: bytes, parent: tuple[bytes, ...], box: bytes) -> bytes:
    """`data` with `box` (a whole box) in place of the parent's child of its type."""
    *_, (offset, size) = _boxes(data, 0, len(data), (*parent, box[4:8]))
    return _resized(data, parent, offset, size, box)


def _appended(data: bytes, parent: tuple[bytes, ...], box: bytes) -> bytes:
    """`data` with `box` (a whole box) added at the end of the parent."""
    return _resized(data, parent, sum(_boxes(data, 0, len(data), parent)[-1]), 0, box)


def claiming_samples(clip: Path, target: Path, count: int) -> Path:
    """`clip` (one video track, as write_clip writes it) with its sample table claiming
    `count` samples the size of its first, all in its first chunk, as the reviewer's 1.2 KB
    MP4 claims 89 million (stts, stsc and stsz rewritten): FFmpeg indexes every one, 24
    bytes each, as it opens the file."""
    data = clip.read_bytes()
    *_, (stsz, _) = _boxes(data, 0, len(data), (*MEDIA_BOXES, b"stsz"))
    first = struct.unpack_from(">I", data, stsz + 20)[0]  # after a 0, "each its own size"
    *_, (stts, _) = _boxes(data, 0, len(data), (*MEDIA_BOXES, b"stts"))
    delta = struct.unpack_from(">I", data, stts + 20)[0]
    for box in (
        _box(b"stts", struct.pack(">IIII", 0, 1, count, delta)),
        _box(b"stsc", struct.pack(">IIIII", 0, 1, 1, count, 1)),
        _box(b"stsz", struct.pack(">III", 0, first, count)),
    ):
        data = _with_box(data, MEDIA_BOXES, box)
    target.write_bytes(data)
    return target


def hiding_samples(clip: Path, target: Path, count: int) -> Path:
    """claiming_samples, with the stsz moved into the sample description, after the codec's
    own boxes: FFmpeg reads a table wherever in a track it meets one."""
    data = claiming_samples(clip, target, count).read_bytes()
    *_, (stsz, stsz_size) = _boxes(data, 0, len(data), (*MEDIA_BOXES, b"stsz"))
    moved = data[stsz : stsz + stsz_size]
    data = _resized(data, MEDIA_BOXES, stsz, stsz_size, b"")
    *_, (stsd, _) = _boxes(data, 0, len(data), (*MEDIA_BOXES, b"stsd"))
    entry = stsd + 16  # after its version, flags and entry count
    (entry_size,) = struct.unpack_from(">I", data, entry)
    data = _resized(data, (*MEDIA_BOXES, b"stsd"), entry + entry_size, 0, moved)
    out = bytearray(data)
    struct.pack_into(">I", out, entry, entry_size + len(moved))
    target.write_bytes(bytes(out))
    return target


def with_edits(clip: Path, target: Path, count: int) -> Path:
    """`clip` (as write_clip writes it: one edit showing it all) with that edit `count`
    times over: FFmpeg copies the track's index for each."""
    data = clip.read_bytes()
    *_, (elst, size) = _boxes(data, 0, len(data), (*TRACK, b"edts", b"elst"))
    edit = data[elst + 16 : elst + 28]
    box = _box(b"elst", struct.pack(">II", 0, count), edit * count)
    target.write_bytes(_resized(data, (*TRACK, b"edts"), elst, size, box))
    return target


def fragment_claiming(clip: Path, target: Path, count: int) -> Path:
    """`clip` as a fragmented MP4 whose one trun claims `count` samples and describes none:
    each takes the defaults of the movie's trex, so the box stays 20 bytes, and FFmpeg
    indexes every one."""
    data = fragmented(clip, target).read_bytes()
    *_, (trex, _) = _boxes(data, 0, len(data), (b"moov", b"mvex", b"trex"))
    data = data[: trex + 20] + struct.pack(">II", 512, 100) + data[trex + 28 :]
    *_, (trun, size) = _boxes(data, 0, len(data), (b"moof", b"traf", b"trun"))
    box = _box(b"trun", struct.pack(">IIi", 0x000001, count, 0))  # a data offset only
    target.write_bytes(_resized(data, (b"moof", b"traf"), trun, size, box))
    return target


def with_pcm_sound(clip: Path, target: Path, *, chunks: int, per_chunk: int) -> Path:
    """`clip` with a second track of 16-bit stereo sound at 48 kHz, stored uncompressed as
    a camera's MOV stores it ('twos'): one stts run of 1-unit samples, one size for all,
    `chunks` chunks of `per_chunk` samples, every chunk at the clip's first byte of media.
    FFmpeg indexes such a track by chunk (in pieces of up to 1024 samples), not by sample."""
    data = clip.read_bytes()
    media = _boxes(data, 0, len(data), (b"mdat",))[0][0] + 8
    samples = min(chunks * per_chunk, 0xFFFFFFFF)
    entry = _box(
        b"twos", bytes(6), struct.pack(">HHHIHHHHI", 1, 0, 0, 0, 2, 16, 0, 0, 48_000 << 16)
    )
    table = _box(
        b"stbl",
        _box(b"stsd", struct.pack(">II", 0, 1), entry),
        _box(b"stts", struct.pack(">IIII", 0, 1, samples, 1)),
        _box(b"stsc", struct.pack(">IIIII", 0, 1, 1, per_chunk, 1)),
        _box(b"stsz", struct.pack(">III", 0, 4, samples)),
        _box(b"stco", struct.pack(">II", 0, chunks), struct.pack(">I", media) * chunks),
    )
    dref = _box(b"dref", struct.pack(">II", 0, 1), _box(b"url ", struct.pack(">I", 1)))
    minf = _box(b"minf", _box(b"smhd", bytes(8)), _box(b"dinf", dref), table)
    mdhd = _box(b"mdhd", struct.pack(">IIIIIHH", 0, 0, 0, 48_000, samples, 0x55C4, 0))
    hdlr = _box(b"hdlr", struct.pack(">II4s12x", 0, 0, b"soun"), b"SoundHandler\0")
    matrix = struct.pack(">9i", 1 << 16, 0, 0, 0, 1 << 16, 0, 0, 0, 1 << 30)
    # Track 2, enabled, full volume, no width or height.
    head = struct.pack(">IIIIII8xhhHH", 7, 0, 0, 2, 0, 0, 0, 0, 0x0100, 0)
    tkhd = _box(b"tkhd", head, matrix, bytes(8))
    trak = _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf))
    target.write_bytes(_appended(data, (b"moov",), trak))
    return target


def compressed_moov(clip: Path, target: Path) -> Path:
    """`clip` with its moov compressed, as QuickTime 3 could: a cmov box (zlib) that FFmpeg
    inflates and reads as the moov."""
    data = clip.read_bytes()
    offset, size = _boxes(data, 0, len(data), (b"moov",))[0]
    moov = data[offset : offset + size]
    packed = _box(b"cmvd", struct.pack(">I", len(moov)), zlib.compress(moov))
    cmov = _box(b"moov", _box(b"cmov", _box(b"dcom", b"zlib"), packed))
    target.write_bytes(data[:offset] + cmov + data[offset + size :])
    return target


def encrypted(clip: Path, target: Path, samples: int) -> Path:
    """`clip` (one video track, as write_clip writes it) marked as encrypted with Common
    Encryption: a tenc box (no IV of each sample's own: one constant IV) and a senc box
    listing `samples` samples' key information, which is then 8 bytes, whatever the count."""
    data = clip.read_bytes()
    # Version 0; protected; no per-sample IV; a zero key ID; an 8-byte constant IV.
    tenc = _box(b"tenc", bytes(4), bytes([0, 0, 1, 0]), bytes(16), bytes([8]), bytes(8))
    senc = _box(b"senc", struct.pack(">II", 0, samples))
    target.write_bytes(_appended(_appended(data, MEDIA_BOXES, tenc), MEDIA_BOXES, senc))
    return target


def held_upload(
    client: Client, clip: bytes, go_on: asyncio.Event, headers: dict[str, str] | None = None
) -> asyncio.Task[aiohttp.ClientResponse]:
    """An upload of `clip` to /api/video whose first kilobyte arrives at once and the rest
    at `go_on`; `headers` besides its Content-Type."""

    async def slow_body() -> AsyncIterator[bytes]:
        yield clip[:1000]
        await go_on.wait()
        yield clip[1000:]

    return asyncio.create_task(
        client.post(
            "/api/video", data=slow_body(), headers={"Content-Type": "video/mp4", **(headers or {})}
        )
    )
