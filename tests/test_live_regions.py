"""What the fitness page and the coach's view tell a screen reader while results stream in,
in the real Chromium: a live region is read out each time its content is written, even
with the same words, so each is written only when what it says changes, and what changes
with every frame (a phase, a stick figure) is in none."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.fitness_clips import PUSHUPS
from tests.browser import BrowserPage, fake_camera_args, open_page, write_y4m
from tests.conftest import MakeClient
from tests.live import video_frames
from tests.test_fitness_page import a_coach_watching, open_fitness, wait_for_results
from webapp.config import Config

pytestmark = pytest.mark.browser

# Records each write into a live region (aria-live other than "off", or a role that is
# live by itself) that leaves the region saying what it said before: what a screen reader
# reads out again for nothing. Each region's words are compared with its last ones.
REPEATS_JS = """() => {
  const LIVE = "[aria-live]:not([aria-live=off]), [role=status], [role=alert], [role=log], output";
  const said = new Map();
  const words = (region) => region.hidden ? "" : region.textContent.trim();
  for (const region of document.querySelectorAll(LIVE)) said.set(region, words(region));
  window.repeats = [];
  new MutationObserver((mutations) => {
    const written = new Set();
    for (const { target } of mutations) {
      const element = target.nodeType === Node.ELEMENT_NODE ? target : target.parentElement;
      const region = element?.closest(LIVE);
      if (region) written.add(region);
    }
    for (const region of written) {
      const now = words(region);
      if (now !== "" && said.get(region) === now) {
        window.repeats.push(`${region.id || region.className}: ${now.slice(0, 60)}`);
      }
      said.set(region, now);
    }
  }).observe(document.body, { subtree: true, childList: true, characterData: true });
}"""


async def repeats(browser: BrowserPage) -> list[str]:
    said: list[str] = await browser.page.evaluate("window.repeats")
    return said


async def test_the_fitness_page_says_the_count_and_the_target_once_each(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client = await make_client(Config(workers=1, no_cache=True))
    # The first seconds: he is at the top, so the count, the phase and the reps still to
    # go stay the same over many frames.
    y4m = write_y4m(PUSHUPS, tmp_path / "pushups.y4m", frames=60)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await open_fitness(browser, client, "push_up")
        await page.fill("#fitness-target", "5")
        await page.evaluate(REPEATS_JS)
        await page.click("#fitness-start")
        await wait_for_results(browser, 20)
        assert await page.text_content("#fitness-to-go") == "5 to go of 5"
        assert await repeats(browser) == []
        await page.click("#fitness-stop")
        await page.wait_for_selector("body[data-running=false]", state="attached")
        assert browser.errors == []


async def test_the_coach_hears_a_card_change_not_every_frame(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1, no_cache=True))
    frames = video_frames(PUSHUPS, 20)
    async with open_page() as browser:
        page = browser.page
        person, token = await a_coach_watching(client, browser)
        card = f'.coach-card[data-token="{token}"]'
        await page.evaluate(REPEATS_JS)
        await person.lockstep(frames)
        await page.wait_for_function(
            "(card) => document.querySelector(card).dataset.phase", arg=card
        )
        # The card may not have had the results after the first yet: its session's end
        # comes after them all.
        await person.ws.close()
        await page.wait_for_selector(f"{card}[data-state=ended]", state="attached")
        assert await repeats(browser) == []
        # The phase flips with each rep, and the figure is redrawn with every frame: read
        # out, they drowned everything else the coach's screen reader had to say.
        live = await page.eval_on_selector_all(
            f"{card} [data-field=phase], {card} [data-field=exercise], {card} [data-field=title]",
            """(fields) => fields.filter((f) => f.closest(
                 "[aria-live]:not([aria-live=off]), [role=status], [role=alert], [role=log]"))
               .map((f) => f.dataset.field)""",
        )
        assert live == []
        assert browser.errors == []
    await person.ws.close()
