"""Faults a click-through of the avatar page found, each in the real Chromium: the
smoothing row on a 360 px phone, the wake lock's words after a page hidden while it asked,
the phone's code on a server a phone cannot reach, and status lines left from a state
that is over."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from tests.browser import (
    fake_camera_args,
    hide_page,
    open_page,
    open_phone,
    show_page,
    write_y4m,
)
from tests.conftest import Client, MakeClient
from tests.media import ASL_VIDEO
from tests.test_avatar_page import needs_node_modules, open_avatar
from tests.test_phone_handover import TWO_ORIGINS
from webapp.app import create_app
from webapp.config import Config

pytestmark = pytest.mark.browser

CONFIG = Config(workers=1, no_cache=True)

# Where each part of the smoothing row is: [top, bottom, left, right] and, for the value,
# how many lines its words take.
SMOOTHING_JS = """() => {
  const row = document.querySelector(".smoothing");
  const box = (e) => {
    const r = e.getBoundingClientRect();
    return [r.top, r.bottom, r.left, r.right];
  };
  const [snappy, smooth] = row.querySelectorAll(".range-end");
  const value = document.getElementById("avatar-smoothing-value");
  const words = document.createRange();
  words.selectNodeContents(value);
  const name = document.createRange();
  name.setStart(row, 0);
  name.setEnd(row, 1);
  return {
    width: document.documentElement.clientWidth,
    name: box(name),
    snappy: box(snappy),
    slider: box(document.getElementById("avatar-smoothing")),
    smooth: box(smooth),
    value: box(value),
    valueLines: new Set([...words.getClientRects()].map((line) => Math.round(line.top))).size,
  };
}"""


def middle(box: list[float]) -> float:
    return (box[0] + box[1]) / 2


def on_the_line_of(part: list[float], line: list[float]) -> bool:
    return line[0] <= middle(part) <= line[1]


async def test_the_smoothing_row_keeps_its_slider_ends_and_value_together_on_a_360px_phone(
    make_client: MakeClient,
) -> None:
    needs_node_modules()
    client = await make_client(CONFIG)
    async with open_phone((360, 740)) as browser:
        page = browser.page
        await open_avatar(browser, client)
        # The server's default, then the longest value the slider shows.
        for position in (None, "2"):
            if position:
                await page.fill("#avatar-smoothing", position)
                await page.wait_for_function(
                    "() => document.getElementById('avatar-smoothing-value').textContent"
                    ".includes('Hz')"
                )
            row = await page.evaluate(SMOOTHING_JS)
            # Both ends beside the slider, on its line: "smooth" went under "snappy".
            assert on_the_line_of(row["snappy"], row["slider"]), row
            assert on_the_line_of(row["smooth"], row["slider"]), row
            assert row["snappy"][3] <= row["slider"][2] <= row["slider"][3] <= row["smooth"][2]
            # The value on one line, with the name it is the value of.
            assert row["valueLines"] == 1, row
            assert on_the_line_of(row["value"], row["name"]), row
            for part in ("name", "snappy", "slider", "smooth", "value"):
                assert row[part][2] >= 0, (part, row)
                assert row[part][3] <= row["width"], (part, row)
        assert browser.errors == []


# The page's first wake lock request is answered only when the test says, refused as
# Chromium refuses a page hidden while it asked; later ones go to the browser's own.
LATE_REFUSAL_JS = """
window.__wakeAsks = 0;
const request = WakeLock.prototype.request;
WakeLock.prototype.request = function (type) {
  window.__wakeAsks += 1;
  if (window.__wakeAsks > 1) return request.call(this, type);
  return new Promise((resolve, reject) => {
    const hidden = new DOMException("The requesting page is not visible", "NotAllowedError");
    window.__refuseWake = () => reject(hidden);
  });
};
"""


async def test_a_lock_refused_while_the_page_was_hidden_is_asked_again_not_said_refused(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """A phone locked just after Start: the refusal for being hidden comes once the page is
    shown again. It said "The browser would not keep the screen on" and never asked again,
    while the browser would have; the screen then went off with the camera."""
    needs_node_modules()
    client = await make_client(CONFIG)
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=30)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await page.add_init_script(LATE_REFUSAL_JS)
        await open_avatar(browser, client)
        await page.click("#avatar-start")
        await page.wait_for_function("() => window.__wakeAsks === 1")
        await hide_page(page)
        await show_page(page)
        await page.evaluate("() => window.__refuseWake()")
        await page.wait_for_selector("body[data-wake=held]", state="attached", timeout=20_000)
        assert await page.evaluate("() => window.__wakeAsks") == 2
        assert await page.is_hidden(".wake-note")
        await page.click("#avatar-stop")
        await page.wait_for_selector("body[data-wake=off]", state="attached")
        assert browser.errors == []


async def test_on_a_loopback_server_the_phone_section_says_why_there_is_no_code(
    make_client: MakeClient, aiohttp_client: Callable[[web.Application], Awaitable[Client]]
) -> None:
    needs_node_modules()
    loopback = await make_client(CONFIG)
    async with open_page() as browser:
        page = browser.page
        await open_avatar(browser, loopback)
        await page.click("#phone-share summary")
        await page.wait_for_selector("#phone-status:not([hidden])")
        said = await page.inner_text("#phone-status")
        # Nothing tells the person to scan a code that is not there, or who may scan it.
        assert await page.locator("#phone-code svg").count() == 0
        assert await page.get_by_text("Scan this code with the phone").is_hidden()
        assert await page.get_by_text("Whoever scans the code").is_hidden()
        assert await page.is_hidden("#pair-offer")
        # Why, naming the address it was opened at, and how to have a code.
        assert f"open at {loopback.host}:{loopback.port}" in said, said
        assert "a phone cannot reach" in said, said
        assert "--host 0.0.0.0 --self-signed" in said, said
        assert "Phone as the camera" in said, said

        # A server that names where phones reach it: the code, and the words on it, are back.
        reachable = await aiohttp_client(create_app(CONFIG, TWO_ORIGINS))
        await open_avatar(browser, reachable)
        await page.click("#phone-share summary")
        await page.wait_for_selector("#phone-code svg")
        assert await page.get_by_text("Scan this code with the phone").is_visible()
        assert await page.get_by_text("Whoever scans the code").is_visible()
        assert "No code" not in await page.inner_text("#phone-share")
        assert browser.errors == []


async def test_status_lines_of_a_state_that_is_over_go_with_it(
    make_client: MakeClient, tmp_path: Path
) -> None:
    needs_node_modules()
    client = await make_client(CONFIG)
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=30)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        await open_avatar(browser, client)
        # Calibrate pressed before the session is there: refused in words...
        await page.evaluate(
            """() => {
              document.getElementById("avatar-start").click();
              document.getElementById("avatar-calibrate").click();
            }"""
        )
        assert "Not calibrated: wait until" in await page.inner_text("#avatar-calibration")
        # ...which the session, once there, makes untrue.
        await page.wait_for_selector("body[data-session]", state="attached")
        await page.wait_for_selector("#avatar-calibration", state="hidden")

        # "Link copied." under a link the framing has changed: the clipboard holds the old.
        await page.click("#watch-copy")
        await page.wait_for_selector("#watch-share-status:not([hidden])")
        copied = await page.evaluate("navigator.clipboard.readText()")
        await page.check("input[name=avatar-framing][value=full]")
        assert await page.inner_text("#watch-link") == f"{copied}&framing=full"
        await page.wait_for_selector("#watch-share-status", state="hidden")

        # "Command copied." from a session that is over: it stayed after Stop and Start.
        await page.click("#relay-copy")
        await page.wait_for_selector("#relay-status:not([hidden])")
        await page.click("#avatar-stop")
        await page.wait_for_selector("#avatar-start:enabled")
        assert await page.is_hidden("#relay-status")
        assert await page.is_hidden("#avatar-calibration")
        assert browser.errors == []
