"""The camera pages on a phone (390x844 portrait and on its side, touch, three device
pixels to a CSS pixel) in the real Chromium, running: nothing wider than the screen,
every control big enough for a finger and not covered, a slider's end words beside it,
the camera and the avatar within the screen, the workout log's figures readable on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import fake_camera_args, open_phone, write_y4m
from tests.conftest import Client, MakeClient
from tests.media import ASL_VIDEO, PERSON_JPEG
from tests.test_avatar_page import needs_node_modules
from webapp.config import Config

pytestmark = pytest.mark.browser

PORTRAIT = (390, 844)
LANDSCAPE = (844, 390)
# Apple's and WCAG's (2.5.5) target size, in CSS pixels.
FINGER = 44

# Elements that reach past the screen's sides, but for those inside a box that scrolls
# sideways itself (the workout log's table).
WIDE_JS = """() => {
  const width = document.documentElement.clientWidth;
  const scrolls = (e) => {
    for (let up = e.parentElement; up; up = up.parentElement) {
      if (["auto", "scroll", "hidden"].includes(getComputedStyle(up).overflowX)) return true;
    }
    return false;
  };
  return [...document.body.querySelectorAll("*")]
    .map((e) => [e, e.getBoundingClientRect()])
    .filter(([e, r]) => r.width && (r.left < -0.5 || r.right > width + 0.5) && !scrolls(e))
    .map(([e, r]) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}: ${r.left}-${r.right}`);
}"""

# Controls a finger cannot hit: smaller than `finger` either way, or covered where it
# would tap. A box or a radio is tapped by its label; links inside sentences are exempt.
# Every section is opened first, so the controls folded away are measured too.
SMALL_JS = """async (finger) => {
  for (const details of document.querySelectorAll("details")) details.open = true;
  await new Promise((shown) => requestAnimationFrame(() => requestAnimationFrame(shown)));
  const controls = document.querySelectorAll(
    "button, select, input:not([type=hidden]), .share-row a");
  const out = [];
  for (const control of controls) {
    const boxed = ["checkbox", "radio"].includes(control.type);
    const target = boxed ? control.closest("label") : control;
    if (!target || !control.getClientRects().length) continue;
    target.scrollIntoView({ block: "center", inline: "center" });
    const r = target.getBoundingClientRect();
    const name = control.id || control.name || control.textContent.trim();
    if (r.width < finger || r.height < finger) out.push(`${name}: ${r.width}x${r.height}`);
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    if (!target.contains(hit) && !(hit?.htmlFor && hit.control === control)) {
      out.push(`${name}: covered by ${hit?.tagName}#${hit?.id}`);
    }
  }
  window.scrollTo(0, 0);
  return out;
}"""

# How much of each box is off the screen's width and height when scrolled into view.
OUTSIDE_JS = """(ids) => ids.map((id) => {
  const e = document.getElementById(id);
  const r = e.getBoundingClientRect();
  return [id, Math.max(0, r.width - innerWidth), Math.max(0, r.height - innerHeight)];
})"""

# A slider's end words ("snappy", "smooth") that are not on the slider's own line.
RANGE_ENDS_JS = """() => [...document.querySelectorAll("input[type=range]")].flatMap((range) => {
  const r = range.getBoundingClientRect();
  return [...range.parentElement.querySelectorAll(".range-end")]
    .map((end) => [end, end.getBoundingClientRect()])
    .filter(([, e]) => e.top + e.height / 2 < r.top || e.top + e.height / 2 > r.bottom)
    .map(([end]) => `${range.id}: "${end.textContent}"`);
})"""

# The workout log's cells that reach past the screen (hidden off the side) or break their
# words over lines (a date in three pieces).
LOG_JS = """() => [...document.querySelectorAll("#log-body td")].flatMap((td) => {
  const r = td.getBoundingClientRect();
  const text = document.createRange();
  text.selectNodeContents(td);
  const lines = new Set([...text.getClientRects()].map((line) => Math.round(line.top))).size;
  return r.right > innerWidth + 0.5 || lines > 1
    ? [`${td.dataset.label}: "${td.textContent}" ${r.left}-${r.right}, ${lines} lines`] : [];
})"""

PAGES = {
    "/": ("body[data-live-ready]", "#live-start", "#live-results", ["live-stage"]),
    "/avatar": (
        "body[data-avatar-ready]",
        "#avatar-start",
        "#avatar-stage[data-results]",
        ["avatar-view", "avatar-stage"],
    ),
    "/fitness": ("body[data-fitness-ready]", "#fitness-start", "#fitness-stage", ["fitness-stage"]),
}
# A result in, whatever the page counts it with.
RESULTS_JS = """(selector) => {
  const e = document.querySelector(selector);
  return Number(e.dataset.results ?? e.textContent) > 0;
}"""


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    return await make_client(Config(workers=1, no_cache=True))


@pytest.mark.parametrize("viewport", [PORTRAIT, LANDSCAPE], ids=["portrait", "landscape"])
@pytest.mark.parametrize("path", list(PAGES))
async def test_a_running_page_fits_a_phone_and_every_control_a_finger(
    client: Client, tmp_path: Path, path: str, viewport: tuple[int, int]
) -> None:
    if path == "/avatar":
        needs_node_modules()
    ready, start, counter, boxes = PAGES[path]
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=30)
    async with open_phone(viewport, fake_camera_args(y4m)) as browser:
        page = browser.page
        await page.goto(str(client.make_url(path)))
        await page.wait_for_selector(ready, state="attached")
        await page.wait_for_selector(f"{start}:enabled")
        await page.tap(start)
        await page.wait_for_function(RESULTS_JS, arg=counter)
        assert await page.evaluate("document.documentElement.scrollWidth") == viewport[0]
        assert await page.evaluate(WIDE_JS) == []
        assert await page.evaluate(SMALL_JS, FINGER) == []
        assert await page.evaluate(OUTSIDE_JS, boxes) == [[box, 0, 0] for box in boxes]
        assert await page.evaluate(RANGE_ENDS_JS) == []
        if path == "/fitness":
            await page.wait_for_selector("#log-body td", state="attached")
            assert await page.evaluate(LOG_JS) == []
        assert browser.errors == []


async def test_a_photo_with_a_long_file_name_keeps_the_page_within_a_phone(
    client: Client, tmp_path: Path
) -> None:
    # A Samsung screenshot's name: no space or hyphen for the status line to break at.
    photo = tmp_path / "Screenshot_20261206_224512_Camera.jpg"
    photo.write_bytes(PERSON_JPEG.read_bytes())
    async with open_phone(PORTRAIT) as browser:
        page = browser.page
        await page.goto(str(client.make_url("/")))
        await page.wait_for_selector("body[data-still-ready]", state="attached")
        await page.set_input_files("#file", str(photo))
        await page.wait_for_selector("#still-status[data-kind=ok]")
        assert photo.name in await page.inner_text("#still-status")
        assert await page.evaluate("document.documentElement.scrollWidth") == PORTRAIT[0]
        assert await page.evaluate(WIDE_JS) == []
        assert browser.errors == []


# Where the stage and the count are on the screen once the stage is scrolled into its middle.
IN_VIEW_JS = """() => {
  document.getElementById("fitness-stage").scrollIntoView({ block: "center" });
  return ["fitness-stage", "fitness-reps"].map((id) => {
    const r = document.getElementById(id).getBoundingClientRect();
    return r.top >= 0 && r.bottom <= innerHeight && r.left >= 0 && r.right <= innerWidth;
  });
}"""


@pytest.mark.parametrize("viewport", [(740, 360), (640, 360)], ids=["740", "640"])
async def test_on_a_phone_on_its_side_the_count_is_beside_the_picture(
    client: Client, tmp_path: Path, viewport: tuple[int, int]
) -> None:
    """A phone 360 px high on its side (many Androids) had the fitness page in one column,
    the count under the picture: never on the screen with it, while one 390 px high (an
    iPhone's, 844 wide) had it beside."""
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=30)
    async with open_phone(viewport, fake_camera_args(y4m)) as browser:
        page = browser.page
        await page.goto(str(client.make_url("/fitness")))
        await page.wait_for_selector("body[data-fitness-ready]", state="attached")
        await page.wait_for_selector("#fitness-start:enabled")
        await page.tap("#fitness-start")
        await page.wait_for_function(RESULTS_JS, arg="#fitness-stage")
        assert await page.evaluate(IN_VIEW_JS) == [True, True]
        assert await page.evaluate("document.documentElement.scrollWidth") == viewport[0]
        assert await page.evaluate(WIDE_JS) == []
        assert await page.evaluate(SMALL_JS, FINGER) == []
        assert browser.errors == []
