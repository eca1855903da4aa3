"""The avatar page under a forced-colours theme (Windows' contrast themes), emulated in
the real Chromium: such a theme paints every button alike, so the Expression held on the
avatar, marked only by its background, looked like all the others."""

from __future__ import annotations

import pytest

from tests.browser import open_page
from tests.conftest import MakeClient
from tests.test_avatar_page import needs_node_modules
from webapp.config import Config

pytestmark = pytest.mark.browser

# How each Expression button is painted, and whether it is the one held.
LOOKS_JS = """() => [...document.querySelectorAll("#avatar-emotions button")].map((button) => {
  const style = getComputedStyle(button);
  return {
    held: button.getAttribute("aria-pressed") === "true",
    look: [style.backgroundColor, style.color, style.borderTopColor].join(" "),
  };
})"""


async def test_the_held_expression_stands_out_in_a_forced_colours_theme(
    make_client: MakeClient,
) -> None:
    needs_node_modules()
    client = await make_client(Config(workers=1, no_cache=True))
    async with open_page() as browser:
        page = browser.page
        await page.emulate_media(forced_colors="active")
        await page.goto(str(client.make_url("/avatar")))
        await page.wait_for_selector("body[data-avatar-ready]", state="attached")
        buttons = await page.evaluate(LOOKS_JS)
        held = [b["look"] for b in buttons if b["held"]]
        others = [b["look"] for b in buttons if not b["held"]]
        assert len(held) == 1, buttons
        assert len(others) >= 4, buttons
        assert held[0] not in others, buttons
        assert browser.errors == []
