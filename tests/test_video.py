"""POST /api/video with the real model: one line per decoded frame, the same landmarks as a
live session fed the same frames, each limit's status, a disconnect, fairness and 503."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest

from tests.conftest import Client, MakeClient, files_form
from tests.live import LiveClient, until, video_frames
from tests.media import ASL_VIDEO, CUT_BETWEEN_KEYFRAMES, GESTURE_VIDEO, PERSON_JPEG
from tests.videos import (
    TRACK,
    _boxes,
    claiming_samples,
    damaged,
    decoded_frames,
    fragmented,
    held_upload,
    lines,
    post,
    relabelled,
    retime_matroska,
    served,
    stored_sideways,
    with_pixel_aspect,
    without_duration,
    write_clip,
)
from webapp.app import create_app
from webapp.config import Config
from webapp.engine.blendshapes import NAMES
from webapp.engine.jobs import Frame
from webapp.engine.wire import FrameResult
from webapp.errors import HolotrackError
from webapp.export import table
from webapp.export.recording import parse_text
from webapp.keys import ACCESS, METRICS, SCHEDULER, VIDEOS
from webapp.protocol import Track
from webapp.video import views
from webapp.video.decode import VideoReader
from webapp.video.stream import VideoStream

PARTS = ("pose", "face", "left_hand", "right_hand")


def close_points(a: Any, b: Any, tolerance: float = 1e-4) -> bool:
    if a is None or b is None:
        return a is b
    return len(a) == len(b) and all(
        abs(x - y) <= tolerance
        for p, q in zip(a, b, strict=True)
        for x, y in zip(p, q, strict=True)
    )


def video_frames_run(client: Client) -> float:
    value = client.app[METRICS].registry.get_sample_value(
        "holotrack_video_frames_total", {"outcome": "processed"}
    )
    return value or 0.0


async def test_one_line_per_decoded_frame_same_as_a_live_session(
    make_client: MakeClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="webapp.video")
    clip = write_clip(ASL_VIDEO, tmp_path / "clip.mp4", 24)
    frames = decoded_frames(clip)
    # Behind a proxy, the line names the client the proxy saw, not the proxy.
    client = await make_client(Config(workers=1, trust_proxy=True))
    response = await client.post(
        "/api/video?smoothing=off&rig=1&exercise=squat",
        data=clip.read_bytes(),
        headers={"Content-Type": "video/mp4", "X-Forwarded-For": "203.0.113.9"},
    )
    found = await lines(response)
    *rows, last = found
    summary = last["summary"]
    assert [row["frame"] for row in rows] == list(range(len(frames)))
    assert [row["time_ms"] for row in rows] == pytest.approx([t for t, _ in frames], abs=1e-3)
    assert summary["frames"] == summary["decoded"] == len(frames) == 24
    assert summary["with_person"] == 24
    assert summary["warnings"] == []
    assert summary["skipped"] == summary["errors"] == 0
    assert summary["complete"] is True
    assert summary["error"] is None
    assert summary["reps"] == 0
    # An operator reads a line where it began and one where it ended.
    said = [r.getMessage() for r in caplog.records]
    assert sum(": video {" in m for m in said) == 1
    assert sum("video complete, 24 frames in " in m for m in said) == 1
    # With fields for a log shipper (--log-format json), its figures as JSON in the words.
    start, end = (r for r in caplog.records if getattr(r, "event", "").startswith("video"))
    assert (start.event, start.width, start.frames) == ("video_start", 640, 24)  # type: ignore[attr-defined]
    assert start.getMessage().endswith(" from 203.0.113.9")
    assert (
        json.loads(start.getMessage().split(" video ", 1)[1].rsplit(" from ", 1)[0])["frames"] == 24
    )
    assert (end.event, end.outcome, end.frames) == ("video_end", "complete", 24)  # type: ignore[attr-defined]
    assert summary["workout"]["sets"][0]["exercise"] == "squat"
    assert summary["inference_ms_mean"] > 0
    assert summary["video"]["width"] == 640
    assert summary["video"]["height"] == 480
    assert all(row["landmarks"]["pose"] is not None for row in rows)
    assert all(
        {"frame", "time_ms", "landmarks", "image", "rig", "fitness"} == set(row) for row in rows
    )
    assert client.app[SCHEDULER].snapshot().sessions == 0

    # A live session fed the same JPEGs with the same capture times, one at a time.
    live = await LiveClient.connect(client)
    await live.hello("holistic", 30, smoothing="off", rig=True, exercise="squat")
    for seq, (time_ms, jpeg) in enumerate(frames):
        await live.send(seq, time_ms, jpeg)
        result = await live.next_of("result")
        row = rows[seq]
        for part in PARTS:
            assert close_points(row["landmarks"][part], result["landmarks"][part]), (seq, part)
        assert row["fitness"] == result["fitness"]
        assert row["image"] == result["image"] == {"width": 640, "height": 480}
        assert row["rig"].keys() == result["rig"].keys()


async def test_a_video_of_nobody_says_so(make_client: MakeClient, tmp_path: Path) -> None:
    """25 grey frames were 'frames: 25, complete: true' and every part null: read as a
    success. The summary counts the frames with a person, and warns as a photo does."""
    path = tmp_path / "nobody.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 25.0, (320, 240))
    for _ in range(10):
        writer.write(np.full((240, 320, 3), 128, np.uint8))
    writer.release()
    client = await make_client(Config(workers=1))
    *rows, last = await lines(await post(client, path.read_bytes()))
    assert all(row["landmarks"]["pose"] is None for row in rows)
    summary = last["summary"]
    assert (summary["frames"], summary["with_person"], summary["complete"]) == (10, 0, True)
    assert [w["code"] for w in summary["warnings"]] == ["no_person"]


async def test_blendshapes_come_with_the_rig_on_every_frame_with_a_face(
    make_client: MakeClient, tmp_path: Path
) -> None:
    clip = write_clip(ASL_VIDEO, tmp_path / "clip.mp4", 6)
    client = await make_client(Config(workers=1))
    *rows, last = await lines(await post(client, clip.read_bytes(), "?blendshapes=1"))
    assert last["summary"]["frames"] == len(rows) == 6
    for row in rows:
        assert row["landmarks"]["face"] is not None
        shapes = row["rig"]["blendshapes"]
        assert list(shapes) == list(NAMES)
        assert all(0.0 <= v <= 1.0 for v in shapes.values())
    *plain, _ = await lines(await post(client, clip.read_bytes(), "?rig=1"))
    assert all("blendshapes" not in row["rig"] for row in plain)


async def test_matroska_multipart_and_decimation(make_client: MakeClient, tmp_path: Path) -> None:
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.mkv", 25)  # one second at 25 fps
    client = await make_client(Config(workers=1, video_max_fps=10.0))
    form = aiohttp.FormData()
    form.add_field("file", clip.read_bytes(), filename="clip.mkv", content_type="video/x-matroska")
    found = await lines(await client.post("/api/video", data=form))
    *rows, last = found
    summary = last["summary"]
    assert summary["decoded"] == 25
    # The frame nearest each 100 ms mark, the earlier on a tie: 0, 80, 200, 280 ... 880 ms.
    assert summary["frames"] == len(rows) == 10
    assert summary["skipped"] == 15
    times = [row["time_ms"] for row in rows]
    assert times == [0.0, 80.0, 200.0, 280.0, 400.0, 480.0, 600.0, 680.0, 800.0, 880.0]
    assert all("rig" not in row and "fitness" not in row for row in rows)
    assert summary["reps"] is None


async def test_every_limit_and_bad_input_has_its_status(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client = await make_client(
        Config(
            workers=1,
            video_max_bytes=300_000,
            video_max_seconds=5.0,
            video_max_pixels=640 * 480,
        )
    )
    small = write_clip(GESTURE_VIDEO, tmp_path / "small.mp4", 10)
    wide = write_clip(GESTURE_VIDEO, tmp_path / "wide.mp4", 5, size=(800, 600))
    long = write_clip(GESTURE_VIDEO, tmp_path / "long.mp4", 10, fps=1.0)  # 10 s
    av1 = relabelled(
        write_clip(GESTURE_VIDEO, tmp_path / "clip.mkv", 3), tmp_path / "av1.webm", b"V_AV1"
    )
    whole = small.read_bytes()
    # A part cut short, with no closing boundary: the body is said to be unfinished.
    part = (
        b'--XYZ\r\nContent-Disposition: form-data; name="file"\r\nContent-Type: video/mp4\r\n\r\n'
    )
    cases: list[tuple[bytes, str, str, int, str]] = [
        (ASL_VIDEO.read_bytes(), "", "video/mp4", 413, "too_large"),  # 629 KB
        (long.read_bytes(), "", "video/mp4", 413, "too_large"),
        (wide.read_bytes(), "", "video/mp4", 413, "too_many_pixels"),
        (PERSON_JPEG.read_bytes(), "", "image/jpeg", 415, "unsupported_type"),
        (PERSON_JPEG.read_bytes(), "", "video/mp4", 415, "unsupported_type"),
        (whole, "", "text/plain", 415, "unsupported_type"),
        (whole, "", "video/x-msvideo", 415, "unsupported_type"),
        (av1.read_bytes(), "", "video/webm", 415, "unsupported_type"),
        *(
            (
                write_clip(GESTURE_VIDEO, tmp_path / name, 3, fourcc=fourcc).read_bytes(),
                "",
                "application/octet-stream",
                415,
                "unsupported_type",
            )
            for name, fourcc in (("ts.ts", "PIM1"), ("ps.mpg", "mpg1"), ("asf.wmv", "WMV2"))
        ),
        (whole[: len(whole) // 2], "", "video/mp4", 400, "not_a_video"),
        (whole[:200], "", "video/mp4", 400, "not_a_video"),
        (os.urandom(50_000), "", "video/mp4", 400, "not_a_video"),
        (b"", "", "video/mp4", 400, "empty"),
        (whole, "?exercise=moonwalk", "video/mp4", 400, "bad_option"),
        (whole, "?smoothing=maybe", "video/mp4", 400, "bad_option"),
        (whole, "?blendshapes=maybe", "video/mp4", 400, "bad_option"),
        (whole, "?rig=0&blendshapes=1", "video/mp4", 400, "bad_option"),
        (whole, "?fps=5", "video/mp4", 400, "bad_option"),
        (whole, "?rig=1&rig=0", "video/mp4", 400, "bad_option"),
        (b"x", "", "multipart/form-data", 400, "bad_request"),
        (b"garbage", "", "multipart/form-data; boundary=XYZ", 400, "bad_request"),
        (part + whole[:1000], "", "multipart/form-data; boundary=XYZ", 400, "bad_request"),
        # Whole, but for the boundary: it was "truncated at byte N" of its own N bytes.
        (part + whole + b"\r\n", "", "multipart/form-data; boundary=XYZ", 400, "bad_request"),
        (
            b"--XYZ\r\nno colon\r\n\r\nx\r\n--XYZ--\r\n",
            "",
            "multipart/form-data; boundary=XYZ",
            400,
            "bad_request",
        ),
    ]
    for body, query, content_type, status, code in cases:
        response = await post(client, body, query, content_type)
        answer = await response.json()
        assert (response.status, answer["error"]) == (status, code), (query, content_type, answer)
        assert answer["detail"]
        if body.startswith(part):
            assert "ends without its closing boundary" in answer["detail"], answer
    # A segment saved from an HLS or DASH stream (.m4s) without its init segment: it was
    # 'the file is not a video: it has neither an MP4/MOV nor a Matroska header'.
    stream = fragmented(small, tmp_path / "stream.mp4").read_bytes()
    response = await post(client, stream[stream.index(b"moof") - 4 :])
    answer = await response.json()
    assert (response.status, answer["error"]) == (400, "not_a_video")
    assert answer["detail"].startswith("the file is a segment of an MP4 stream (.m4s)")
    # Each frame stretched to 64000x360 by its pixel aspect: it was streamed, every frame
    # refused by the worker.
    stretched = with_pixel_aspect(small, tmp_path / "stretched.mp4", 100, 1).read_bytes()
    # 2 million samples claimed in a few KB: FFmpeg indexed them all (48 MB) before the
    # duration they add up to was refused.
    claiming = claiming_samples(small, tmp_path / "claiming.mp4", 2_000_000).read_bytes()
    for body, code, detail in (
        (stretched, "too_many_pixels", "the video is 640x360, shown 64000x360 for its pixel"),
        (claiming, "too_large", "the file's sample tables list 2,000,000 samples"),
    ):
        response = await post(client, body)
        answer = await response.json()
        assert (response.status, answer["error"]) == (413, code), answer
        assert answer["detail"].startswith(detail), answer
    # Limits refuse before a session is opened: nothing is left behind.
    assert client.app[SCHEDULER].snapshot().sessions == 0
    assert video_frames_run(client) == 0
    # The same server takes a video within every limit.
    found = await lines(await post(client, whole))
    assert found[-1]["summary"]["frames"] == 10
    # And an Android phone's 3GP (H.263), declared as a browser declares it: it was 415.
    phone = write_clip(GESTURE_VIDEO, tmp_path / "phone.3gp", 4, size=(176, 144), fourcc="H263")
    found = await lines(await post(client, phone.read_bytes(), "", "video/3gpp"))
    assert found[-1]["summary"]["frames"] == 4


def audio_only(clip: Path, target: Path) -> Path:
    """`clip` with its one track marked as sound, as an .m4a or an Opus WebM holds its
    audio: an MP4's handler (moov/trak/mdia/hdlr) says "soun", a Matroska TrackType 2."""
    data = bytearray(clip.read_bytes())
    if clip.suffix == ".mp4":
        hdlr = _boxes(data, 0, len(data), (*TRACK, b"mdia", b"hdlr"))[-1][0]
        assert data[hdlr + 16 : hdlr + 20] == b"vide"
        data[hdlr + 16 : hdlr + 20] = b"soun"
    else:
        # TrackType (0x83), one byte long, 1 (video), inside Tracks (0x1654AE6B).
        at = data.index(b"\x83\x81\x01", data.index(b"\x16\x54\xae\x6b"))
        data[at + 2] = 2
    target.write_bytes(bytes(data))
    return target


async def test_a_file_with_only_sound_is_said_to_maybe_hold_no_video(
    make_client: MakeClient, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """FFmpeg opens no video in it; the answer said only 'it may be corrupt', which sends a
    developer looking for damage in a sound file. OpenCV's own warning about it went to
    fd 2, a raw line among the server's log records (JSON ones too): the answer says it."""
    client = await make_client(Config(workers=1))
    for suffix in (".mp4", ".mkv"):
        clip = write_clip(GESTURE_VIDEO, tmp_path / f"clip{suffix}", 3, size=(160, 90))
        sound = audio_only(clip, tmp_path / f"sound{suffix}")
        response = await post(client, sound.read_bytes(), "", "application/octet-stream")
        answer = await response.json()
        assert (response.status, answer["error"]) == (400, "not_a_video"), suffix
        assert "no video track (sound only)" in answer["detail"]
        # The same file with its video track is taken.
        found = await lines(await post(client, clip.read_bytes(), "", "application/octet-stream"))
        assert found[-1]["summary"]["frames"] == 3
    assert "WARN" not in capfd.readouterr().err


async def test_an_exported_video_keeps_its_aspect(make_client: MakeClient, tmp_path: Path) -> None:
    """Each line says its frame's size, as a live recording's does, so POST /api/export
    measures a 2:1 video at 2:1: without it the export took 640x480 and its shoulder angles
    were 14.5 degrees against the video's own 21.5."""
    clip = write_clip(ASL_VIDEO, tmp_path / "wide.mp4", 8, size=(960, 480))
    client = await make_client(Config(workers=1))
    answer = await post(client, clip.read_bytes(), "?exercise=bicep_curl&smoothing=off")
    found = await lines(answer)
    *rows, _ = found
    assert len(rows) == 8
    assert all(row["image"] == {"width": 960, "height": 480} for row in rows)
    recording = parse_text("".join(json.dumps(line) + "\n" for line in found))
    exported = list(csv.DictReader(io.StringIO(table.to_csv(recording))))
    compared = 0
    for row, cells in zip(rows, exported, strict=True):
        pose = row["landmarks"]["pose"]
        for name, value in row["fitness"]["angles"].items():
            if value is None or not cells[f"{name}_deg"]:
                continue
            assert float(cells[f"{name}_deg"]) == pytest.approx(value, abs=0.051), name
            compared += 1
        as_4_3 = table.joint_angles(pose, (640, 480))
        at_2_1 = table.joint_angles(pose, (960, 480))
        assert as_4_3 != at_2_1  # the test tells the two apart
    assert compared >= 8


async def test_a_phone_video_stored_sideways_is_tracked_upright(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """A phone stores its frames as its sensor lies, with a rotation for players to apply;
    the model is given them upright, as the person filming saw them (without: the upper
    body 0.65 of the frame away from where it is)."""
    client = await make_client(Config(workers=1))
    found = []
    for clip in (
        write_clip(ASL_VIDEO, tmp_path / "upright.mp4", 4),
        stored_sideways(ASL_VIDEO, tmp_path / "sideways.mp4", 4),
    ):
        *rows, summary = await lines(await post(client, clip.read_bytes(), "?smoothing=off"))
        assert summary["summary"]["complete"]
        assert all(row["image"] == {"width": 640, "height": 480} for row in rows)
        found.append([row["landmarks"]["pose"] for row in rows])
    assert summary["summary"]["video"]["rotation"] == 90
    for straight, turned in zip(*found, strict=True):
        assert straight is not None
        assert turned is not None
        # Where the upper body is (x and y of the head, shoulders, arms and hands), up to
        # the two encodings of the frames.
        upper = zip(straight[:23], turned[:23], strict=True)
        apart = max(abs(p[i] - q[i]) for p, q in upper for i in (0, 1))
        assert apart < 0.02


async def test_a_video_that_ends_short_is_not_complete(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """FFmpeg stops early on a damaged file without an error of its own; the summary said
    complete with 1 of 10, 12 of 300 frames."""
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.mp4", 20)
    client = await make_client(Config(workers=1))
    *rows, last = await lines(await post(client, damaged(clip, tmp_path / "bad.mp4").read_bytes()))
    summary = last["summary"]
    assert 0 < summary["frames"] == summary["decoded"] == len(rows) < 20
    assert summary["video"]["frames"] == 20
    assert summary["complete"] is False
    assert summary["error"]["error"] == "not_a_video"
    assert summary["error"]["detail"].startswith(
        f"decoding ended after {len(rows)} of the 20 frames the container lists"
    )
    ended = client.app[METRICS].registry.get_sample_value(
        "holotrack_videos_ended_total", {"outcome": "failed"}
    )
    assert ended == 1


async def test_a_matroska_file_cut_from_later_in_a_recording_is_taken_whole(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """One second cut from 25 s into a recording with FFmpeg's -copyts: its first frame is
    stamped 25000 ms and its stated duration is 26000 ms. It was refused as longer than
    --video-max-seconds, and under a higher limit ended 'truncated or corrupt'."""
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.mkv", 25, size=(160, 90))
    times = [25000.0 + i * 40 for i in range(25)]
    late = retime_matroska(clip, tmp_path / "late.mkv", times, 26000.0)
    client = await make_client(Config(workers=1, video_max_seconds=10.0))
    *rows, last = await lines(await post(client, late.read_bytes(), "", "video/x-matroska"))
    summary = last["summary"]
    assert summary["complete"] is True, summary["error"]
    assert [row["time_ms"] for row in rows] == [i * 40.0 for i in range(25)]
    assert summary["video"]["start_ms"] == 25000.0
    assert summary["video"]["duration_ms"] == 1000.0


async def test_a_clock_that_goes_back_leaves_those_frames_out_and_says_so(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """A frame stamped before the one before it: its line's time_ms went back, and POST
    /api/export refused the server's own answer ('time_ms goes backwards')."""
    clip = write_clip(GESTURE_VIDEO, tmp_path / "ten.mkv", 10, size=(160, 90))
    times = [0.0, 40.0, 80.0, 60.0, 160.0, 200.0, 240.0, 280.0, 320.0, 360.0]
    backwards = retime_matroska(clip, tmp_path / "backwards.mkv", times, 400.0)
    client = await make_client(Config(workers=1))
    found = await lines(await post(client, backwards.read_bytes(), "?rig=1", "video/x-matroska"))
    *rows, last = found
    summary = last["summary"]
    assert summary["complete"] is True, summary["error"]
    assert [row["time_ms"] for row in rows] == [t for t in times if t != 60.0]
    assert (summary["decoded"], summary["skipped"]) == (10, 1)
    [warning] = [w for w in summary["warnings"] if w["code"] == "time_goes_back"]
    assert warning["message"].startswith("1 frame is stamped earlier than a frame before")
    recording = parse_text("".join(json.dumps(line) + "\n" for line in found))
    assert len(recording.frames) == 9
    # Two files joined, the second shorter: its frames stamped from 0 again are left out,
    # and the video still ends where the first reached (it was "truncated or corrupt").
    joined = [i * 40.0 for i in range(7)] + [0.0, 40.0, 80.0]
    tail = retime_matroska(clip, tmp_path / "joined.mkv", joined, 280.0)
    *rows, last = await lines(await post(client, tail.read_bytes(), "", "video/x-matroska"))
    summary = last["summary"]
    assert summary["complete"] is True, summary["error"]
    assert [row["time_ms"] for row in rows] == joined[:7]
    assert summary["skipped"] == 3
    reader = VideoReader(tail, max_seconds=10.0, max_fps=30.0, max_pixels=10**6)
    try:
        while reader.next() is not None:
            pass
        assert reader.decoded_seconds == pytest.approx(0.28)  # what a key is charged
    finally:
        reader.close()


async def test_a_cut_that_starts_between_keyframes_is_complete_with_a_warning(
    make_client: MakeClient,
) -> None:
    """Copied from a frame that is not a keyframe, its first frames cannot be decoded: the
    MP4 was 'truncated or corrupt'. It is tracked from its first keyframe, on the file's
    clock, and the summary says why the frames before it are missing."""
    client = await make_client(Config(workers=1))
    mp4 = CUT_BETWEEN_KEYFRAMES[0]
    *rows, last = await lines(await post(client, mp4.read_bytes()))
    summary = last["summary"]
    assert summary["complete"] is True, summary["error"]
    assert (summary["frames"], summary["video"]["frames"]) == (40, 60)
    assert rows[0]["time_ms"] == pytest.approx(700.0)
    assert summary["with_person"] > 0
    [warning] = summary["warnings"]
    assert warning["code"] == "starts_between_keyframes"
    assert warning["message"].startswith(
        "the first 20 of the 60 frames the file lists (before 700 ms) could not be decoded"
    )
    assert summary["video"]["start_ms"] == pytest.approx(33.3, abs=0.1)


async def test_a_client_that_leaves_stops_the_work(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="webapp.video")
    client = await make_client(Config(workers=1))
    response = await post(client, ASL_VIDEO.read_bytes())  # 311 frames
    assert response.status == 200
    for _ in range(3):
        assert (await response.content.readline()).startswith(b'{"frame":')
    assert client.app[SCHEDULER].snapshot().sessions == 1
    response.close()
    await until(lambda: client.app[SCHEDULER].snapshot().sessions == 0, "the video's slot freed")
    ran = video_frames_run(client)
    assert ran < 311
    # The lane goes on serving others, and no frame of the video runs any more.
    live = await LiveClient.connect(client)
    await live.hello("holistic", 15)
    await live.lockstep(video_frames(GESTURE_VIDEO, count=5))
    assert video_frames_run(client) == ran
    ended = client.app[METRICS].registry.get_sample_value(
        "holotrack_videos_ended_total", {"outcome": "disconnected"}
    )
    assert ended == 1
    # The video's start line has its end, however aiohttp told the handler.
    assert any(": video left by its client after " in r.getMessage() for r in caplog.records)


async def test_a_client_that_leaves_is_noticed_at_the_next_write() -> None:
    app = create_app(Config(workers=1))
    async with served(app) as url, aiohttp.ClientSession() as http:
        headers = {"Content-Type": "video/mp4"}
        response = await http.post(url + "/api/video", data=ASL_VIDEO.read_bytes(), headers=headers)
        assert response.status == 200
        assert (await response.content.readline()).startswith(b'{"frame":')
        response.close()
        await until(lambda: app[SCHEDULER].snapshot().sessions == 0, "the video's slot freed")
        ended = app[METRICS].registry.get_sample_value(
            "holotrack_videos_ended_total", {"outcome": "disconnected"}
        )
        assert ended == 1
        assert (
            app[METRICS].registry.get_sample_value(
                "holotrack_video_frames_total", {"outcome": "processed"}
            )
            or 0
        ) < 311


async def test_a_client_that_leaves_mid_upload_is_counted_not_logged_as_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The audit's abort_upload.py: 5 KB of a 100 KB body, then the socket closed. It gave
    an ERROR 'Error handling request' with a ConnectionResetError traceback."""
    caplog.set_level(logging.INFO, logger="webapp.video.views")
    app = create_app(Config(workers=1, trust_proxy=True))
    loop = asyncio.get_running_loop()
    registry = app[METRICS].registry
    async with served(app) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.socket() as sock:
            sock.setblocking(False)
            await loop.sock_connect(sock, (host, int(port)))
            head = (
                f"POST /api/video HTTP/1.1\r\nHost: {host}\r\nContent-Type: video/mp4\r\n"
                "X-Forwarded-For: 203.0.113.9\r\nContent-Length: 100000\r\n\r\n"
            )
            await loop.sock_sendall(sock, head.encode() + bytes(5000))
            await until(lambda: app[VIDEOS].count == 1, "the upload admitted")
        await until(
            lambda: (
                registry.get_sample_value("holotrack_video_requests_total", {"status": "499"}) == 1
            ),
            "the abandoned upload counted",
        )
        assert app[VIDEOS].count == 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    # Behind a proxy, the line names the client the proxy saw, not the proxy.
    assert any("from 203.0.113.9 abandoned" in r.getMessage() for r in caplog.records)


async def test_an_upload_the_shutdown_cuts_short_is_not_blamed_on_the_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A review: `python -m webapp` stopping cancels, after its 3 s, the uploads still
    arriving, and each was logged "abandoned: the client closed the connection" and counted
    499, though every client was still sending."""
    caplog.set_level(logging.INFO, logger="webapp.video.views")
    app = create_app(Config(workers=1))
    loop = asyncio.get_running_loop()
    runner = aiohttp.web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    await aiohttp.web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    with socket.socket() as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, port))
        head = (
            f"POST /api/video HTTP/1.1\r\nHost: {host}\r\nContent-Type: video/mp4\r\n"
            "Content-Length: 100000\r\n\r\n"
        )
        await loop.sock_sendall(sock, head.encode() + bytes(5000))
        await until(lambda: app[VIDEOS].count == 1, "the upload admitted")
        await runner.cleanup()
    registry = app[METRICS].registry
    metric = "holotrack_video_requests_total"
    counted = {s: registry.get_sample_value(metric, {"status": s}) or 0 for s in ("499", "503")}
    assert counted == {"499": 0, "503": 1}
    said = [r.getMessage() for r in caplog.records]
    assert any("cut short: the server is shutting down" in line for line in said), said
    assert not [line for line in said if "abandoned" in line]


async def test_a_video_the_shutdown_cuts_while_it_writes_is_counted_stopped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A video whose client reads slowly waits in its write, where the shutdown's
    cancellation finds it: it was counted and logged "disconnected", a client that left,
    where the metric's help and the README call a shutdown's end "stopped"."""
    caplog.set_level(logging.INFO, logger="webapp.video.stream")
    app = create_app(Config(workers=1))
    stuck = asyncio.Event()
    write = VideoStream._write

    async def slow_reader(stream: VideoStream, line: bytes) -> None:
        if stuck.is_set() or b'"frame":' not in line:
            await write(stream, line)
            return
        # The first line goes out; the second finds a client that reads no more.
        await write(stream, line)
        stuck.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(VideoStream, "_write", slow_reader)
    runner = aiohttp.web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    await aiohttp.web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    async with aiohttp.ClientSession() as http:
        body = GESTURE_VIDEO.read_bytes()
        url = f"http://{host}:{port}/api/video"
        async with http.post(url, data=body, headers={"Content-Type": "video/mp4"}) as response:
            assert response.status == 200
            await stuck.wait()
            await runner.cleanup()
    registry = app[METRICS].registry
    ended = {
        outcome: registry.get_sample_value("holotrack_videos_ended_total", {"outcome": outcome})
        for outcome in ("stopped", "disconnected")
    }
    assert ended == {"stopped": 1, "disconnected": 0}
    fields = [getattr(r, "outcome", None) for r in caplog.records]
    assert [f for f in fields if f is not None] == ["stopped"]


async def test_a_client_that_stops_reading_holds_little_and_is_cut_off() -> None:
    app = create_app(Config(workers=1, send_timeout=1.0))
    body = ASL_VIDEO.read_bytes()  # 311 frames, about 6 MB of lines
    loop = asyncio.get_running_loop()
    async with served(app) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            await loop.sock_connect(sock, (host, int(port)))
            head = (
                f"POST /api/video HTTP/1.1\r\nHost: {host}\r\nContent-Type: video/mp4\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            await loop.sock_sendall(sock, head.encode() + body)
            # Never read: the server's writes block once the socket's buffers are full.
            await until(lambda: app[SCHEDULER].snapshot().sessions == 1, "the video started")
            await until(
                lambda: app[SCHEDULER].snapshot().sessions == 0, "the stuck client cut off", 60.0
            )
        registry = app[METRICS].registry
        ran = registry.get_sample_value("holotrack_video_frames_total", {"outcome": "processed"})
        assert ran is not None
        # About 35 here: 512 KB of socket buffer and aiohttp's 64 KB at ~17 KB a line.
        assert ran < 100, ran
        ended = registry.get_sample_value(
            "holotrack_videos_ended_total", {"outcome": "disconnected"}
        )
        assert ended == 1


async def test_a_video_and_a_live_session_both_progress(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1))  # one lane: they take turns
    response = await post(client, ASL_VIDEO.read_bytes())
    assert response.status == 200
    assert (await response.content.readline()).startswith(b'{"frame":')
    live = await LiveClient.connect(client)
    await live.hello("holistic", 30)
    before = video_frames_run(client)
    results = await live.lockstep(video_frames(GESTURE_VIDEO, count=10))
    during = video_frames_run(client) - before
    assert len(results) == 10
    # Round robin: about one video frame per live frame, never none.
    assert during >= 5, during
    response.close()
    await until(lambda: client.app[SCHEDULER].snapshot().sessions == 1, "the video ended")


async def test_a_video_whose_worker_dies_says_to_send_it_again(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """The worker killed after the first line: the answer ends with the failure, in words
    for a video (it told a video's client to reconnect, as a live session's)."""
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.mp4", 60, size=(160, 90))
    client = await make_client(Config(workers=1))
    response = await post(client, clip.read_bytes())
    assert response.status == 200
    assert json.loads(await response.content.readline())["frame"] == 0
    worker = client.app[SCHEDULER].workers[0]
    os.kill(worker.pid, signal.SIGKILL)
    *rows, last = await lines(response)
    summary = last["summary"]
    assert summary["complete"] is False
    assert summary["error"]["error"] == "worker_crashed", summary
    assert "send the video again" in summary["error"]["detail"], summary
    assert len(rows) < 59


async def test_the_wait_for_its_graph_is_not_the_first_frames_timeout(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """Graphs are built one at a time per worker, so a burst of new sessions keeps the last
    ones' unbuilt for seconds (23 at once on two busy cores: up to 29 s): the video's first
    frame timed out ('frame 0 got no result within 10 s') while its graph waited. Here
    the worker is stopped where it would build it."""
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.mp4", 5, size=(160, 90))
    client = await make_client(Config(workers=1, request_timeout=1.0))
    worker = client.app[SCHEDULER].workers[0]
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        response = await post(client, clip.read_bytes())
        assert response.status == 200
        # Two and a half of the first frame's timeouts, and no line: neither a frame nor a
        # failure.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(response.content.readline(), 2.5)
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    *rows, last = await lines(response)
    assert last["summary"]["complete"] is True, last["summary"]["error"]
    assert len(rows) == 5


async def test_a_video_waiting_for_its_graph_keeps_a_proxy_reading(tmp_path: Path) -> None:
    """Nothing was sent while the first frame waited for its graph (up to 6 x
    --request-timeout, 60 s by default, behind a burst of sessions), so nginx's
    proxy_read_timeout (60 s) could cut the answer. This client reads as such a proxy does,
    giving up after 1 s without a byte; the worker is stopped where it would build the
    graph until six waiting lines (1.5 s) have come."""
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.mp4", 5, size=(160, 90))
    app = create_app(Config(workers=1, request_timeout=2.0, video_waiting_seconds=0.25))
    proxy_like = aiohttp.ClientTimeout(sock_read=1.0)
    async with served(app) as url, aiohttp.ClientSession(timeout=proxy_like) as http:
        worker = app[SCHEDULER].workers[0]
        os.kill(worker.pid, signal.SIGSTOP)
        try:
            response = await http.post(
                url + "/api/video", data=clip.read_bytes(), headers={"Content-Type": "video/mp4"}
            )
            assert response.status == 200
            waiting = [json.loads(await response.content.readline()) for _ in range(6)]
        finally:
            os.kill(worker.pid, signal.SIGCONT)
        found = await lines(response)
        sent = app[METRICS].registry.get_sample_value("holotrack_video_waiting_lines_total")
    assert [set(line) for line in waiting] == [{"waiting"}] * 6
    assert {line["waiting"]["for"] for line in waiting} == {"graph"}
    waited = [line["waiting"]["waited_ms"] for line in waiting]
    assert waited == sorted(waited)
    assert waited[0] >= 250.0
    *rows, last = [line for line in found if "waiting" not in line]
    assert [row["frame"] for row in rows] == list(range(5))
    assert last["summary"]["complete"] is True, last["summary"]["error"]
    assert sent is not None
    assert sent >= 6
    # The whole answer, waiting lines and all, is a recording POST /api/export reads.
    recording = parse_text("".join(json.dumps(line) + "\n" for line in waiting + found))
    assert len(recording.frames) == 5


async def test_a_graph_never_built_still_ends_the_video(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """The graph's wait has an allowance of its own (6 --request-timeout): a stuck worker
    does not hold the request and its session for ever."""
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.mp4", 5, size=(160, 90))
    client = await make_client(Config(workers=1, request_timeout=1.0))
    scheduler = client.app[SCHEDULER]
    before = await scheduler.graph_counts()
    worker = scheduler.workers[0]
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        (last,) = await lines(await post(client, clip.read_bytes()))
        assert scheduler.snapshot().sessions == 0
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    summary = last["summary"]
    assert (summary["frames"], summary["complete"]) == (0, False)
    assert summary["error"] == {
        "error": "timeout",
        "detail": "the video's tracking graph was not built within 6 s; the server is overloaded",
    }
    # Ended before it was built, the graph is never built (graphs.py): nothing is left.
    assert await scheduler.graph_counts() == before


@dataclass(eq=False)
class Told:
    """A session as the engine sees it: what it is told, in order."""

    said: list[str] = field(default_factory=list)
    built: asyncio.Event = field(default_factory=asyncio.Event)
    answered: asyncio.Event = field(default_factory=asyncio.Event)

    def graph_built(self) -> None:
        self.said.append("graph_built")
        self.built.set()

    def frame_done(self, frame: Frame, result: FrameResult) -> None:
        self.said.append("frame_done")
        self.answered.set()

    def frame_failed(self, frame: Frame, error: HolotrackError) -> None:
        self.said.append(f"frame_failed {error.code}")
        self.answered.set()

    def lost(self, error: HolotrackError) -> None:
        self.said.append(f"lost {error.code}")

    def turn(self) -> None:
        pass


async def test_the_engine_says_when_a_sessions_graph_is_built(make_client: MakeClient) -> None:
    """A video learnt that its graph was built by looking at its slot every 50 ms; the
    worker's answer to OpenGraph is now passed on to the session as graph_built, which it
    waits on. Here the worker is stopped where it would build the graph."""
    client = await make_client(Config(workers=1))
    scheduler = client.app[SCHEDULER]
    worker = scheduler.workers[0]
    told = Told()
    (jpeg,) = video_frames(GESTURE_VIDEO, count=1)
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        slot = scheduler.open_session(Track.HOLISTIC, told, 1.0)
        scheduler.offer(slot, Frame(0, 0.0, jpeg))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(told.built.wait(), 1.0)
        assert told.said == []
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    await asyncio.wait_for(told.answered.wait(), 60.0)
    assert told.said == ["graph_built", "frame_done"]
    # A session closed before its graph is built is never told it was.
    early = Told()
    scheduler.close_session(scheduler.open_session(Track.HOLISTIC, early, 1.0))
    await scheduler.graph_counts()  # answered after the OpenGraph sent before it
    assert early.said == []
    scheduler.close_session(slot)


async def test_a_videos_frames_are_not_held_to_the_live_frames_pixel_limit(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """--max-frame-pixels bounds what a live client sends; a video's frames are the
    server's own, scaled to its working size: lowered as SECURITY.md advises, every frame
    of a 480 x 360 video got too_many_pixels."""
    client = await make_client(Config(workers=1, max_frame_pixels=10_000))
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.mp4", 3).read_bytes()
    found = await lines(await post(client, clip))
    assert found[-1]["summary"]["frames"] == 3
    assert not [line for line in found if "error" in line]


async def test_a_videos_frames_are_not_held_to_the_still_images_pixel_limit(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """--max-pixels bounds an uploaded image; a video's own bound is --video-max-pixels,
    and its frames reach the worker scaled by the server to its working size: --max-pixels
    lowered as SECURITY.md advises for small images, every frame of a 640 x 360 video got
    too_many_pixels, 'scale it down first'."""
    client = await make_client(Config(workers=1, max_pixels=100_000))
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.mp4", 3).read_bytes()
    found = await lines(await post(client, clip))
    assert found[-1]["summary"]["frames"] == 3
    assert not [line for line in found if "error" in line]


async def test_503_at_once_when_full(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1, max_sessions=1))
    live = await LiveClient.connect(client)
    await live.hello("holistic", 15)
    response = await post(client, GESTURE_VIDEO.read_bytes())
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert (await response.json())["error"] == "busy"
    assert (
        client.app[METRICS].registry.get_sample_value(
            "holotrack_video_requests_total", {"status": "503"}
        )
        == 1
    )


async def test_a_video_is_refused_before_its_upload_only_as_the_engine_would(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """A 10 fps camera on the one worker leaves a video room at the rate the engine admits
    it (VideoRun.open); judged as a 15 fps camera before its upload, it was answered 503
    "server full: 1 of 40 sessions in use"."""
    client = await make_client(Config(workers=1, min_session_fps="holistic=15"))
    live = await LiveClient.connect(client)
    await live.hello("holistic", 10)
    # A second camera at 15 fps would be refused: 1000 / 45 - 10 = 12.2 fps left for it.
    assert (await client.get("/readyz")).status == 503
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.mp4", 3).read_bytes()
    found = await lines(await post(client, clip))
    assert found[-1]["summary"]["frames"] == 3
    await live.ws.close()


async def test_a_fault_of_the_servers_is_a_500_and_counted(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in the handler (here: the option parser raising) answers 500 with a JSON
    reason, and counts in the metric the server-errors alert reads."""

    def broken(*_: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(views, "parse_query", broken)
    client = await make_client(Config(workers=1))
    response = await post(client, GESTURE_VIDEO.read_bytes())
    assert response.status == 500
    assert (await response.json())["error"] == "internal"
    registry = client.app[METRICS].registry
    assert registry.get_sample_value("holotrack_video_requests_total", {"status": "500"}) == 1


async def test_uploads_in_progress_count_against_capacity(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client = await make_client(Config(workers=1, max_sessions=1))
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.mp4", 5).read_bytes()
    go_on = asyncio.Event()
    first = held_upload(client, clip, go_on)
    await until(lambda: client.app[VIDEOS].count == 1, "the first upload admitted")
    second = await post(client, clip)
    assert second.status == 503
    assert (await second.json())["error"] == "busy"
    # /readyz says so too: it said ready while /api/video answered 503.
    ready = await client.get("/readyz")
    assert ready.status == 503
    answer = await ready.json()
    assert (answer["status"], answer["sessions"], answer["videos_arriving"]) == ("full", 0, 1)
    assert answer["reason"] == "0 of 1 sessions in use and 1 videos arriving, each to take one"
    go_on.set()
    found = await lines(await first)
    assert found[-1]["summary"]["frames"] == 5
    assert client.app[VIDEOS].count == 0
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["videos_arriving"] == 0


async def test_multipart_parts_besides_the_video_are_bounded_too(make_client: MakeClient) -> None:
    """Sent chunked, a part named otherwise was read to its end, of any size."""
    client = await make_client(Config(workers=1))
    boundary = "holotrack-test-boundary"

    async def body() -> AsyncIterator[bytes]:
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="junk"\r\n\r\n'.encode()
        for _ in range(64):  # 4 MiB, where the parts besides the file may have 64 KiB
            yield b"x" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    response = await client.post("/api/video", data=body(), headers=headers)
    assert response.status == 413
    assert "besides the field 'file'" in (await response.json())["detail"]


async def test_a_video_under_another_name_is_told_its_name(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client = await make_client(Config(workers=1))
    clip = write_clip(ASL_VIDEO, tmp_path / "clip.mp4", 24)
    form = aiohttp.FormData()
    form.add_field("video", clip.read_bytes(), filename="clip.mp4", content_type="video/mp4")
    response = await client.post("/api/video", data=form)
    assert response.status == 400
    answer = await response.json()
    assert answer["error"] == "empty"
    assert "send it as 'file'" in answer["detail"]


async def test_two_videos_in_one_request_are_refused(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client = await make_client(Config(workers=1))
    clip = write_clip(ASL_VIDEO, tmp_path / "clip.mp4", 3).read_bytes()
    form = files_form(clip, "video/mp4", "a.mp4", "b.mp4")
    response = await client.post("/api/video", data=form)
    answer = await response.json()
    assert (response.status, answer["error"]) == (400, "bad_request"), answer
    assert "more than one part named 'file'" in answer["detail"]
    # A big field after the video is drained only as far as the other fields' allowance.
    big = aiohttp.FormData()
    big.add_field("file", clip, filename="a.mp4", content_type="video/mp4")
    big.add_field("notes", b"x" * 200_000, filename="notes.txt")
    response = await client.post("/api/video", data=big)
    assert response.status == 413
    assert "besides the field 'file'" in (await response.json())["detail"]
    # The allowance is for all the other parts, those before the video and after it.
    around = aiohttp.FormData()
    around.add_field("before", b"x" * 40_000, filename="before.txt")
    around.add_field("file", clip, filename="a.mp4", content_type="video/mp4")
    around.add_field("after", b"x" * 40_000, filename="after.txt")
    response = await client.post("/api/video", data=around)
    assert response.status == 413
    assert "besides the field 'file'" in (await response.json())["detail"]


@pytest.mark.parametrize(("query", "name"), [("?rig=on", "rig"), ("?blendshapes=2", "blendshapes")])
async def test_a_switch_not_understood_names_every_spelling_it_takes(
    make_client: MakeClient, query: str, name: str
) -> None:
    """docs/api.md takes true/false and yes/no too; the refusal said "1 or 0" alone."""
    client = await make_client(Config(workers=1))
    form = aiohttp.FormData()
    form.add_field("file", b"\x00" * 64, filename="a.mp4", content_type="video/mp4")
    response = await client.post(f"/api/video{query}", data=form)
    answer = await response.json()
    assert (response.status, answer["error"]) == (400, "bad_option"), answer
    assert answer["detail"] == f"{name} must be 1 or 0 (true or false, yes or no)"


@pytest.mark.parametrize("where", ["before", "after"])
async def test_an_option_sent_as_a_form_field_is_refused_not_dropped(
    make_client: MakeClient, tmp_path: Path, where: str
) -> None:
    """`curl -F file=@a.mp4 -F rig=1` was answered without the rig, the field dropped with
    any other besides the file, and nothing said so."""
    client = await make_client(Config(workers=1))
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.mp4", 3).read_bytes()
    form = aiohttp.FormData()
    if where == "before":
        form.add_field("rig", "1")
    form.add_field("file", clip, filename="a.mp4", content_type="video/mp4")
    if where == "after":
        form.add_field("rig", "1")
    response = await client.post("/api/video", data=form)
    answer = await response.json()
    assert (response.status, answer["error"]) == (400, "bad_option"), answer
    assert (
        answer["detail"]
        == "rig is a query parameter, not a form field: put it in the URL (?rig=...)"
    )
    # Other fields besides the file are still only dropped, and the query still works.
    form = aiohttp.FormData()
    form.add_field("file", clip, filename="a.mp4", content_type="video/mp4")
    form.add_field("submit", "Upload")
    found = await lines(await client.post("/api/video?rig=1", data=form))
    assert all("rig" in line for line in found[:-1])


async def test_one_address_has_at_most_its_share_of_videos_arriving(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """One address with 40 sockets trickling their bodies held every place for the whole
    --upload-timeout (others 503, /readyz full); it has --max-sessions-per-client now."""
    client = await make_client(Config(workers=1, max_sessions=4, max_sessions_per_client=2))
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.mp4", 5).read_bytes()
    go_on = asyncio.Event()
    slow = [held_upload(client, clip, go_on) for _ in range(2)]
    await until(lambda: client.app[VIDEOS].count == 2, "both slow uploads admitted")
    third = await post(client, clip)
    assert third.status == 503
    assert (await third.json())["detail"].startswith("this address has 2 videos arriving")
    assert (await client.get("/readyz")).status == 200  # places left for other addresses
    go_on.set()
    for task in slow:
        assert (await lines(await task))[-1]["summary"]["frames"] == 5
    assert client.app[VIDEOS].count == 0


async def test_one_address_has_at_most_its_share_of_videos_running(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """The share held only while a video arrived: one address whose uploads each got in
    before its next began held every session of the server, with its share at 1."""
    config = Config(workers=1, max_sessions=3, max_sessions_per_client=1, trust_proxy=True)
    client = await make_client(config)
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.mp4", 5).read_bytes()

    async def post_from(address: str, body: bytes) -> aiohttp.ClientResponse:
        headers = {"Content-Type": "video/mp4", "X-Forwarded-For": address}
        return await client.post("/api/video", data=body, headers=headers)

    running = await post_from("192.0.2.1", ASL_VIDEO.read_bytes())  # 311 frames
    assert running.status == 200
    assert (await running.content.readline()).startswith(b'{"frame":')
    assert client.app[VIDEOS].count == 0  # arrived: the engine counts it now
    second = await post_from("192.0.2.1", clip)
    assert second.status == 503
    answer = await second.json()
    assert answer["error"] == "busy"
    assert answer["detail"].startswith("this address has 1 videos arriving or running")
    other = await post_from("192.0.2.2", clip)  # another address is not held up
    assert (await lines(other))[-1]["summary"]["frames"] == 5
    running.close()
    await until(lambda: client.app[SCHEDULER].snapshot().sessions == 0, "the video's slot freed")
    again = await post_from("192.0.2.1", clip)  # the place is given back when it ends
    assert (await lines(again))[-1]["summary"]["frames"] == 5


async def test_a_keys_video_seconds_are_charged_and_refused_with_429(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """--access-keys: each upload charges its length to the key's video_seconds_per_hour
    before the first line; the one that would pass the budget gets 429 with Retry-After."""
    clip = write_clip(ASL_VIDEO, tmp_path / "clip.mp4", 20, fps=10.0)  # 2 s
    key = "k-" + os.urandom(12).hex()
    keys = tmp_path / "keys.jsonl"
    keys.write_text(json.dumps({"name": "films", "key": key, "video_seconds_per_hour": 3}) + "\n")
    client = await make_client(Config(workers=1, access_keys=str(keys)))
    headers = {"Content-Type": "video/mp4", "Authorization": f"Bearer {key}"}

    first = await client.post("/api/video", data=clip.read_bytes(), headers=headers)
    assert (await lines(first))[-1]["summary"]["frames"] == 20
    second = await client.post("/api/video", data=clip.read_bytes(), headers=headers)
    assert second.status == 429
    assert int(second.headers["Retry-After"]) > 3000  # the first upload frees in an hour
    body = await second.json()
    assert "video_seconds_per_hour" in json.dumps(body)
    assert client.app[SCHEDULER].snapshot().sessions == 0
    assert (
        client.app[METRICS].registry.get_sample_value(
            "holotrack_video_requests_total", {"status": "429"}
        )
        == 1.0
    )


async def test_a_video_longer_than_a_keys_whole_hour_is_refused_413(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """A 2 s clip from a key allowed 1.5 s of video an hour: a 429 told it to come back in
    an hour, to be refused again for ever. It is too large for the key: 413, no Retry-After,
    nothing charged, no session left open."""
    clip = write_clip(ASL_VIDEO, tmp_path / "clip.mp4", 20, fps=10.0)  # 2 s
    key = "k-" + os.urandom(12).hex()
    keys = tmp_path / "keys.jsonl"
    keys.write_text(json.dumps({"name": "short", "key": key, "video_seconds_per_hour": 1.5}))
    client = await make_client(Config(workers=1, access_keys=str(keys)))
    headers = {"Content-Type": "video/mp4", "Authorization": f"Bearer {key}"}
    response = await client.post("/api/video", data=clip.read_bytes(), headers=headers)
    assert response.status == 413
    assert "Retry-After" not in response.headers
    body = await response.json()
    assert body["error"] == "too_large"
    assert "the video takes 2 s, and key short may post 1.5 s" in body["detail"]
    assert client.app[ACCESS].quotas.video_seconds("short") == 0.0
    assert client.app[SCHEDULER].snapshot().sessions == 0


async def test_a_keys_video_seconds_are_settled_to_what_was_decoded(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """A WebM from a browser's MediaRecorder states no duration, so it is charged
    --video-max-seconds (600 s) up front: the key stayed 600 s down for a 1 s clip, and a
    key of 700 s an hour got 429 for the second. The charge is now settled to the seconds
    decoded: before the summary, or once a client that left is noticed; and a container
    that understates its length is charged what it held."""
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.webm", 25, size=(160, 90), fourcc="VP80")
    live = without_duration(clip, tmp_path / "live.webm").read_bytes()  # 1 s, says nothing
    key = "k-" + os.urandom(12).hex()
    keys = tmp_path / "keys.jsonl"
    keys.write_text(json.dumps({"name": "films", "key": key, "video_seconds_per_hour": 700}))
    client = await make_client(Config(workers=1, access_keys=str(keys)))
    auth = {"Authorization": f"Bearer {key}"}
    quotas = client.app[ACCESS].quotas
    for used in range(2):
        response = await client.post(
            "/api/video", data=live, headers={**auth, "Content-Type": "video/webm"}
        )
        assert response.status == 200, await response.text()
        assert json.loads(await response.content.readline())["frame"] == 0
        assert quotas.video_seconds("films") == pytest.approx(used + 600.0)  # while it runs
        *rows, last = await lines(response)
        assert (len(rows), last["summary"]["video"]["duration_ms"]) == (24, None)
        assert quotas.video_seconds("films") == pytest.approx(used + 1.0)
    # A client that leaves 3 lines into 10.4 s of video is charged what was decoded by then.
    response = await client.post(
        "/api/video", data=ASL_VIDEO.read_bytes(), headers={**auth, "Content-Type": "video/mp4"}
    )
    for _ in range(3):
        assert (await response.content.readline()).startswith(b'{"frame":')
    assert quotas.video_seconds("films") == pytest.approx(2.0 + 311 / 30)
    response.close()
    await until(lambda: quotas.video_seconds("films") < 3.0, "the key's charge settled")
    # A Matroska file that says 0.4 s and holds 1 s: charged 0.4 s, settled to 1 s.
    mkv = write_clip(GESTURE_VIDEO, tmp_path / "clip.mkv", 25, size=(160, 90))
    short = retime_matroska(mkv, tmp_path / "short.mkv", [i * 40.0 for i in range(25)], 400.0)
    before = quotas.video_seconds("films")
    response = await client.post(
        "/api/video", data=short.read_bytes(), headers={**auth, "Content-Type": "video/webm"}
    )
    assert (await lines(response))[-1]["summary"]["frames"] == 25
    assert quotas.video_seconds("films") == pytest.approx(before + 1.0)
    refunded = client.app[METRICS].registry.get_sample_value(
        "holotrack_key_video_seconds_refunded_total", {"key": "films"}
    )
    assert refunded is not None
    assert refunded > 2 * 599 + 9


async def test_a_video_of_unstated_length_is_cut_where_its_keys_hour_runs_out(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """A key allowed fewer than --video-max-seconds an hour was refused every video whose
    container states no length (a browser's WebM), as the 600 s charged up front never fit.
    Now such a video is charged what the hour has left and cut there, the summary says by
    what; under a second left is refused."""
    live = unstated_three_seconds(tmp_path)
    key = "k-" + os.urandom(12).hex()
    keys = tmp_path / "keys.jsonl"
    keys.write_text(json.dumps({"name": "films", "key": key, "video_seconds_per_hour": 4}))
    client = await make_client(Config(workers=1, access_keys=str(keys)))
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "video/webm"}
    quotas = client.app[ACCESS].quotas

    response = await client.post("/api/video", data=live, headers=headers)
    assert response.status == 200, await response.text()
    summary = (await lines(response))[-1]["summary"]
    assert (summary["frames"], summary["cut"], summary["cut_by"]) == (75, False, None)
    assert summary["complete"] is True
    assert quotas.video_seconds("films") == pytest.approx(3.0)

    response = await client.post("/api/video", data=live, headers=headers)
    assert response.status == 200, await response.text()
    rows, summary = await cut_by(response, "video_seconds_per_hour")
    # The key's last second at 25 fps: frames at 0 to 960 ms, as --video-max-seconds cuts.
    assert len(rows) == summary["frames"] == 25
    assert rows[-1]["time_ms"] == pytest.approx(960.0)
    assert quotas.video_seconds("films") == pytest.approx(4.0)

    response = await client.post("/api/video", data=live, headers=headers)
    assert response.status == 429
    assert (await response.json())["quota"] == "video_seconds_per_hour"


def unstated_three_seconds(tmp_path: Path) -> bytes:
    """3 s of WebM that, as a browser's recording, says nothing of its length."""
    clip = write_clip(GESTURE_VIDEO, tmp_path / "clip.webm", 75, size=(160, 90), fourcc="VP80")
    return without_duration(clip, tmp_path / "live.webm").read_bytes()


async def cut_by(
    response: aiohttp.ClientResponse, setting: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The frame lines and summary of an answer cut short by `setting`."""
    *rows, last = await lines(response)
    summary = last["summary"]
    assert (summary["cut"], summary["cut_by"], summary["complete"]) == (True, setting, False)
    return rows, summary


async def test_a_video_of_unstated_length_is_cut_at_the_servers_limit(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """Cut before the frame at 2.0 s, which begins the third second: kept, it made one
    line more than 2 s at the limit's rate, and POST /api/export, whose frame limit is
    that (600 s at 30 fps by default), refused the server's own answer."""
    live = unstated_three_seconds(tmp_path)
    config = Config(workers=1, video_max_seconds=2.0, max_export_frames=60)  # 2 s at 30 fps
    client = await make_client(config)
    response = await client.post("/api/video", data=live, headers={"Content-Type": "video/webm"})
    assert response.status == 200, await response.text()
    rows, _ = await cut_by(response, "video_max_seconds")
    assert rows[-1]["time_ms"] == pytest.approx(1960.0)  # 25 fps: 50 frames, 0 to 1.96 s
    assert len(rows) == 50
    recording = "".join(json.dumps(row) + "\n" for row in rows)
    exported = await client.post(
        "/api/export?format=csv",
        data=recording,
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert exported.status == 200, await exported.text()
    assert len((await exported.text()).splitlines()) == 1 + len(rows)


async def test_a_video_refused_503_after_its_upload_is_not_charged(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """A live session may take the last slot while a video uploads, and the video then gets
    its 503 after the upload: its key was charged the video's seconds all the same, and a
    retry once the slot was free was refused 429 for an hour."""
    clip = write_clip(ASL_VIDEO, tmp_path / "clip.mp4", 20, fps=10.0).read_bytes()  # 2 s
    key = "k-" + os.urandom(12).hex()
    keys = tmp_path / "keys.jsonl"
    keys.write_text(json.dumps({"name": "films", "key": key, "video_seconds_per_hour": 3}) + "\n")
    client = await make_client(Config(workers=1, max_sessions=1, access_keys=str(keys)))
    headers = {"Content-Type": "video/mp4", "Authorization": f"Bearer {key}"}
    go_on = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield clip[:1000]
        await go_on.wait()
        yield clip[1000:]

    first = asyncio.create_task(client.post("/api/video", data=slow_body(), headers=headers))
    await until(lambda: client.app[VIDEOS].count == 1, "the upload admitted")
    live = await LiveClient.connect(client)
    await live.hello("holistic", 15, key=key)
    go_on.set()
    refused = await first
    assert refused.status == 503
    assert (await refused.json())["error"] == "busy"
    await live.ws.close()
    await until(lambda: client.app[SCHEDULER].snapshot().sessions == 0, "the live session gone")
    # None of its 2 s was charged: the retry's fit in the key's 3.
    retry = await client.post("/api/video", data=clip, headers=headers)
    assert (await lines(retry))[-1]["summary"]["frames"] == 20
