"""The camera pages for a reader who does not see them as their makers do, in the real
Chromium: a keyboard user finds the control they are on, a screen reader says the names
the pages give, text keeps AA contrast and follows the browser's font size, a
forced-colours theme still shows the held expression, and the coach's cards can be taken
away from the keyboard without losing one's place."""

from __future__ import annotations

from typing import Any

import pytest

from bench.fitness_clips import PUSHUPS
from tests.browser import BrowserPage, open_page
from tests.conftest import Client, MakeClient
from tests.live import video_frames
from tests.media import PERSON_JPEG
from tests.test_avatar_page import needs_node_modules
from tests.test_fitness_page import NO_SESSION, NOR_THAT, a_coach_watching, card_state
from webapp.config import Config

pytestmark = pytest.mark.browser

PAGES = ["/", "/avatar", "/fitness", "/coach"]

# WCAG's minimum for the parts of a control that show its state, the focus among them
# (1.4.11), and AA's for text under 24 px (18.66 px bold).
LEAST_RING_CONTRAST = 3.0
LEAST_TEXT_CONTRAST = 4.5

# WCAG's relative luminance of an sRGB colour and the contrast of two, for the scripts below.
COLOUR_JS = """
  const channels = (css) => css.match(/[\\d.]+/g).map(Number);
  const luminance = (rgb) => {
    const [r, g, b] = rgb.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const contrast = (one, other) => {
    const [a, b] = [luminance(one), luminance(other)];
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  };
"""

# The focused control's name and the contrast of its ring against the colour round it:
# the first opaque background among its ancestors (a ring drawn outside the control lies
# on that). Chromium's own ring ("auto") draws a dark and a light line, which stand out on
# any colour, so it counts as the most there is (21:1); no ring at all counts as none (1:1).
RING_JS = f"""() => {{
  {COLOUR_JS}
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const behind = () => {{
    for (let up = e.parentElement; up; up = up.parentElement) {{
      const colour = getComputedStyle(up).backgroundColor;
      if ((channels(colour)[3] ?? 1) === 1) return channels(colour);
    }}
    return [255, 255, 255];
  }};
  const style = getComputedStyle(e);
  const name = `${{e.tagName.toLowerCase()}}#${{e.id}}[${{e.name || e.textContent.trim()}}]`;
  if (style.outlineStyle === "none" || parseFloat(style.outlineWidth) === 0) return [name, 1];
  if (style.outlineStyle === "auto") return [name, 21];
  return [name, contrast(channels(style.outlineColor), behind())];
}}"""

# Each piece of text in `root` with less contrast than `least` to the background it is
# painted on. An ancestor's opacity blends both the text and its background (up to that
# ancestor) with what lies behind that ancestor, as the browser paints the group.
FAINT_JS = f"""([root, least]) => {{
  {COLOUR_JS}
  const opaque = (css) => (channels(css)[3] ?? 1) === 1;
  const blend = (top, under, alpha) => top.map((c, i) => alpha * c + (1 - alpha) * under[i]);
  const backdrop = (e) => {{
    for (let up = e; up; up = up.parentElement) {{
      const colour = getComputedStyle(up).backgroundColor;
      if (opaque(colour)) return [up, channels(colour).slice(0, 3)];
    }}
    return [document.documentElement, [255, 255, 255]];
  }};
  const out = [];
  for (const e of [root, ...root.querySelectorAll("*")]) {{
    const words = [...e.childNodes]
      .filter((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim())
      .map((n) => n.textContent.trim()).join(" ");
    if (!words || !e.getClientRects().length) continue;
    const style = getComputedStyle(e);
    let text = channels(style.color).slice(0, 3);
    let [painted, under] = backdrop(e);
    for (let up = e; up; up = up.parentElement) {{
      const alpha = Number(getComputedStyle(up).opacity);
      if (alpha === 1) continue;
      const [, behind] = backdrop(up.parentElement);
      text = blend(text, behind, alpha);
      if (up.contains(painted)) under = blend(under, behind, alpha);
    }}
    const ratio = contrast(text, under);
    const large = parseFloat(style.fontSize) >= 24
      || (parseFloat(style.fontSize) >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : least)) out.push(`${{words.slice(0, 40)}}: ${{ratio.toFixed(2)}}`);
  }}
  return out;
}}"""


async def serving(make_client: MakeClient) -> Client:
    needs_node_modules()
    return await make_client(Config(workers=1, no_cache=True))


@pytest.mark.parametrize("path", PAGES)
async def test_every_control_tab_reaches_shows_a_ring_that_stands_out(
    make_client: MakeClient, path: str
) -> None:
    """The pale blue ring stood out from the white card by 2:1: a keyboard user lost
    their place."""
    client = await serving(make_client)
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
        faint = [(name, round(ratio, 2)) for name, ratio in rings if ratio < LEAST_RING_CONTRAST]
        assert faint == [], faint
        assert browser.errors == []


def unspoken_names(nodes: list[dict[str, Any]]) -> list[str]:
    """The names in Chromium's accessibility tree that sit on a role with no name: ARIA
    lets no name stand on a plain box (a div, a span: role "generic"), so a screen reader
    says none of it."""
    return [
        node["name"]["value"]
        for node in nodes
        if not node.get("ignored")
        and node.get("role", {}).get("value") == "generic"
        and node.get("name", {}).get("value")
    ]


@pytest.mark.parametrize("path", PAGES)
async def test_every_name_a_page_gives_reaches_a_screen_reader(
    make_client: MakeClient, path: str
) -> None:
    client = await serving(make_client)
    async with open_page() as browser:
        page = browser.page
        await page.goto(str(client.make_url(path)))
        await page.wait_for_load_state("networkidle")
        if path == "/":
            # A photo's answer, with the box of its JSON (named, and reached by Tab).
            await page.set_input_files("#file", PERSON_JPEG)
            await page.wait_for_selector("#still-result:not([hidden])")
            await page.wait_for_selector("#download-json:not([disabled])")
        cdp = await page.context.new_cdp_session(page)
        tree = await cdp.send("Accessibility.getFullAXTree")
        named = [n["name"]["value"] for n in tree["nodes"] if n.get("name", {}).get("value")]
        assert named, tree
        assert unspoken_names(tree["nodes"]) == []
        assert browser.errors == []


async def test_an_ended_cards_words_are_as_readable_as_a_live_ones(
    make_client: MakeClient,
) -> None:
    """An ended card's last words (the sets done, in all) are what the coach reads once
    it is over: faded by opacity, they fell under AA."""
    client = await make_client(Config(workers=1, no_cache=True))
    async with open_page() as browser:
        page = browser.page
        person, token = await a_coach_watching(client, browser)
        card = f'.coach-card[data-token="{token}"]'
        await person.lockstep(video_frames(PUSHUPS, 3))
        await page.wait_for_selector(f"{card}[data-phase]", state="attached")
        live = await page.evaluate(FAINT_JS, [await page.query_selector(card), LEAST_TEXT_CONTRAST])
        assert live == []
        await person.ws.close()
        await card_state(browser, token, "ended")
        await page.wait_for_selector(f"{card} .card-sets:not([hidden])")
        ended = await page.evaluate(
            FAINT_JS, [await page.query_selector(card), LEAST_TEXT_CONTRAST]
        )
        assert ended == []
        assert browser.errors == []


# Chrome's "Very large" (Settings > Appearance > Font size).
SET_PX = 24

# The size of the body's text and of the page's first paragraph of plain words in it.
SIZES_JS = """() => ({
  body: getComputedStyle(document.body).fontSize,
  words: getComputedStyle(document.querySelector("main p:not(.muted)")).fontSize,
})"""


@pytest.mark.parametrize("path", PAGES)
async def test_the_text_follows_the_browsers_font_size(make_client: MakeClient, path: str) -> None:
    """The body's text was fixed at 16 px while the rem-sized headings and notes grew, so
    the words one reads most stayed the smallest for a reader with low vision."""
    client = await serving(make_client)
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
    """Windows' contrast themes paint every button alike: the held Expression, marked only
    by its background, looked like all the others."""
    client = await serving(make_client)
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


# The focused element: its id, or "body" when the keyboard is nowhere.
FOCUSED_JS = "() => document.activeElement === document.body ? 'body' : document.activeElement.id"


async def focused(browser: BrowserPage) -> str:
    element: str = await browser.page.evaluate(FOCUSED_JS)
    return element


async def test_remove_says_whose_card_and_keeps_the_keyboard_among_the_cards(
    make_client: MakeClient,
) -> None:
    """A screen reader's list of buttons read "Remove, Remove", saying not whose; taking
    a card away sent the keyboard back to the top of the page."""
    client = await make_client(Config(workers=1, no_cache=True))
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
        assert await focused(browser) == names[1]
        await page.keyboard.press("Space")
        await page.wait_for_selector(second, state="detached")
        assert await focused(browser) == "coach-links"
        assert browser.errors == []
