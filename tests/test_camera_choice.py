"""The camera a page opens (static/camera_choice.js): on a computer with several, each by
its name, switched while the session goes on and kept for the next visit; one chosen
before and since unplugged gives way to the default, in words. Real Chromium, with its
fake cameras standing for a webcam, a capture card and OBS's virtual camera."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page

from tests.browser import BrowserPage, open_page
from tests.conftest import Client, MakeClient
from tests.test_avatar_page import needs_node_modules
from tests.test_browser import open_index
from webapp.config import Config

pytestmark = pytest.mark.browser

THREE_CAMERAS = "--use-fake-device-for-media-stream=device-count=3"
# The name of the camera the page's video shows, or null.
SHOWN_JS = (
    "() => document.getElementById('live-video').srcObject?.getVideoTracks()[0]?.label ?? null"
)


# Chromium's fake cameras cannot be unplugged. Here the browser's list leaves out those
# in window.unplugged, and asked for by id one of them is not found; plug() does what a
# browser does as a camera comes and goes: the one in use ends, and the cameras changed.
UNPLUGGABLE_JS = """
window.unplugged = new Map(); // label -> deviceId
window.allDevices = MediaDevices.prototype.enumerateDevices;
MediaDevices.prototype.enumerateDevices = async function () {
  const devices = await window.allDevices.call(this);
  return devices.filter((device) => !window.unplugged.has(device.label));
};
const getUserMedia = MediaDevices.prototype.getUserMedia;
MediaDevices.prototype.getUserMedia = async function (constraints) {
  const id = constraints?.video?.deviceId?.exact;
  if (id && [...window.unplugged.values()].includes(id)) {
    throw new DOMException("Requested device not found", "NotFoundError");
  }
  return getUserMedia.call(this, constraints);
};
"""
PLUG_JS = """async ([label, out]) => {
  if (out) {
    const devices = await window.allDevices.call(navigator.mediaDevices);
    window.unplugged.set(label, devices.find((device) => device.label === label).deviceId);
    const track = document.getElementById("live-video").srcObject?.getVideoTracks()[0];
    if (track?.label === label) track.dispatchEvent(new Event("ended"));
  } else {
    window.unplugged.delete(label);
  }
  navigator.mediaDevices.dispatchEvent(new Event("devicechange"));
}"""


def results_above(count: int) -> str:
    return f"() => Number(document.getElementById('live-results').textContent) > {count}"


def shown_is(label: str) -> str:
    return f"() => ({SHOWN_JS})() === '{label}'"


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    return await make_client(Config(workers=1, no_cache=True))


@contextlib.asynccontextmanager
async def tracking(client: Client, script: str = "") -> AsyncIterator[BrowserPage]:
    """The live page on three fake cameras, allowed, with `script` run first in it,
    tracking (some results in)."""
    async with open_page(["--use-fake-ui-for-media-stream", THREE_CAMERAS]) as browser:
        if script:
            await browser.page.add_init_script(script)
        await open_index(browser, client)
        await browser.page.click("#live-start")
        await browser.page.wait_for_function(results_above(2))
        yield browser


async def test_several_cameras_are_listed_by_name_and_the_one_chosen_is_opened(
    client: Client,
) -> None:
    async with tracking(client) as browser:
        page = browser.page
        assert await page.evaluate(SHOWN_JS) == "fake_device_0"
        await page.wait_for_selector("#live-camera optgroup", state="attached")
        names = await page.eval_on_selector_all(
            "#live-camera option", "(all) => all.map((o) => o.textContent)"
        )
        assert names == ["Front", "Back", "fake_device_0", "fake_device_1", "fake_device_2"]

        # Chosen while running: the camera changes, the session goes on.
        session = await page.inner_text("#live-session")
        await page.select_option("#live-camera", label="fake_device_2")
        await page.wait_for_function(shown_is("fake_device_2"))
        now = int(await page.inner_text("#live-results"))
        await page.wait_for_function(results_above(now + 3))
        assert await page.inner_text("#live-session") == session
        assert await page.get_attribute("#live-status", "data-kind") != "error"
        kept = await page.evaluate("localStorage.getItem('holotrack.camera')")
        assert kept == await page.input_value("#live-camera")
        assert kept.startswith("device:")

        # The next visit opens it again.
        await page.click("#live-stop")
        await page.reload()
        await page.wait_for_selector("body[data-live-ready]", state="attached")
        assert await page.input_value("#live-camera") == kept
        await page.click("#live-start")
        await page.wait_for_function(results_above(0))
        assert await page.evaluate(SHOWN_JS) == "fake_device_2"
        assert browser.errors == []


async def test_the_chosen_camera_unplugged_and_plugged_in_again_is_followed(
    client: Client,
) -> None:
    """Unplugged while running, the chosen camera gives way to the default, as any camera
    that stops does (a pause, then tracking goes on by itself); plugged in again, it is
    taken up by itself, the session going on."""
    async with tracking(client, UNPLUGGABLE_JS) as browser:
        page = browser.page
        await page.wait_for_selector("#live-camera optgroup", state="attached")
        await page.select_option("#live-camera", label="fake_device_2")
        await page.wait_for_selector("#live-video[data-opened=fake_device_2]", state="attached")
        kept = await page.input_value("#live-camera")

        # The camera in use ends as it goes: the page says so once another is open.
        await page.evaluate(PLUG_JS, ["fake_device_2", True])
        await page.wait_for_function(
            "() => document.getElementById('live-notice').textContent.endsWith("
            "'the camera “fake_device_2” stopped, and fake_device_0 was opened in its place.')"
        )
        assert await page.evaluate(SHOWN_JS) == "fake_device_0"
        assert await page.input_value("#live-camera") == "user"
        names = await page.eval_on_selector_all(
            "#live-camera option", "(all) => all.map((o) => o.textContent)"
        )
        assert names == ["Front", "Back", "fake_device_0", "fake_device_1"]
        now = int(await page.inner_text("#live-results"))
        await page.wait_for_function(results_above(now + 3))
        assert await page.get_attribute("#live-status", "data-kind") == "ok"

        session = await page.inner_text("#live-session")
        await page.evaluate(PLUG_JS, ["fake_device_2", False])
        await page.wait_for_function(shown_is("fake_device_2"))
        assert await page.input_value("#live-camera") == kept
        now = int(await page.inner_text("#live-results"))
        await page.wait_for_function(results_above(now + 3))
        assert await page.inner_text("#live-session") == session
        assert await page.evaluate("localStorage.getItem('holotrack.camera')") == kept
        assert await page.get_attribute("#live-status", "data-kind") != "error"
        assert browser.errors == []


# The browser's own getUserMedia, and whether `constraints` ask for the camera named
# `label`: the scripts below make one named camera misbehave.
NAMED_CAMERA_JS = """
const start = MediaDevices.prototype.getUserMedia;
async function asksFor(media, constraints, label) {
  const id = constraints?.video?.deviceId?.exact;
  const devices = id ? await media.enumerateDevices() : [];
  return devices.some((device) => device.deviceId === id && device.label === label);
}
"""
# The camera named window.busy is held by another program: asked for, it will not start.
BUSY_JS = (
    NAMED_CAMERA_JS
    + """
MediaDevices.prototype.getUserMedia = async function (constraints) {
  if (await asksFor(this, constraints, window.busy)) {
    throw new DOMException("Could not start video source", "NotReadableError");
  }
  return start.call(this, constraints);
};
"""
)


async def test_a_camera_chosen_while_tracking_that_will_not_open_gives_way_to_the_last(
    client: Client,
) -> None:
    """Chosen while tracking, a camera another program holds: the one before opens again
    and tracking goes on, in words; the session did not end over a choice taken back."""
    async with tracking(client, BUSY_JS) as browser:
        page = browser.page
        await page.evaluate("window.busy = 'fake_device_2'")
        await page.wait_for_selector("#live-camera optgroup", state="attached")
        session = await page.inner_text("#live-session")
        await page.select_option("#live-camera", label="fake_device_2")
        await page.wait_for_selector("#live-notice[data-kind=error]:not([hidden])")
        assert await page.inner_text("#live-notice") == (
            "The camera “fake_device_2” could not be opened (another program is using it, or"
            " it failed): tracking goes on with fake_device_0."
        )
        await page.wait_for_function(shown_is("fake_device_0"))
        now = int(await page.inner_text("#live-results"))
        await page.wait_for_function(results_above(now + 3))
        assert await page.inner_text("#live-session") == session
        assert await page.input_value("#live-camera") == "user"
        assert await page.evaluate("localStorage.getItem('holotrack.camera')") == "user"
        assert await page.is_disabled("#live-start")
        assert browser.errors == []


# The camera named window.blank opens and never gives a picture (nothing feeds it); every
# notice the page shows is kept in window.notices.
BLANK_NOTED_JS = (
    NAMED_CAMERA_JS
    + """
MediaDevices.prototype.getUserMedia = async function (constraints) {
  const blank = await asksFor(this, constraints, window.blank);
  const stream = await start.call(this, constraints);
  if (!blank) return stream;
  for (const track of stream.getTracks()) track.stop();
  return document.createElement("canvas").captureStream(0);
};
window.notices = [];
addEventListener("DOMContentLoaded", () => {
  const notice = document.getElementById("live-notice");
  new MutationObserver(() => window.notices.push(notice.textContent)).observe(notice, {
    childList: true,
    characterData: true,
    subtree: true,
  });
});
"""
)


async def choose_the_blank_camera(page: Page) -> None:
    """Chooses the camera that gives no picture, and waits for the page to give it up."""
    await page.evaluate("window.blank = 'fake_device_2'")
    await page.wait_for_selector("#live-camera optgroup", state="attached")
    await page.select_option("#live-camera", label="fake_device_2")
    await page.wait_for_function(
        "() => document.getElementById('live-notice').textContent.startsWith('The camera')",
        timeout=30_000,
    )


async def test_a_camera_chosen_while_tracking_that_gives_no_picture_is_said_so(
    client: Client,
) -> None:
    """Given up after NO_PICTURE_MS, the one before opens again: the notice gave the
    error's own words, "(no picture)", not what happened."""
    async with tracking(client, BLANK_NOTED_JS) as browser:
        page = browser.page
        await choose_the_blank_camera(page)
        assert await page.inner_text("#live-notice") == (
            "The camera “fake_device_2” could not be opened (it gave no picture in 10 s):"
            " tracking goes on with fake_device_0."
        )
        await page.wait_for_function(shown_is("fake_device_0"))
        assert browser.errors == []


async def test_a_camera_switch_that_waits_for_a_picture_does_not_blame_the_server(
    client: Client,
) -> None:
    """A camera chosen while tracking sends nothing while it opens, up to 10 s for one that
    gives no picture: from 5 s in, the page said "No answer from the server ... the network
    or the server is slow", which neither was."""
    async with tracking(client, BLANK_NOTED_JS) as browser:
        page = browser.page
        await choose_the_blank_camera(page)
        await page.wait_for_function(shown_is("fake_device_0"))
        now = int(await page.inner_text("#live-results"))
        await page.wait_for_function(results_above(now + 3))
        notices = await page.evaluate("window.notices")
        assert [n for n in notices if n.startswith("No answer")] == [], notices
        assert browser.errors == []


# The browser's prompt standing open: while window.holding, a camera asked for opens only
# at window.openHeld().
HOLD_JS = """
window.holding = false;
window.held = [];
const open = MediaDevices.prototype.getUserMedia;
MediaDevices.prototype.getUserMedia = function (constraints) {
  if (!window.holding) return open.call(this, constraints);
  return new Promise((resolve, reject) => {
    window.held.push(() => open.call(this, constraints).then(resolve, reject));
  });
};
window.openHeld = () => {
  window.holding = false;
  for (const opening of window.held.splice(0)) opening();
};
"""


async def choose_while_opening(page: Page, first: str, then: str) -> None:
    """Chooses `first`, or presses Start for it, and `then` while the browser opens it."""
    await page.evaluate("window.holding = true")
    if first == "start":
        await page.click("#live-start")
    else:
        await page.select_option("#live-camera", label=first)
    await page.wait_for_function("() => window.held.length === 1")
    await page.select_option("#live-camera", label=then)
    await page.evaluate("window.openHeld()")


async def test_a_camera_chosen_while_another_opens_is_the_one_left_open(
    client: Client,
) -> None:
    """A phone's back camera chosen while the prompt for the front one is still up, or a
    second camera chosen before the first has opened: the last chosen is the one open."""
    async with open_page(["--use-fake-ui-for-media-stream", THREE_CAMERAS]) as browser:
        page = browser.page
        await page.add_init_script(HOLD_JS)
        await open_index(browser, client)
        await page.wait_for_selector("#live-camera optgroup", state="attached")
        await page.select_option("#live-camera", label="fake_device_1")
        await choose_while_opening(page, "start", "fake_device_2")
        await page.wait_for_function(results_above(2))
        await page.wait_for_selector("#live-video[data-opened=fake_device_2]", state="attached")
        session = await page.inner_text("#live-session")

        await choose_while_opening(page, "fake_device_0", "fake_device_1")
        await page.wait_for_selector("#live-video[data-opened=fake_device_1]", state="attached")
        now = int(await page.inner_text("#live-results"))
        await page.wait_for_function(results_above(now + 3))
        assert await page.evaluate(SHOWN_JS) == "fake_device_1"
        chosen = await page.eval_on_selector("#live-camera", "(s) => s.selectedOptions[0].text")
        assert chosen == "fake_device_1"
        assert await page.inner_text("#live-session") == session
        assert await page.inner_text("#live-notice") == ""
        assert browser.errors == []


# The browser refusing every camera from window.refused on (permission taken back).
REFUSED_JS = """
const asked = MediaDevices.prototype.getUserMedia;
MediaDevices.prototype.getUserMedia = function (constraints) {
  if (window.refused) {
    return Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
  }
  return asked.call(this, constraints);
};
"""


async def test_a_camera_that_cannot_be_had_again_ends_the_session_as_an_error(
    client: Client,
) -> None:
    """The camera stopped and the browser refuses it now: the session ends, and the page
    says why as the error it is (it was styled as an ordinary Stop)."""
    async with tracking(client, REFUSED_JS) as browser:
        page = browser.page
        await page.evaluate(
            "() => { window.refused = true; document.getElementById('live-video')"
            ".srcObject.getVideoTracks()[0].dispatchEvent(new Event('ended')); }"
        )
        await page.wait_for_selector("#live-status[data-kind=error]")
        text = await page.inner_text("#live-status")
        assert text.startswith("Cannot start the camera: "), text
        assert not await page.is_disabled("#live-start")
        assert browser.errors == []


async def test_a_camera_chosen_before_and_gone_gives_way_to_the_default_in_words(
    client: Client,
) -> None:
    """Without a permission given, the browser names no camera: the one kept stands for
    itself until Start, which finds it gone."""
    async with open_page([THREE_CAMERAS]) as browser:
        page = browser.page
        await page.add_init_script("localStorage.setItem('holotrack.camera', 'device:unplugged')")
        await open_index(browser, client)
        assert await page.input_value("#live-camera") == "device:unplugged"
        chosen = await page.eval_on_selector("#live-camera", "(s) => s.selectedOptions[0].text")
        assert chosen == "The camera chosen last time"
        await page.context.grant_permissions(["camera"])
        await page.click("#live-start")
        await page.wait_for_function(results_above(2))
        assert await page.evaluate(SHOWN_JS) == "fake_device_0"
        assert await page.inner_text("#live-notice") == (
            "The camera chosen last time is not connected: this is fake_device_0."
        )
        # The choice shows what is open; the one kept is still wanted when it is back.
        await page.wait_for_selector("#live-camera optgroup", state="attached")
        assert await page.input_value("#live-camera") == "user"
        kept = await page.evaluate("localStorage.getItem('holotrack.camera')")
        assert kept == "device:unplugged"
        assert browser.errors == []


@pytest.mark.parametrize(
    ("page", "chooser"),
    [("/", "#live-camera"), ("/avatar", "#avatar-facing"), ("/fitness", "#fitness-camera-choice")],
)
async def test_each_camera_page_lists_the_cameras_by_name(
    client: Client, page: str, chooser: str
) -> None:
    """Allowed already (as a site given the camera before), the page names them at once."""
    if page == "/avatar":
        needs_node_modules()
    async with open_page(["--use-fake-ui-for-media-stream", THREE_CAMERAS]) as browser:
        await browser.page.goto(str(client.make_url(page)))
        await browser.page.wait_for_selector(f"{chooser} optgroup", state="attached")
        names = await browser.page.eval_on_selector_all(
            f"{chooser} option", "(all) => all.map((o) => o.textContent)"
        )
        assert names == ["Front", "Back", "fake_device_0", "fake_device_1", "fake_device_2"]
        # No options went anywhere but into a chooser.
        assert await browser.page.locator(":not(select):not(optgroup) > option").count() == 0
        assert browser.errors == []
