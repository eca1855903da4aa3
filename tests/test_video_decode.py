"""POST /api/video's decoder on its own (no model): every frame of a variable-rate video at
its own time, a decode that ends short reported as an error, FFmpeg kept off stderr, and
decimation's kept times."""

from __future__ import annotations

import io
import itertools
import os
import random
import re
import struct
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from cv2.typing import MatLike

from tests.media import ASL_VIDEO, CUT_BETWEEN_KEYFRAMES, GESTURE_VIDEO, MEDIA, ROOT
from tests.videos import (
    cut_by_edit_list,
    damaged,
    fragmented,
    relabelled,
    retime,
    retime_matroska,
    stored_sideways,
    with_display_matrix,
    with_pixel_aspect,
    without_frame_rate,
    write_clip,
)
from webapp.config import Config
from webapp.config_checks import MAX_VIDEO_FPS, MAX_VIDEO_SECONDS
from webapp.errors import (
    NotAVideoError,
    TooLargeError,
    TooManyPixelsError,
    UnsupportedTypeError,
)
from webapp.video.container import MOST_BOXES, check_container
from webapp.video.decode import VideoInfo, VideoReader

# 15 frames at 30 fps, 15 at 15 fps, 15 at 30 fps: 2 s, as a phone records a dim stretch.
VFR_RUNS = [(15, 30.0), (15, 15.0), (15, 30.0)]
VFR_TIMES = list(
    itertools.accumulate((1000 / fps for n, fps in VFR_RUNS for _ in range(n)), initial=0.0)
)[:-1]


def read_all(
    path: Path, max_fps: float = 30.0, max_pixels: int = 1920 * 1080
) -> tuple[VideoReader, list[float]]:
    reader = VideoReader(path, max_seconds=600.0, max_pixels=max_pixels, max_fps=max_fps)
    times: list[float] = []
    try:
        while (frame := reader.next()) is not None:
            times.append(frame.time_ms)
    finally:
        reader.close()
    return reader, times


@pytest.fixture(scope="module")
def clip45(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(ASL_VIDEO, tmp_path_factory.mktemp("vfr") / "clip.mp4", 45, fps=30.0)


def test_a_variable_rate_video_gives_every_frame_at_its_own_time(
    clip45: Path, tmp_path: Path
) -> None:
    vfr = retime(clip45, tmp_path / "vfr.mp4", VFR_RUNS, edit_list=True)
    reader, times = read_all(vfr)
    assert reader.info.frames == reader.decoded == len(times) == 45
    assert reader.skipped == 0
    assert times == pytest.approx(VFR_TIMES, abs=0.01)


def test_a_phones_jittery_30_fps_keeps_every_frame(clip45: Path, tmp_path: Path) -> None:
    """A phone's 30 fps is 28 to 39 ms between frames, 29.4 a second on average: slotted
    every 33.3 ms, two frames fell in one slot now and then and 4 of 50 were dropped from a
    video no faster than --video-max-fps. At or under it on average, every frame is kept."""
    gaps = [28.0, 39.0, 31.0, 37.0, 34.0] * 9
    runs = [(1, 1000.0 / gap) for gap in gaps]
    jittery = retime(clip45, tmp_path / "jittery.mp4", runs, edit_list=True)
    reader, times = read_all(jittery, max_fps=30.0)
    assert reader.info.fps <= 30.0
    assert (reader.skipped, len(times)) == (0, 45)
    # Faster than the limit on average, it is thinned as before.
    _, fewer = read_all(jittery, max_fps=20.0)
    assert len(fewer) < 45 * 20.0 / reader.info.fps + 2


def test_a_browsers_jittery_webm_that_states_no_rate_keeps_every_frame(
    tmp_path: Path,
) -> None:
    """A browser's MediaRecorder writes no frame rate, and of a camera's uneven gaps FFmpeg
    guesses none: OpenCV then says 1000 fps (one over the 1 ms time base), the video was
    slotted every 33.3 ms, and where two gaps put two frames in one slot, one was dropped."""
    pick = random.Random(1)
    gaps = [pick.choice([28.0, 30.0, 33.0, 34.0, 36.0, 39.0]) for _ in range(59)]
    times = [sum(gaps[:i]) for i in range(60)]
    # VP8, as browsers write it: an MPEG-4 stream states its rate in its own headers.
    clip = write_clip(
        ASL_VIDEO, tmp_path / "clip.webm", 60, fps=30.0, size=(160, 120), fourcc="VP80"
    )
    jittery = retime_matroska(clip, tmp_path / "jittery.webm", times, times[-1] + 33.0)
    browser = without_frame_rate(jittery, tmp_path / "browser.webm")
    reader, kept = read_all(browser, max_fps=30.0)
    assert (reader.skipped, len(kept)) == (0, 60)
    assert reader.info.as_json()["fps"] is None
    # Faster than the limit, it is still thinned to it, and a second's worth more.
    dense = retime_matroska(clip, tmp_path / "dense.webm", [i * 10.0 for i in range(60)], 600.0)
    reader, kept = read_all(without_frame_rate(dense, tmp_path / "dense_browser.webm"), 30.0)
    assert len(kept) <= 30.0 * (0.6 + 1.0) + 1


def test_a_container_that_understates_its_rate_is_still_thinned(tmp_path: Path) -> None:
    """A review's Matroska file said 1 fps and held 3000 frames in 3 s: kept whole, as a
    video no faster than the limit, it cost 33 times the frames. Here 300 frames 1 ms
    apart in a file that says 30 fps: at most 30 a second since the first, and a second's
    worth more."""
    clip = write_clip(ASL_VIDEO, tmp_path / "clip.mkv", 300, fps=30.0, size=(160, 120))
    dense = retime_matroska(clip, tmp_path / "dense.mkv", [float(i) for i in range(300)], 300.0)
    reader, times = read_all(dense, max_fps=30.0)
    assert reader.info.fps <= 30.0
    assert len(times) <= 30.0 * (0.3 + 1.0) + 1
    assert reader.skipped == 300 - len(times)


def test_dci_4k_is_taken_and_a_bigger_video_is_told_how_to_shrink(tmp_path: Path) -> None:
    """Action cameras and drones record 4096x2160; the limit was UHD's 3840x2160, and its
    413 said nothing of what to do."""
    clip = write_clip(ASL_VIDEO, tmp_path / "dci.mp4", 2, size=(4096, 2160))
    reader, times = read_all(clip, max_pixels=Config().video_max_pixels)
    assert (reader.info.width, reader.info.height, len(times)) == (4096, 2160, 2)
    with pytest.raises(TooManyPixelsError) as refused:
        read_all(clip, max_pixels=3840 * 2160)
    assert "scale it down first" in refused.value.detail


def test_the_pixel_limit_takes_a_frame_at_it_and_refuses_one_over(tmp_path: Path) -> None:
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.mp4", 2, size=(160, 90))
    assert len(read_all(clip, max_pixels=160 * 90)[1]) == 2
    with pytest.raises(TooManyPixelsError):
        read_all(clip, max_pixels=160 * 90 - 1)


def test_a_video_stated_a_little_longer_than_the_limit_is_refused_before_a_frame(
    tmp_path: Path,
) -> None:
    """11 frames at 2 fps: 5.5 s, half a second over a 5 s --video-max-seconds. Refused at
    its first frame, as the container states it, not cut at 5 s as if complete."""
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.mp4", 11, size=(160, 90), fps=2.0)
    reader = VideoReader(clip, max_seconds=5.0, max_pixels=10**6, max_fps=30.0)
    try:
        with pytest.raises(TooLargeError, match=r"lasts 5\.5 s; the limit is 5 s"):
            reader.next()
    finally:
        reader.close()
    reader, times = read_all(clip)
    assert len(times) == 11


@pytest.mark.parametrize(("size", "limit"), [((640, 360), 100_000), ((8000, 400), 10**6)])
def test_the_scale_a_refusal_names_fits_the_limit(
    tmp_path: Path, size: tuple[int, int], limit: int
) -> None:
    """The 413's command makes the video fit: its 'scale=-2:1080', under a lowered
    --video-max-pixels, upscaled a 640x360 video to 1920x1080, refused again, and made a
    very wide one 21600x1080."""
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.mp4", 2, size=size)
    with pytest.raises(TooManyPixelsError) as refused:
        read_all(clip, max_pixels=limit)
    found = re.search(r"scale=-2:(\d+)", refused.value.detail)
    assert found, refused.value.detail
    high = int(found.group(1))
    wide = -(-size[0] * high // size[1] // 2) * 2  # ffmpeg's -2: rounded to an even width
    assert high % 2 == 0
    assert high <= 1080
    assert wide * high <= limit, (wide, high)
    assert wide <= 16384
    scaled = write_clip(GESTURE_VIDEO, tmp_path / "scaled.mp4", 2, size=(wide, high))
    assert len(read_all(scaled, max_pixels=limit)[1]) == 2


def test_frames_an_edit_list_hides_are_reported_not_passed_over(
    clip45: Path, tmp_path: Path
) -> None:
    """The audit's vfr.mp4: the sample table says 2 s, the edit list still 1.5 s, and
    FFmpeg presents only what the edit list shows."""
    vfr = retime(clip45, tmp_path / "stale.mp4", VFR_RUNS, edit_list=False)
    reader = VideoReader(vfr, max_seconds=600.0, max_pixels=1920 * 1080, max_fps=30.0)
    try:
        for _ in range(30):
            assert reader.next() is not None
        with pytest.raises(NotAVideoError) as caught:
            reader.next()
    finally:
        reader.close()
    assert caught.value.detail.startswith(
        "decoding ended after 30 of the 45 frames the container lists, the last at 1433 ms "
        "of 2000 ms"
    )


def test_a_cut_made_without_re_encoding_is_whole(clip45: Path, tmp_path: Path) -> None:
    """ffmpeg -ss 3.5 -i IN -t 2 -c copy OUT.mp4 keeps the frames from the key frame before
    the cut, for the decoder, and an edit list that shows 2 s: FFmpeg presents 62 of its
    167 frames, and the whole clip ended 'decoding ended after 62 of the 167 frames the
    container lists ... truncated or corrupt', its length taken as 5.6 s."""
    cut = cut_by_edit_list(clip45, tmp_path / "cut.mp4", 20)  # from 667 ms, past a key frame
    reader, times = read_all(cut)
    assert times == pytest.approx([i * 1000 / 30 for i in range(25)], abs=0.01)
    assert reader.info.frames == reader.decoded == 25
    assert reader.info.duration_ms == pytest.approx(25 * 1000 / 30)


@pytest.mark.parametrize("cut", CUT_BETWEEN_KEYFRAMES, ids=lambda path: path.suffix)
def test_a_cut_that_starts_between_keyframes_is_whole_and_says_so(cut: Path) -> None:
    """A stream copied from a frame that is not a keyframe: FFmpeg decodes from the next
    keyframe, 20 frames in, at 700 ms (21 frames on the stream's clock: the cut also left
    out a B-frame shown among them, so the MP4, which lists its frames, counts 20, and the
    Matroska file, which does not, 21). The MP4 ended 'decoding ended after 40 of the 60
    frames the container lists ... truncated or corrupt'; the Matroska file was whole but
    said nothing."""
    reader, times = read_all(cut)
    assert reader.unkeyed == (20 if cut.suffix == ".mp4" else 21)
    assert reader.decoded == 40
    # On the file's clock, where a player puts them (Matroska's in whole milliseconds):
    # its stream starts one frame in (start_ms), each line counts from there.
    assert times == pytest.approx([(21 + i) * 1000 / 30 for i in range(40)], abs=1.0)
    assert reader.first_ms == pytest.approx(700.0, abs=1.0)
    assert reader.info.start_ms == pytest.approx(1000 / 30, abs=1.0)
    assert reader.info.duration_ms == pytest.approx(2000.0, abs=40.0)


def test_a_video_exactly_as_long_as_the_limit_keeps_its_last_frame() -> None:
    """The cut MP4 lasts 2.0 s, its 60 frames listed, and OpenCV stamps the last one 2000
    ms: at --video-max-seconds 2 that frame was lost and the video said to be cut."""
    whole, times = read_all(CUT_BETWEEN_KEYFRAMES[0])
    assert whole.info.duration_ms == pytest.approx(2000.0)
    reader = VideoReader(
        CUT_BETWEEN_KEYFRAMES[0], max_seconds=2.0, max_pixels=1920 * 1080, max_fps=30.0
    )
    kept: list[float] = []
    try:
        while (frame := reader.next()) is not None:
            kept.append(frame.time_ms)
    finally:
        reader.close()
    assert kept == times
    assert not reader.cut


def test_a_damaged_file_is_an_error_at_its_end(tmp_path: Path) -> None:
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.mp4", 20)
    with pytest.raises(NotAVideoError, match=r"^decoding ended after \d+ of the 20 frames"):
        read_all(damaged(clip, tmp_path / "damaged.mp4"))
    # A whole clip is not: a Matroska count (an estimate) and an MP4 one both match.
    for whole in (clip, write_clip(GESTURE_VIDEO, tmp_path / "clip.mkv", 20)):
        reader, times = read_all(whole)
        assert len(times) == reader.decoded == 20


def test_a_container_that_misstates_the_frame_width_is_not_a_video(tmp_path: Path) -> None:
    """A WebM saying its frames are 121 pixels wide where they are 64: OpenCV's own check
    of the frame it made raised out of the reader, and POST /api/video answered 500."""
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.webm", 5, size=(64, 36), fourcc="VP80")
    data = clip.read_bytes()
    width = b"\xb0\x81\x40"  # Matroska's PixelWidth element: one byte, 64
    assert data.count(width) == 1
    wrong = tmp_path / "wrong.webm"
    wrong.write_bytes(data.replace(width, b"\xb0\x81\x79"))
    with pytest.raises(NotAVideoError, match=r"^frame 0 could not be decoded$"):
        read_all(wrong)
    assert len(read_all(clip)[1]) == 5


# 30 frames at 30 fps, then 30 at 10 fps, as a phone slows in a dim room: 4 s. FFmpeg
# guesses a Matroska file's rate from its first frames (30 fps) and counts 120 frames.
SLOWING_TIMES = [i * 1000 / 30 for i in range(30)] + [1000.0 + i * 100 for i in range(30)]


def test_a_matroska_file_that_slows_down_is_whole(tmp_path: Path) -> None:
    """Its frame count is FFmpeg's guess (duration times the first frames' rate): it was
    taken as listed, and a whole video ended 'truncated or corrupt' at half of it."""
    clip = write_clip(ASL_VIDEO, tmp_path / "clip.mkv", 60, fps=30.0, size=(160, 120))
    slowing = retime_matroska(clip, tmp_path / "slowing.mkv", SLOWING_TIMES, 4000.0)
    reader, times = read_all(slowing)
    assert times == pytest.approx([round(t) for t in SLOWING_TIMES], abs=0.01)
    assert reader.decoded == 60
    # The container states no count, so the summary says none rather than FFmpeg's 120.
    assert reader.info.frames is None
    assert reader.info.duration_ms == pytest.approx(4000.0)


def test_a_matroska_file_cut_short_is_an_error_at_its_end(tmp_path: Path) -> None:
    clip = write_clip(ASL_VIDEO, tmp_path / "clip.mkv", 60, fps=30.0, size=(160, 120))
    slowing = retime_matroska(clip, tmp_path / "slowing.mkv", SLOWING_TIMES, 4000.0)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(slowing.read_bytes()[: slowing.stat().st_size // 2])
    with pytest.raises(NotAVideoError) as caught:
        read_all(cut)
    assert re.fullmatch(
        r"decoding ended after \d+ frames, the last at \d+ ms of the 4000 ms the container "
        r"states; the file is truncated or corrupt",
        caught.value.detail,
    )


# 25 frames at 25 fps, stamped as FFmpeg's -output_ts_offset 5 stamps them, and the duration
# it then states: to the last frame's end on that clock.
LATE_TIMES = [5000.0 + i * 40 for i in range(25)]


def test_a_matroska_file_that_starts_late_is_whole(tmp_path: Path) -> None:
    """A file cut with -copyts, or written with -output_ts_offset, starts its clock late:
    its stated 6000 ms were taken as its length, and the whole second of video ended
    'truncated or corrupt' at 960 ms."""
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.mkv", 25, size=(160, 90))
    late = retime_matroska(clip, tmp_path / "late.mkv", LATE_TIMES, 6000.0)
    reader, times = read_all(late)
    # Counted from the first frame, as in a file that starts at 0.
    assert times == pytest.approx([i * 40.0 for i in range(25)], abs=0.01)
    assert reader.info.start_ms == pytest.approx(5000.0)
    assert reader.info.duration_ms == pytest.approx(1000.0)
    # Cut short, it is still found out.
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(late.read_bytes()[: late.stat().st_size // 2])
    with pytest.raises(NotAVideoError, match=r"of the 1000 ms the container states; the file"):
        read_all(cut)


def test_a_fragmented_mp4_saved_from_a_live_stream_is_whole(tmp_path: Path) -> None:
    """A segment of an HLS or DASH stream (or a browser's MediaRecorder MP4) lists no
    frames in its moov; FFmpeg's count is its duration, on a clock that starts where the
    stream was, times the rate: 125 for 25 frames 4 s in, and the whole segment ended
    'decoding ended after 25 of the 125 frames the container lists'."""
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.mp4", 25, size=(160, 90))
    segment = fragmented(clip, tmp_path / "segment.mp4", 4000.0)
    reader, times = read_all(segment)
    assert times == pytest.approx([i * 40.0 for i in range(25)], abs=0.01)
    assert reader.info.frames is None  # not FFmpeg's guess, as if listed
    assert reader.info.start_ms == pytest.approx(4000.0)
    assert reader.info.duration_ms == pytest.approx(1000.0)
    # Damaged, it is still found out, by where its last frame is.
    with pytest.raises(NotAVideoError, match=r"of the 1000 ms the container states; the file"):
        read_all(damaged(segment, tmp_path / "damaged.mp4"))


def test_an_av1_video_is_said_to_be_one_this_decoder_cannot_read(tmp_path: Path) -> None:
    """The wheel's FFmpeg decodes AV1 only with hardware acceleration: an AV1 file (made by
    ffmpeg 5.1's libaom-av1, in MP4 and in WebM) opened with its size and rate, decoded no
    frame, and was answered 'it may be corrupt'. Here an MPEG-4 track labelled AV1 goes to
    the same decoder, with the same outcome."""
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.mkv", 3, size=(160, 90))
    with pytest.raises(UnsupportedTypeError, match=r"^the video is AV1, which this server"):
        read_all(relabelled(clip, tmp_path / "av1.webm", b"V_AV1"))


@pytest.mark.parametrize(
    ("head", "named"),
    [
        (b"RIFF\x10\x00\x00\x00WEBPVP8X", "a WebP image"),
        (b"RIFF\x10\x00\x00\x00AVI LIST", "an AVI video"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", "a WAV sound file"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00mif1", "a HEIF or AVIF image"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1", "a HEIF or AVIF image"),
    ],
)
def test_a_picture_or_a_sound_is_told_what_it_is(head: bytes, named: str) -> None:
    """An animated WebP was "a RIFF file (AVI or WAV)", and an AVIF photo "the video is
    AV1", told to be re-encoded as H.264."""
    data = head + bytes(64)
    with pytest.raises(UnsupportedTypeError, match=rf"^the file is {named}; send "):
        check_container(io.BytesIO(data), len(data))


def test_a_file_of_over_a_million_boxes_is_refused_at_once() -> None:
    """64 MiB of 8-byte boxes took 6.1 s to walk, on the server's event loop: every live
    session stalled meanwhile. The walk now runs on a thread and stops at a million."""
    data = struct.pack(">I4s", 8, b"free") * (MOST_BOXES + 1)
    with pytest.raises(NotAVideoError, match=r"^the file has over 1,000,000 top-level boxes"):
        check_container(io.BytesIO(data), len(data))


def test_ffmpeg_writes_nothing_to_stderr(tmp_path: Path) -> None:
    """FFmpeg logged every damaged macroblock to fd 2: 45,923 lines for a 1.4 MB upload."""
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.mp4", 20)
    bad = damaged(clip, tmp_path / "damaged.mp4")
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from webapp.errors import NotAVideoError
        from webapp.video.decode import VideoReader
        reader = VideoReader(Path({str(bad)!r}), max_seconds=60, max_pixels=10**7, max_fps=30)
        try:
            while reader.next() is not None:
                pass
        except NotAVideoError:
            print("reported")
        """
    )
    # Not inherited from this process, which imported the decoder already.
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_FFMPEG_LOGLEVEL"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "reported"
    assert done.stderr == ""


@pytest.mark.parametrize(
    ("fps", "suffix", "max_fps", "count", "kept"),
    [
        # A 30 fps video at 5 fps: every 200 ms, not 0, 133, 300, 533, 700 ...
        (30.0, ".mp4", 5.0, 60, [i * 200.0 for i in range(10)]),
        # Matroska's times are whole milliseconds: 33, 67 ... stay in their own slots.
        (30.0, ".mkv", 30.0, 30, [round(i * 1000 / 30) for i in range(30)]),
        # 240 fps at 10: every 100 ms, never two frames 4 ms apart.
        (240.0, ".mp4", 10.0, 96, [i * 100.0 for i in range(4)]),
        # 25 fps at 10: the frame nearest each 100 ms mark, the earlier on a tie.
        (
            25.0,
            ".mkv",
            10.0,
            25,
            [0.0, 80.0, 200.0, 280.0, 400.0, 480.0, 600.0, 680.0, 800.0, 880.0],
        ),
    ],
)
def test_decimation_keeps_the_frames_nearest_each_slot(
    tmp_path: Path, fps: float, suffix: str, max_fps: float, count: int, kept: list[float]
) -> None:
    clip = write_clip(ASL_VIDEO, tmp_path / f"clip{suffix}", count, fps=fps, size=(160, 120))
    reader, times = read_all(clip, max_fps)
    assert times == pytest.approx(kept, abs=0.01)
    assert reader.skipped == count - len(kept)


def test_a_rate_under_one_frame_in_the_whole_limit_still_gives_the_first_frame(
    clip45: Path,
) -> None:
    """--video-max-fps 0.001 allows 0.6 frames in 600 s: every frame was skipped and each
    video answered with none, though decimation keeps the frame at each 1/N s mark, the
    first one's at 0."""
    reader, times = read_all(clip45, max_fps=0.001)
    assert times == [0.0]
    assert (reader.skipped, reader.cut) == (44, False)


def first_frame(path: Path) -> tuple[MatLike, VideoInfo]:
    """The first frame as the worker gets it (grey, decoded from its JPEG), and the video's
    figures."""
    reader = VideoReader(path, max_seconds=600.0, max_pixels=1920 * 1080, max_fps=30.0)
    try:
        frame = reader.next()
        assert frame is not None
        image = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
        return image, reader.info
    finally:
        reader.close()


def test_a_video_a_hair_over_the_rate_gives_no_more_than_the_limits_frames(
    tmp_path: Path,
) -> None:
    """40 s at 25.025 fps (within the rate's 0.1% tolerance, every frame kept) held 1001
    frames against a limit of 40 s at 25 fps: 1000, which POST /api/export's frame limit
    (600 s at 30 fps by default) is sized to. The one over is decimated, not a cut: the
    video is within the time limit and complete."""
    pushups = MEDIA / "pushups_tacofleur_320x240_30fps.mp4"
    clip = write_clip(pushups, tmp_path / "fast.mp4", 1001, size=(32, 24), fps=25.025)
    reader = VideoReader(clip, max_seconds=40.0, max_pixels=1920 * 1080, max_fps=25.0)
    try:
        kept = 0
        while reader.next() is not None:
            kept += 1
    finally:
        reader.close()
    assert reader.info.frames == 1001
    assert (kept, reader.skipped, reader.cut) == (1000, 1, False)


def test_a_video_stored_sideways_is_read_upright(tmp_path: Path) -> None:
    upright = write_clip(ASL_VIDEO, tmp_path / "upright.mp4", 3)
    sideways = stored_sideways(ASL_VIDEO, tmp_path / "sideways.mp4", 3)
    straight, _ = first_frame(upright)
    turned, info = first_frame(sideways)
    assert (info.width, info.height, info.rotation) == (640, 480, 90)
    assert turned.shape == straight.shape == (480, 640)
    # The same picture, up to two encodings: a frame turned the wrong way round (180
    # degrees off) differs from it by far more.
    assert np.mean(cv2.absdiff(straight, turned)) < 5.0
    assert np.mean(cv2.absdiff(straight, cv2.rotate(turned, cv2.ROTATE_180))) > 20.0


@pytest.mark.parametrize(
    ("abcd", "rotation", "shown"),
    [
        ((-1, 0, 0, 1), 0, lambda f: cv2.flip(f, 1)),  # QuickTime's Flip Horizontal
        ((1, 0, 0, -1), 180, lambda f: cv2.flip(f, 0)),  # Flip Vertical
        ((0, 1, 1, 0), 270, cv2.transpose),
        ((0, -1, -1, 0), 90, lambda f: cv2.flip(cv2.transpose(f), -1)),
    ],
)
def test_a_mirrored_video_is_read_as_a_player_shows_it(
    tmp_path: Path,
    abcd: tuple[int, int, int, int],
    rotation: int,
    shown: Callable[[MatLike], MatLike],
) -> None:
    """A display matrix that mirrors: OpenCV's FFmpeg backend takes only a rotation from it,
    so a video flipped left to right was read turned half round, the person upside down."""
    plain = write_clip(ASL_VIDEO, tmp_path / "plain.mp4", 3)
    mirrored = with_display_matrix(plain, tmp_path / "mirrored.mp4", abcd)
    straight, _ = first_frame(plain)
    turned, info = first_frame(mirrored)
    expected = shown(straight)
    assert (info.mirrored, info.rotation) == (True, rotation)
    assert (info.height, info.width) == turned.shape == expected.shape
    # The same picture, up to two encodings; shown unmirrored, it differs by far more.
    assert np.mean(cv2.absdiff(expected, turned)) < 5.0


def test_pixels_that_are_not_square_are_shown_as_a_player_shows_them(tmp_path: Path) -> None:
    """A 640x360 picture stored 320x360 with pixels twice as wide: the model saw everyone
    squeezed to half their width, and the lines said 320x360, so the export measured angles
    and solved the rig on a squeezed body."""
    shown = write_clip(GESTURE_VIDEO, tmp_path / "shown.mp4", 3)
    squeezed = write_clip(GESTURE_VIDEO, tmp_path / "squeezed.mp4", 3, size=(320, 360))
    stored = with_pixel_aspect(squeezed, tmp_path / "anamorphic.mp4", 2, 1)
    straight, _ = first_frame(shown)
    stretched, info = first_frame(stored)
    assert (info.width, info.height) == (640, 360)
    assert stretched.shape == straight.shape == (360, 640)
    # The same picture, up to the lost half of its columns and two encodings.
    assert np.mean(cv2.absdiff(straight, stretched)) < 6.0


class HeldCapture:
    """A reader's capture whose next grab() waits until the test lets it go, recording
    the order of grabs and the release."""

    def __init__(self, capture: cv2.VideoCapture) -> None:
        self._capture = capture
        self.grabbing = threading.Event()
        self.go_on = threading.Event()
        self.calls: list[str] = []

    def grab(self) -> bool:
        self.calls.append("grab")
        self.grabbing.set()
        assert self.go_on.wait(60)
        grabbed = self._capture.grab()
        self.calls.append("grabbed")
        return bool(grabbed)

    def release(self) -> None:
        self.calls.append("release")
        self._capture.release()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._capture, name)


def test_close_waits_for_the_frame_being_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that leaves cancels its handler mid-decode, and the handler's cleanup closes
    the reader on another thread: FFmpeg aborted the whole server when the capture was
    released under a running grab()."""
    reader = VideoReader(GESTURE_VIDEO, max_seconds=600.0, max_pixels=1920 * 1080, max_fps=30.0)
    held = HeldCapture(reader._capture)
    monkeypatch.setattr(reader, "_capture", held)
    with ThreadPoolExecutor(2) as pool:
        decoding = pool.submit(reader.next)
        try:
            assert held.grabbing.wait(60)
            closing = pool.submit(reader.close)
            # Not released while the grab runs (a release would have come at once).
            done, _ = futures.wait([closing], timeout=0.5)
            assert not done
        finally:
            held.go_on.set()
        frame = decoding.result(60)
        closing.result(60)
    assert frame is not None
    assert frame.decoded == 0
    assert held.calls == ["grab", "grabbed", "release"]
    # Closed: no frame, and no decoder touched.
    assert reader.next() is None
    assert held.calls == ["grab", "grabbed", "release"]


def test_the_largest_video_limits_taken_keep_every_frame(clip45: Path) -> None:
    """config_checks' bounds: at both, a video is read whole, not an OverflowError."""
    reader = VideoReader(
        clip45, max_seconds=MAX_VIDEO_SECONDS, max_pixels=1920 * 1080, max_fps=MAX_VIDEO_FPS
    )
    kept = 0
    try:
        while reader.next() is not None:
            kept += 1
    finally:
        reader.close()
    assert (kept, reader.skipped) == (45, 0)
