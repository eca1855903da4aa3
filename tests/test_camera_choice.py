"""The camera a page opens (static/camera_choice.js): on a computer with several, each by
its name, switched while the session goes on and kept for the next visit; one chosen
before and since unplugged gives way to the default, in words. Real Chromium, with its
fake cameras standing for a webcam, a capture card and OBS's virtual camera."""

from __future__ import annotations

import pytest

from tests.browser import open_page
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


def results_above(count: int) -> str:
    return f"() => Number(document.getElementById('live-results').textContent) > {count}"


def shown_is(label: str) -> str:
    return f"() => ({SHOWN_JS})() === '{label}'"


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    return await make_client(Config(workers=1, no_cache=True))


async def test_several_cameras_are_listed_by_name_and_the_one_chosen_is_opened(
    client: Client,
) -> None:
    async with open_page(["--use-fake-ui-for-media-stream", THREE_CAMERAS]) as browser:
        page = browser.page
        await open_index(browser, client)
        await page.click("#live-start")
        await page.wait_for_function(results_above(2))
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
