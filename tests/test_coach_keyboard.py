"""The coach's view's cards for a keyboard and a screen reader, in the real Chromium: each
card's Remove button says whose card it takes away, and taking one away leaves the
keyboard among the cards rather than back at the top of the page."""

from __future__ import annotations

import pytest

from tests.browser import open_page
from tests.conftest import Client, MakeClient
from tests.test_fitness_page import NO_SESSION, NOR_THAT, card_state
from webapp.config import Config

pytestmark = pytest.mark.browser

# The focused element: its id, or "body" when the keyboard is nowhere.
FOCUSED_JS = "() => document.activeElement === document.body ? 'body' : document.activeElement.id"


async def test_remove_says_whose_card_and_keeps_the_keyboard_among_the_cards(
    make_client: MakeClient,
) -> None:
    client: Client = await make_client(Config(workers=1, no_cache=True))
    async with open_page() as browser:
        page = browser.page
        await page.goto(str(client.make_url("/coach")))
        await page.fill("#coach-links", f"{NO_SESSION} {NOR_THAT}")
        await page.click("#coach-add")
        for token in (NO_SESSION, NOR_THAT):
            await card_state(browser, token, "invalid")
        first, second = (f'.coach-card[data-token="{t}"]' for t in (NO_SESSION, NOR_THAT))
        names = [
            await page.locator(f"{card} .remove").get_attribute("id") for card in (first, second)
        ]
        spoken = [
            await page.get_by_role("button", name=f"Remove Link …{token[-6:]}").count()
            for token in (NO_SESSION, NOR_THAT)
        ]
        assert spoken == [1, 1], names
        await page.focus(f"{first} .remove")
        await page.keyboard.press("Enter")
        await page.wait_for_selector(first, state="detached")
        assert await page.evaluate(FOCUSED_JS) == names[1]
        await page.keyboard.press("Space")
        await page.wait_for_selector(second, state="detached")
        assert await page.evaluate(FOCUSED_JS) == "coach-links"
        assert browser.errors == []
