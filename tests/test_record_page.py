"""Record / Stop recording on the live, avatar and fitness pages, in a real headless Chromium
with a fake camera playing the shared footage: the page downloads a JSON-lines recording
that POST /api/export turns into BVH and CSV (issue 15)."""

from __future__ import annotations

import csv
import datetime
import io
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from bvh import Bvh
from playwright.async_api import Download, Page

from bench.fitness_clips import PUSHUPS
from tests.browser import BrowserPage, fake_camera_args, open_page, write_y4m
from tests.conftest import Client, MakeClient
from tests.media import ASL_VIDEO
from webapp.avatar_page import AvatarPaths, missing_files
from webapp.config import Config
from webapp.routes import STATIC_DIR
from webapp.static_files import static_files

# Enough results to be a recording, few enough for a busy 2-core machine.
RECORD_FRAMES = 8
NDJSON = {"Content-Type": "application/x-ndjson"}


@dataclass(frozen=True)
class PageCase:
    name: str
    path: str
    ready: str
    video: Path


PAGES = {
    "live": PageCase("live", "/", "body[data-live-ready]", ASL_VIDEO),
    "avatar": PageCase("avatar", "/avatar", "body[data-avatar-ready=true]", ASL_VIDEO),
    "fitness": PageCase("fitness", "/fitness", "body[data-fitness-ready]", PUSHUPS),
}


async def open_case(browser: BrowserPage, client: Client, case: PageCase) -> None:
    if case.name == "avatar" and missing_files(AvatarPaths()):
        pytest.fail("run `make test` (npm ci) first: the avatar page needs node_modules")
    await browser.page.goto(str(client.make_url(case.path)))
    await browser.page.wait_for_selector(case.ready, state="attached")


async def record(browser: BrowserPage, case: PageCase, stop: str) -> str:
    """Start, Record, wait for RECORD_FRAMES results, then `stop` (the button that ends the
    recording); returns the downloaded file's text."""
    page = browser.page
    button = f"#{case.name}-record"
    assert await page.is_disabled(button)  # no session, nothing to record
    await page.click(f"#{case.name}-start")
    await page.wait_for_selector(f"{button}:not([disabled])")
    await page.click(button)
    assert await page.text_content(button) == "Stop recording"
    await page.wait_for_function(
        "([selector, n]) => Number(document.querySelector(selector).dataset.frames) >= n",
        arg=[button, RECORD_FRAMES],
    )
    async with page.expect_download() as info:
        await page.click(stop)
    download = await info.value
    assert download.suggested_filename.startswith(f"holotrack-{case.name}-")
    assert download.suggested_filename.endswith(".jsonl")
    assert await page.text_content(button) == "Record"
    status = await page.text_content(f"#{case.name}-record-status")
    assert status is not None
    assert "frames" in status
    return Path(await download.path()).read_text(encoding="utf-8")


def check_lines(text: str, case: PageCase) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) >= RECORD_FRAMES
    assert [line["frame"] for line in lines] == list(range(len(lines)))
    assert lines[0]["time_ms"] == 0
    times = [line["time_ms"] for line in lines]
    assert times == sorted(times)
    for line in lines:
        assert set(line["landmarks"]) == {"pose", "face", "left_hand", "right_hand"}
        assert set(line["image"]) == {"width", "height"}
        assert ("fitness" in line) == (case.name == "fitness")
        if case.name != "avatar":
            assert "rig" not in line
    assert any(line["landmarks"]["pose"] is not None for line in lines)
    if case.name == "avatar":
        assert any("bones" in line.get("rig", {}) for line in lines)
    return lines


async def exported(client: Client, text: str, fmt: str) -> str:
    response = await client.post(f"/api/export?format={fmt}", data=text, headers=NDJSON)
    assert response.status == 200, await response.text()
    return await response.text()


@pytest.mark.browser
@pytest.mark.parametrize("name", ["live", "avatar", "fitness"])
async def test_the_pages_recording_is_what_export_accepts(
    make_client: MakeClient, tmp_path: Path, name: str
) -> None:
    case = PAGES[name]
    client = await make_client(Config(workers=1, no_cache=True))
    y4m = write_y4m(case.video, tmp_path / "camera.y4m", frames=75)
    async with open_page(fake_camera_args(y4m)) as browser:
        await open_case(browser, client, case)
        # The live and avatar pages stop recording with their own button; on the fitness
        # page Stop ends the session, which ends the recording and downloads it too.
        stop = f"#{name}-stop" if name == "fitness" else f"#{name}-record"
        text = await record(browser, case, stop)
        assert browser.errors == []
    lines = check_lines(text, case)
    assert Bvh(await exported(client, text, "bvh")).nframes == len(lines)
    rows = list(csv.reader(io.StringIO(await exported(client, text, "csv"))))
    assert len(rows) == 1 + len(lines)
    assert ("reps" in rows[0]) == (name == "fitness")


@pytest.mark.browser
async def test_a_one_result_take_says_one_frame(static_client: Client) -> None:
    async with open_page() as browser:
        page = browser.page
        await page.goto(str(static_client.make_url("/")))
        said, download = await one_result_take(page)
        text = Path(await download.path()).read_text(encoding="utf-8")
        assert browser.errors == []
    assert len(text.splitlines()) == 1
    assert said.startswith("Saved: 1 frame, ")


async def one_result_take(page: Page) -> tuple[str, Download]:
    """A recorder on `page` given one result between its Record and Stop recording: what
    it says, and its download."""
    async with page.expect_download() as info:
        said = await page.evaluate(
            """async () => {
              const { Recorder } = await import("/static/record.js");
              const button = document.createElement("button");
              const status = document.createElement("p");
              document.body.append(button, status);
              const recorder = new Recorder({ button, status, name: "live" });
              recorder.available(true);
              button.click();
              const landmarks = { pose: null, face: null, left_hand: null, right_hand: null };
              recorder.add({ capture_ms: 1000, landmarks, image: { width: 4, height: 3 } });
              button.click();
              return status.textContent;
            }"""
        )
    return said, await info.value


@pytest.fixture
async def static_client(aiohttp_client: Callable[[web.Application], Awaitable[Client]]) -> Client:
    """Only /static and a blank page: the recorder's limit needs no server behind it."""

    async def blank(request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>blank</title>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/", blank)
    app.router.add_get("/static/{name:.+}", static_files(STATIC_DIR))
    return await aiohttp_client(app)


@pytest.mark.browser
async def test_a_recording_stops_and_saves_itself_at_its_limit(static_client: Client) -> None:
    async with open_page() as browser:
        page = browser.page
        await page.goto(str(static_client.make_url("/")))
        async with page.expect_download() as info:
            limit = await page.evaluate(
                """async () => {
                  const { Recorder, MAX_FRAMES } = await import("/static/record.js");
                  const button = document.createElement("button");
                  const status = document.createElement("p");
                  status.id = "status";
                  document.body.append(button, status);
                  const recorder = new Recorder({ button, status, name: "test" });
                  recorder.available(true);
                  button.click();
                  const landmarks = { pose: null, face: null, left_hand: null, right_hand: null };
                  const image = { width: 4, height: 3 };
                  for (let i = 0; i <= MAX_FRAMES + 5; i++) {
                    recorder.add({ capture_ms: 1000 + i * 40, landmarks, image });
                  }
                  window.recorder = recorder;
                  return MAX_FRAMES;
                }"""
            )
        download = await info.value
        text = Path(await download.path()).read_text(encoding="utf-8")
        assert await page.evaluate("window.recorder.recording") is False
        status = await page.text_content("#status")
        assert status is not None
        assert f"limit of {limit} frames" in status
        assert browser.errors == []
    lines = text.splitlines()
    assert len(lines) == limit
    assert json.loads(lines[-1])["time_ms"] == (limit - 1) * 40


@pytest.mark.browser
async def test_a_recording_is_named_by_the_persons_own_date_and_time(
    static_client: Client,
) -> None:
    """An evening's take in California is named that evening, as the workout log's file is,
    not after the next day's date in UTC."""
    evening = datetime.datetime(2026, 12, 7, 20, 15, 30, tzinfo=ZoneInfo("America/Los_Angeles"))
    async with open_page(timezone_id="America/Los_Angeles") as browser:
        page = browser.page
        await page.clock.install(time=evening)
        await page.goto(str(static_client.make_url("/")))
        _, download = await one_result_take(page)
        name = download.suggested_filename
        assert browser.errors == []
    assert name == "holotrack-live-2026-12-07T20-15-30.jsonl"
