"""POST /api/video's decoder against files that cost far more than their bytes: a pixel
aspect that stretches every frame past the limits, and sample tables that have FFmpeg
index millions of samples in the server's own process as it opens the file. Each is
refused before it costs anything: before any frame is stretched, before FFmpeg opens it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import pytest

from tests.media import GESTURE_VIDEO
from tests.videos import (
    claiming_samples,
    compressed_moov,
    encrypted,
    fragment_claiming,
    hiding_samples,
    stored_sideways,
    with_edits,
    with_pcm_sound,
    with_pixel_aspect,
    write_clip,
)
from webapp.errors import TooLargeError, TooManyPixelsError, UnsupportedTypeError
from webapp.video.decode import VideoReader

MAX_PIXELS = 1920 * 1080


def reader(path: Path) -> VideoReader:
    return VideoReader(path, max_seconds=600.0, max_pixels=MAX_PIXELS, max_fps=30.0)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 frames of 64x36, one video track, as write_clip writes it."""
    folder = tmp_path_factory.mktemp("bombs")
    return write_clip(GESTURE_VIDEO, folder / "clip.mp4", 3, size=(64, 36))


@pytest.mark.parametrize(
    ("wide", "tall", "shown", "why"),
    [
        (1000, 1, "64000x36", r"\(2304000 pixels a frame\); the limit is 2073600: scale it down"),
        # Few pixels, but a side the model's worker cannot take.
        (300, 1, "19200x36", r"; the longest side may be 16384 px$"),
        (1, 500, "64x18000", r"; the longest side may be 16384 px$"),
    ],
)
def test_a_pixel_aspect_that_stretches_frames_past_the_limits_is_refused_before_any_frame(
    clip: Path, tmp_path: Path, wide: int, tall: int, shown: str, why: str
) -> None:
    """The reviewer's 320x240 MP4 with a pixel aspect of 1000:1 passed as 320x240, and each
    frame was stretched to 320000x240: the server grew by 250 MB (1 GB at 4000:1) and the
    worker refused every frame for 100 s."""
    stretched = with_pixel_aspect(clip, tmp_path / "stretched.mp4", wide, tall)
    with pytest.raises(TooManyPixelsError, match=rf"^the video is 64x36, shown {shown} for its"):
        reader(stretched)
    with pytest.raises(TooManyPixelsError, match=why):
        reader(stretched)


def test_the_limits_apply_to_the_frame_turned_upright_and_stretched(tmp_path: Path) -> None:
    # Stored 360x640 on its side with pixels 100 times as wide: 640x36000 upright.
    sideways = stored_sideways(GESTURE_VIDEO, tmp_path / "sideways.mp4", 3)
    stretched = with_pixel_aspect(sideways, tmp_path / "stretched.mp4", 100, 1)
    with pytest.raises(
        TooManyPixelsError, match=r"^the video is 640x360, shown 640x36000 for its pixel aspect"
    ):
        reader(stretched)


@pytest.mark.parametrize(("wide", "tall", "shown"), [(4, 3, (85, 36)), (1, 1, (64, 36))])
def test_a_sane_pixel_aspect_is_still_shown_as_a_player_shows_it(
    clip: Path, tmp_path: Path, wide: int, tall: int, shown: tuple[int, int]
) -> None:
    video = reader(with_pixel_aspect(clip, tmp_path / "aspect.mp4", wide, tall))
    try:
        frame = video.next()
    finally:
        video.close()
    assert frame is not None
    assert (video.info.width, video.info.height) == shown


Build = Callable[[Path, Path], Path]
# Each claims its samples in a few hundred bytes (the edits in 4 MB); FFmpeg indexes them
# at 24 bytes each, or more, as it opens the file.
BOMBS: dict[str, tuple[Build, str]] = {
    # The reviewer's bomb89m.mp4: 1.2 KB, 2.2 GB of the server's memory.
    "stsz": (lambda clip, to: claiming_samples(clip, to, 89_000_000), "89,000,000"),
    # The same count where only FFmpeg looks for it: in the sample description.
    "stsz-in-stsd": (lambda clip, to: hiding_samples(clip, to, 89_000_000), "89,000,000"),
    # Sound stored uncompressed is indexed by chunk: 2 billion samples a chunk, 40 chunks
    # (2 KB) took 2.0 GB.
    "stsc": (
        lambda clip, to: with_pcm_sound(clip, to, chunks=40, per_chunk=0x7FFFF000),
        "536,869,923",
    ),
    # A fragment's trun whose samples all take the defaults: 20 bytes, any count.
    "trun": (lambda clip, to: fragment_claiming(clip, to, 89_000_000), "89,000,000"),
    # FFmpeg copies a track's index once for each edit.
    "elst": (lambda clip, to: with_edits(clip, to, 350_000), "1,050,000"),
}


@pytest.fixture
def ffmpeg_never_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any) -> None:
        raise AssertionError(f"FFmpeg opened {args[0]}")

    monkeypatch.setattr(cv2, "VideoCapture", refuse)


@pytest.mark.parametrize(("build", "listed"), BOMBS.values(), ids=BOMBS.keys())
@pytest.mark.usefixtures("ffmpeg_never_opens")
def test_sample_tables_claiming_millions_are_refused_before_ffmpeg_opens_the_file(
    clip: Path, tmp_path: Path, build: Build, listed: str
) -> None:
    bomb = build(clip, tmp_path / "bomb.mp4")
    with pytest.raises(TooLargeError, match=rf"^the file's sample tables list {listed} samples"):
        reader(bomb)


@pytest.mark.usefixtures("ffmpeg_never_opens")
def test_a_compressed_movie_header_is_refused_before_ffmpeg_inflates_it(
    clip: Path, tmp_path: Path
) -> None:
    """FFmpeg inflates a cmov (zlib) and reads the moov inside, whose tables no check
    could see: the reviewer's bomb compressed so took 2.1 GB."""
    packed = compressed_moov(clip, tmp_path / "packed.mov")
    with pytest.raises(UnsupportedTypeError, match=r"^the file's movie header is compressed"):
        reader(packed)


@pytest.mark.usefixtures("ffmpeg_never_opens")
def test_an_encrypted_video_is_refused_before_ffmpeg_reads_its_key_information(
    clip: Path, tmp_path: Path
) -> None:
    """FFmpeg keeps about 470 bytes for each sample a senc box lists, with no cap: 1.3 KB
    listing 6 million took 2.9 GB. No key here could decode the video anyway."""
    locked = encrypted(clip, tmp_path / "locked.mp4", 6_000_000)
    with pytest.raises(UnsupportedTypeError, match=r"^the video is encrypted \(Common Encryption"):
        reader(locked)


def test_a_camera_mov_with_uncompressed_sound_is_within_the_limits(
    clip: Path, tmp_path: Path
) -> None:
    """10 minutes of 48 kHz sound stored uncompressed list 28.8 million samples, which
    FFmpeg indexes by the second-long chunk: not a bomb, and read as any video is."""
    camera = with_pcm_sound(clip, tmp_path / "camera.mov", chunks=600, per_chunk=48_000)
    video = reader(camera)
    try:
        assert video.next() is not None
    finally:
        video.close()
