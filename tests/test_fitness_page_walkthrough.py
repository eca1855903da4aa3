"""Faults a click-through of the fitness page and the coach's view found, each in a real
headless Chromium against the real app: the kept set's seconds that did not count down,
the set timer that counted time away, and coach cards lost to a reload."""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Page

from bench.fitness_clips import PUSHUPS
from tests.browser import fake_camera_args, hide_page, open_page, show_page, write_y4m
from tests.conftest import Client, MakeClient
from tests.live import LiveClient
from tests.test_fitness_page import (
    CARD_TOKENS_JS,
    card_state,
    open_fitness,
    reload,
    results,
    seconds,
    wait_for_results,
)
from webapp.config import Config

# Long enough that a figure which never moves is told from one that counts down.
KEPT_MS = 30_000
KEPT_WORDS = re.compile(r"Your set from before the reload is kept for (\d+) s: press Start")
# How long the page is away in the timer's test, on its own clock.
AWAY_MS = 40_000

# The page's performance.now() runs `window.away` ms ahead once the test says so: time away
# without waiting for it.
SKEWED_CLOCK_JS = """window.away = 0;
const now = performance.now.bind(performance);
performance.now = () => now() + window.away;"""


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    return await make_client(Config(workers=1, no_cache=True))


async def kept_seconds(page: Page) -> int:
    said = await page.inner_text("#fitness-status")
    found = KEPT_WORDS.match(said)
    assert found, said
    return int(found[1])


@pytest.mark.browser
async def test_the_kept_sets_seconds_count_down(client: Client) -> None:
    """Reloaded mid-set, the page said "kept for 58 s" and went on saying it until the
    set was gone: the figure is the time left, each second."""
    async with open_page() as browser:
        page = browser.page
        await page.goto(str(client.make_url("/fitness")))
        await page.wait_for_selector("body[data-fitness-ready]", state="attached")
        # As a reload mid-set leaves it (run.js keeps the link in sessionStorage on pagehide).
        await page.evaluate(
            """(ms) => sessionStorage.setItem('holotrack.keptLink:/fitness',
                 JSON.stringify({ resume: 'r', key: null, until: Date.now() + ms }))""",
            KEPT_MS,
        )
        await reload(browser)
        first = await kept_seconds(page)
        # Seconds left as the page first says it, after a reload a loaded machine may take
        # several seconds over.
        assert KEPT_MS // 1000 - 8 <= first <= KEPT_MS // 1000
        await page.wait_for_function(
            """([first, words]) => {
                 const said = document.getElementById('fitness-status').textContent;
                 const left = said.match(new RegExp(words))?.[1];
                 return left !== undefined && Number(left) <= first - 2;
               }""",
            arg=[first, KEPT_WORDS.pattern],
            timeout=10_000,
        )
        assert await kept_seconds(page) < first
        assert browser.errors == []


@pytest.mark.browser
async def test_the_set_timer_leaves_out_time_away(client: Client, tmp_path: Path) -> None:
    """Paused (the page hidden and frozen, as a phone does), the set timer counted on: back
    40 s later it read 0:4x for a set that had run a few seconds."""
    y4m = write_y4m(PUSHUPS, tmp_path / "pushups.y4m", frames=45)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await page.add_init_script(SKEWED_CLOCK_JS)
        await open_fitness(browser, client, "push_up")
        await page.click("#fitness-start")
        await wait_for_results(browser, 3)
        await hide_page(page, freeze=True)
        await page.wait_for_selector("body[data-paused]", state="attached")
        before = seconds(await page.text_content("#fitness-timer") or "")
        await page.evaluate("(ms) => { window.away += ms; }", AWAY_MS)
        await show_page(page, frozen=True)
        await page.wait_for_selector("body:not([data-paused])", state="attached")
        await wait_for_results(browser, await results(browser) + 5)
        after = seconds(await page.text_content("#fitness-timer") or "")
        # The pause is said, and its length: the page did see the time pass.
        said = await page.inner_text("#fitness-notice")
        assert re.search(r"after a pause of 4\d s", said), said
        assert before <= after < before + AWAY_MS // 1000 // 2, (before, after)
        assert browser.errors == []


@pytest.mark.browser
async def test_a_new_set_while_paused_keeps_saying_so(client: Client, tmp_path: Path) -> None:
    """Another exercise chosen, or New set pressed, while the session waited (the camera
    giving no picture, the page frozen): the status said "Counting squats." over a pause
    that counted nothing, until the picture was back."""
    y4m = write_y4m(PUSHUPS, tmp_path / "pushups.y4m", frames=45)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await open_fitness(browser, client, "push_up")
        await page.click("#fitness-start")
        await wait_for_results(browser, 3)
        await hide_page(page, freeze=True)
        await page.wait_for_selector("body[data-paused]", state="attached")
        paused = await page.inner_text("#fitness-status")
        assert paused.startswith("Paused:"), paused
        await page.select_option("#fitness-exercise", "squat")
        await page.click("#fitness-new-set")
        assert await page.inner_text("#fitness-status") == paused
        assert await page.inner_text("#fitness-set-title") == "Squat"
        paused_session = await page.get_attribute("body", "data-session")
        await show_page(page, frozen=True)
        await page.wait_for_selector("body:not([data-paused])", state="attached")
        # The pause ends as the page is shown; the words come with the next session's
        # ready, a round trip later.
        await page.wait_for_function(
            "old => (document.body.dataset.session ?? old) !== old", arg=paused_session
        )
        assert await page.inner_text("#fitness-status") == "Counting squats."
        assert browser.errors == []


@pytest.mark.browser
async def test_pasted_cards_come_back_after_a_reload(client: Client) -> None:
    """A coach pasted everyone's links, reloaded, and had no cards: they are kept in the
    browser, in their order, until Removed."""
    people = [await LiveClient.connect(client) for _ in range(2)]
    tokens = [(await p.hello(track="pose", exercise="push_up"))["watch"] for p in people]
    async with open_page() as browser:
        page = browser.page
        await page.goto(str(client.make_url("/coach")))
        await page.wait_for_selector("body[data-coach-ready]", state="attached")
        links = [str(client.make_url(f"/coach?watch={t}")) for t in tokens]
        await page.fill("#coach-links", "\n".join(links))
        await page.click("#coach-add")
        for token in tokens:
            await card_state(browser, token, "watching")
        await page.reload()
        await page.wait_for_selector("body[data-coach-ready]", state="attached")
        assert await page.evaluate(CARD_TOKENS_JS) == tokens
        for token in tokens:
            await card_state(browser, token, "watching")
        await page.click(f'.coach-card[data-token="{tokens[0]}"] .remove')
        await page.reload()
        await page.wait_for_selector("body[data-coach-ready]", state="attached")
        assert await page.evaluate(CARD_TOKENS_JS) == tokens[1:]
        await card_state(browser, tokens[1], "watching")
        assert browser.errors == []
    for person in people:
        await person.ws.close()


@pytest.mark.browser
async def test_the_kept_cards_are_the_newest_twelve(client: Client) -> None:
    """Kept without end, yesterday's cards and today's all reconnected on load, past the 16
    connections one address may hold, and those over it gave up for good: the newest 12
    are kept (the review of the cards' keeping)."""
    tokens = [f"{i:02d}" + "t" * 20 for i in range(20)]
    async with open_page() as browser:
        page = browser.page
        await page.goto(str(client.make_url("/coach")))
        await page.wait_for_selector("body[data-coach-ready]", state="attached")
        await page.evaluate(
            "(tokens) => localStorage.setItem('holotrack.coach.cards', JSON.stringify(tokens))",
            tokens,
        )
        await page.reload()
        await page.wait_for_selector("body[data-coach-ready]", state="attached")
        assert await page.evaluate(CARD_TOKENS_JS) == tokens[-12:]


@pytest.mark.browser
async def test_the_logs_file_is_named_by_the_date_its_rows_read(client: Client) -> None:
    """At 8 pm in California the log's rows read that day, and its file was named by the
    next (the date in UTC)."""
    evening = datetime.datetime(2026, 12, 7, 20, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    workout = {
        "id": "w1",
        "session": "s1",
        "began": evening.timestamp() * 1000,
        "sets": [{"exercise": "squat", "reps": 3}],
    }
    async with open_page(timezone_id="America/Los_Angeles") as browser:
        page = browser.page
        await page.clock.install(time=evening)
        await page.goto(str(client.make_url("/fitness")))
        await page.evaluate(
            "(log) => localStorage.setItem('holotrack.workoutLog.v1', JSON.stringify(log))",
            [workout],
        )
        await reload(browser)
        date = (await page.inner_text("#log-body td")).split()[0]
        assert date == "2026-12-07"
        async with page.expect_download() as info:
            await page.click("#log-download")
        assert (await info.value).suggested_filename == f"holotrack-workout-{date}.csv"
        assert browser.errors == []
