"""The pages' words follow the font size the browser is set to (Chrome's Settings >
Appearance > Font size), as a reader with low vision sets it, in the real Chromium: the
body's text was fixed at 16 px while the rem-sized headings and notes under it grew, so
the words one reads most stayed the smallest."""

from __future__ import annotations

import pytest

from tests.browser import open_page
from tests.conftest import MakeClient
from tests.test_avatar_page import needs_node_modules
from webapp.config import Config

pytestmark = pytest.mark.browser

# Chrome's "Very large".
SET_PX = 24

# The size of the body's text and of the page's first paragraph of plain words in it.
SIZES_JS = """() => ({
  body: getComputedStyle(document.body).fontSize,
  words: getComputedStyle(document.querySelector("main p:not(.muted)")).fontSize,
})"""


@pytest.mark.parametrize("path", ["/", "/avatar", "/fitness", "/coach"])
async def test_the_text_follows_the_browsers_font_size(make_client: MakeClient, path: str) -> None:
    needs_node_modules()
    client = await make_client(Config(workers=1, no_cache=True))
    async with open_page() as browser:
        page = browser.page
        cdp = await page.context.new_cdp_session(page)
        await cdp.send("Page.enable")
        await cdp.send("Page.setFontSizes", {"fontSizes": {"standard": SET_PX}})
        await page.goto(str(client.make_url(path)))
        root = await page.evaluate("getComputedStyle(document.documentElement).fontSize")
        assert root == f"{SET_PX}px"  # the setting took
        sizes = await page.evaluate(SIZES_JS)
        assert sizes == {"body": f"{SET_PX}px", "words": f"{SET_PX}px"}
        assert browser.errors == []
