"""The contrast of the coach's view's words with what is behind them, as the real Chromium
paints them: WCAG AA's 4.5:1 for text, also on a card whose session has ended, whose
last words (the sets done, in all) are what the coach reads once it is over."""

from __future__ import annotations

import pytest

from bench.fitness_clips import PUSHUPS
from tests.browser import open_page
from tests.conftest import MakeClient
from tests.live import video_frames
from tests.test_fitness_page import a_coach_watching, card_state
from webapp.config import Config

pytestmark = pytest.mark.browser

# WCAG AA for text under 24 px (18.66 px bold).
LEAST_CONTRAST = 4.5

# Each piece of text in `root` with less contrast than `least` to the background it is
# painted on. An ancestor's opacity blends both the text and its background (up to that
# ancestor) with what lies behind that ancestor, as the browser paints the group.
FAINT_JS = """([root, least]) => {
  const channels = (css) => css.match(/[\\d.]+/g).map(Number);
  const opaque = (css) => (channels(css)[3] ?? 1) === 1;
  const blend = (top, under, alpha) => top.map((c, i) => alpha * c + (1 - alpha) * under[i]);
  const luminance = (rgb) => {
    const [r, g, b] = rgb.map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const backdrop = (e) => {
    for (let up = e; up; up = up.parentElement) {
      const colour = getComputedStyle(up).backgroundColor;
      if (opaque(colour)) return [up, channels(colour).slice(0, 3)];
    }
    return [document.documentElement, [255, 255, 255]];
  };
  const out = [];
  for (const e of [root, ...root.querySelectorAll("*")]) {
    const words = [...e.childNodes]
      .filter((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim())
      .map((n) => n.textContent.trim()).join(" ");
    if (!words || !e.getClientRects().length) continue;
    const style = getComputedStyle(e);
    let text = channels(style.color).slice(0, 3);
    let [painted, under] = backdrop(e);
    for (let up = e; up; up = up.parentElement) {
      const alpha = Number(getComputedStyle(up).opacity);
      if (alpha === 1) continue;
      const [, behind] = backdrop(up.parentElement);
      text = blend(text, behind, alpha);
      if (up.contains(painted)) under = blend(under, behind, alpha);
    }
    const [a, b] = [luminance(text), luminance(under)];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const large = parseFloat(style.fontSize) >= 24
      || (parseFloat(style.fontSize) >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : least)) out.push(`${words.slice(0, 40)}: ${ratio.toFixed(2)}`);
  }
  return out;
}"""


async def test_an_ended_cards_words_are_as_readable_as_a_live_ones(
    make_client: MakeClient,
) -> None:
    client = await make_client(Config(workers=1, no_cache=True))
    async with open_page() as browser:
        page = browser.page
        person, token = await a_coach_watching(client, browser)
        card = f'.coach-card[data-token="{token}"]'
        await person.lockstep(video_frames(PUSHUPS, 3))
        await page.wait_for_selector(f"{card}[data-phase]", state="attached")
        live = await page.evaluate(FAINT_JS, [await page.query_selector(card), LEAST_CONTRAST])
        assert live == []
        await person.ws.close()
        await card_state(browser, token, "ended")
        # The sets done, in all: the words the coach reads once the session is over.
        await page.wait_for_selector(f"{card} .card-sets:not([hidden])")
        ended = await page.evaluate(FAINT_JS, [await page.query_selector(card), LEAST_CONTRAST])
        assert ended == []
        assert browser.errors == []
