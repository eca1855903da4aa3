"""The ring round the control the keyboard is on, in the real Chromium: on every camera
page each control Tab reaches shows one, and it stands out from what is round it by
WCAG's 3:1 for what shows a control's state (1.4.11), or a keyboard user loses their place."""

from __future__ import annotations

import pytest

from tests.browser import open_page
from tests.conftest import MakeClient
from tests.test_avatar_page import needs_node_modules
from webapp.config import Config

pytestmark = pytest.mark.browser

# WCAG's minimum for the parts of a control that show its state, the focus among them.
LEAST_CONTRAST = 3.0

# The focused control's name and the contrast of its ring against the colour round it:
# the first opaque background among its ancestors (a ring drawn outside the control lies
# on that). Chromium's own ring ("auto") draws a dark and a light line, which stand out on
# any colour, so it counts as the most there is (21:1); no ring at all counts as none (1:1).
RING_JS = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const channels = (css) => css.match(/[\\d.]+/g).map(Number);
  const luminance = (css) => {
    const [r, g, b] = channels(css).slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const behind = () => {
    for (let up = e.parentElement; up; up = up.parentElement) {
      const colour = getComputedStyle(up).backgroundColor;
      if ((channels(colour)[3] ?? 1) === 1) return colour;
    }
    return "rgb(255, 255, 255)";
  };
  const style = getComputedStyle(e);
  const name = `${e.tagName.toLowerCase()}#${e.id}[${e.name || e.textContent.trim()}]`;
  if (style.outlineStyle === "none" || parseFloat(style.outlineWidth) === 0) return [name, 1];
  if (style.outlineStyle === "auto") return [name, 21];
  const [a, b] = [luminance(style.outlineColor), luminance(behind())];
  return [name, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];
}"""


@pytest.mark.parametrize("path", ["/", "/avatar", "/fitness", "/coach"])
async def test_every_control_tab_reaches_shows_a_ring_that_stands_out(
    make_client: MakeClient, path: str
) -> None:
    needs_node_modules()
    client = await make_client(Config(workers=1, no_cache=True))
    async with open_page() as browser:
        page = browser.page
        await page.goto(str(client.make_url(path)))
        await page.wait_for_load_state("networkidle")
        await page.evaluate("() => document.activeElement?.blur()")
        rings = []
        for _ in range(40):
            await page.keyboard.press("Tab")
            ring = await page.evaluate(RING_JS)
            if ring is None:
                break
            rings.append(ring)
        assert len(rings) >= 4, rings
        faint = [(name, round(ratio, 2)) for name, ratio in rings if ratio < LEAST_CONTRAST]
        assert faint == [], faint
        assert browser.errors == []
