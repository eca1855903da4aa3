"""The page and access keys, in a real headless Chromium: it asks for a key when the server
needs one, keeps it, sends it with uploads and in the hello, and says in words when it is
refused."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.browser import BrowserPage, fake_camera_args, open_page, write_y4m
from tests.conftest import Client, MakeClient
from tests.media import ASL_VIDEO, PERSON_JPEG
from tests.test_avatar_page import needs_node_modules, open_avatar
from tests.test_browser import open_index, upload
from webapp.config import Config

pytestmark = pytest.mark.browser

KEY = secrets.token_urlsafe(24)


async def keyed_client(make_client: MakeClient, tmp_path: Path) -> Client:
    """A server whose one access key is KEY."""
    keys = tmp_path / "keys.jsonl"
    keys.write_text(json.dumps({"name": "gym", "key": KEY}) + "\n")
    return await make_client(Config(workers=1, access_keys=str(keys)))


@contextlib.asynccontextmanager
async def keyed_page(
    make_client: MakeClient, tmp_path: Path
) -> AsyncIterator[tuple[Client, BrowserPage]]:
    """The index page of a server whose one access key is KEY, its key form on show."""
    client = await keyed_client(make_client, tmp_path)
    async with open_page() as browser:
        await open_index(browser, client)
        await browser.page.wait_for_selector("#access-form", state="visible")
        yield client, browser


async def test_the_page_asks_for_a_key_keeps_it_and_says_when_it_is_refused(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client = await keyed_client(make_client, tmp_path)
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=30)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await open_index(browser, client)
        # No key kept: the form is there before anything is refused.
        await page.wait_for_selector("#access-form", state="visible")
        assert await page.get_attribute("body", "data-access-key") == "asked"
        await page.fill("#access-key", "not-the-key-at-all")
        await page.click("#access-form button[type=submit]")
        await page.wait_for_function(
            "() => document.querySelector('[data-access=status]').textContent.includes('refused')"
        )
        assert await page.evaluate("() => localStorage.getItem('holotrack.accessKey')") is None

        await page.fill("#access-key", KEY)
        await page.click("#access-form button[type=submit]")
        await page.wait_for_selector("body[data-access-key=accepted]", state="attached")
        assert "Key accepted (gym)" in await page.inner_text("#access-form")
        assert await page.evaluate("() => localStorage.getItem('holotrack.accessKey')") == KEY
        assert await upload(browser, str(PERSON_JPEG)) == "ok"

        await page.click("#live-start")
        await page.wait_for_function(
            "() => Number(document.getElementById('live-results').textContent) > 0"
        )
        await page.click("#live-stop")

        # A kept key the server no longer takes: asked again at load, and a session that is
        # started anyway ends with the refusal in words.
        await page.evaluate("() => localStorage.setItem('holotrack.accessKey', 'x'.repeat(30))")
        await open_index(browser, client)
        await page.wait_for_function(
            "() => document.querySelector('[data-access=status]')?.textContent"
            ".includes('no longer accepted')"
        )
        await page.click("#live-start")
        await page.wait_for_function(
            "() => document.getElementById('live-status').textContent.includes('access key')"
        )
        text = await page.inner_text("#live-status")
        assert text == (
            "The server refused this session: it needs an access key "
            "(the access key was not accepted)."
        )
        assert "refused the access key kept in this browser" in await page.inner_text(
            "#access-form"
        )
        assert await upload(browser, str(PERSON_JPEG)) == "error"
        assert "HTTP 401" in await page.inner_text("#still-status")
        assert [e for e in browser.errors if "WebSocket" not in e] == []


async def test_the_coachs_view_asks_for_no_key(make_client: MakeClient, tmp_path: Path) -> None:
    """Watching needs no key, and the coach's view never asked for one until its pairing
    codes brought in the module that does: "This server needs an access key" greeted a
    coach on every server with keys."""
    client = await keyed_client(make_client, tmp_path)
    async with open_page() as browser:
        page = browser.page
        await page.goto(str(client.make_url("/coach")), wait_until="networkidle")
        assert await page.query_selector("#access-form") is None
        assert await page.get_attribute("body", "data-access-key") is None
        assert browser.errors == []


async def test_an_open_server_never_shows_the_form(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1))
    async with open_page() as browser:
        await open_index(browser, client)
        assert await upload(browser, str(PERSON_JPEG)) == "ok"
        assert await browser.page.query_selector("#access-form") is None
        assert browser.errors == []


async def test_a_refused_upload_points_to_the_form_not_to_an_http_header(
    make_client: MakeClient, tmp_path: Path
) -> None:
    async with keyed_page(make_client, tmp_path) as (client, browser):
        page = browser.page
        # The server's detail ends "send it as Authorization: Bearer KEY", for scripts.
        assert await upload(browser, str(PERSON_JPEG)) == "error"
        assert await page.inner_text("#still-status") == (
            "This server needs an access key: enter it above, then choose the photo again "
            "(HTTP 401, unauthorized)."
        )
        assert "Bearer" not in await page.inner_text("#access-form")

        await page.evaluate("() => localStorage.setItem('holotrack.accessKey', 'x'.repeat(30))")
        await open_index(browser, client)
        assert await upload(browser, str(PERSON_JPEG)) == "error"
        assert await page.inner_text("#still-status") == (
            "The server refused the access key kept in this browser: enter another above, "
            "then choose the photo again (HTTP 401, unauthorized)."
        )
        assert "Bearer" not in await page.inner_text("#access-form")
        assert "refused the access key kept in this browser" in await page.inner_text(
            "#access-form"
        )
        assert browser.errors == []


async def test_a_key_pasted_with_an_invisible_character_is_said_so(
    make_client: MakeClient, tmp_path: Path
) -> None:
    async with keyed_page(make_client, tmp_path) as (_, browser):
        page = browser.page
        # A zero-width space, as a chat app's copy may add: the key looks right.
        await page.fill("#access-key", KEY + "\N{ZERO WIDTH SPACE}")
        await page.click("#access-form button[type=submit]")
        await page.wait_for_selector("[data-access=status][data-kind=error]")
        words = await page.inner_text("[data-access=status]")
        assert words.startswith("This key has a character no access key has"), words
        assert await page.evaluate("() => localStorage.getItem('holotrack.accessKey')") is None
        await page.fill("#access-key", KEY)
        await page.click("#access-form button[type=submit]")
        await page.wait_for_selector("body[data-access-key=accepted]", state="attached")
        assert browser.errors == []


async def test_a_typed_pairing_code_that_hands_over_a_key_puts_the_form_away(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """A spare computer opens the avatar page (no key kept: the form asks for one), then
    types the pairing code, which hands over the offering page's key: the form no longer
    asks for a key the page has."""
    needs_node_modules()
    client = await keyed_client(make_client, tmp_path)
    code = "K7QM2XDA"
    offered = await client.put(
        f"/api/pair/{code}",
        json={"link_key": secrets.token_urlsafe(32)},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert offered.status == 201, await offered.text()
    async with open_page() as browser:
        page = browser.page
        await open_avatar(browser, client)
        await page.wait_for_selector("#access-form", state="visible")
        await page.click("#pair-join summary")
        await page.fill("#pair-input", code)
        await page.click("#pair-use")
        await page.wait_for_selector("body[data-handed-link=true]", state="attached")
        assert await page.evaluate("() => localStorage.getItem('holotrack.accessKey')") == KEY
        assert await page.is_hidden("#access-form")
        assert await page.get_attribute("body", "data-access-key") == "handed"
        assert browser.errors == []


async def test_key_accepted_gives_way_to_its_limit_once_a_session_is_refused_for_it(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """A key accepted in the form whose limit then refuses the session: the form went on
    saying "Key accepted. Press Start again", beside the status saying the key was at its
    limit, and pressing Start again only met the same refusal."""
    keys = tmp_path / "keys.jsonl"
    keys.write_text(json.dumps({"name": "gym", "key": KEY, "max_sessions": 0}) + "\n")
    client = await make_client(Config(workers=1, access_keys=str(keys)))
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=30)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await open_index(browser, client)
        await page.wait_for_selector("#access-form", state="visible")
        await page.fill("#access-key", KEY)
        await page.click("#access-form button[type=submit]")
        await page.wait_for_selector("body[data-access-key=accepted]", state="attached")
        await page.click("#live-start")
        await page.wait_for_function(
            "() => document.getElementById('live-status').textContent.includes('at its limit')"
        )
        status = await page.inner_text("[data-access=status]")
        assert "Press Start again" not in status, status
        assert status == (
            "Key accepted (gym), but it is at its limit: key gym may hold no sessions (its "
            "max_sessions is 0)."
        )
        assert [e for e in browser.errors if "WebSocket" not in e] == []
