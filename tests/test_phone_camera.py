"""A phone propped up as the camera for an hour: the pages keep its screen on, and what a
phone does to a hidden page (the camera muted or taken, the page frozen) pauses the session
instead of ending it; it goes on by itself when the page is shown again, with its link.

Headless Chromium never hides a page, so the tests give the page the visibility a phone
would and fire the events it would (tests/browser.py hide_page, show_page); the camera,
the wake lock, the server and the model are real."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp import WSMsgType
from playwright.async_api import Page, Response

from tests.browser import (
    BrowserPage,
    NetworkDown,
    Readies,
    Reported,
    fake_camera_args,
    hide_page,
    open_page,
    open_phone,
    record_socket_urls,
    record_text,
    show_page,
    write_y4m,
)
from tests.conftest import Client, MakeClient
from tests.live import until, when_resting
from tests.media import ASL_VIDEO
from tests.test_avatar_page import (
    needs_node_modules,
    open_avatar,
    record_hellos,
    same_link_new_session,
    start_session,
)
from tests.test_fitness_page import first_rep_of_a_loop, log_rows, wait_for_reps
from webapp.config import Config
from webapp.keys import LIVE, SESSIONS

pytestmark = pytest.mark.browser

# Every Screen Wake Lock the page is given, in window.__wakeLocks, to see which it holds.
RECORD_WAKE_LOCKS_JS = """
window.__wakeLocks = [];
const request = WakeLock.prototype.request;
WakeLock.prototype.request = async function (type) {
  const sentinel = await request.call(this, type);
  window.__wakeLocks.push(sentinel);
  return sentinel;
};
"""
HELD_JS = "() => window.__wakeLocks.filter((s) => !s.released).length"
# As the browser does on hiding a page: it lets go of the page's lock.
BROWSER_RELEASES_JS = "() => Promise.all(window.__wakeLocks.map((s) => s.release()))"

NO_WAKE_LOCK_JS = """
Object.defineProperty(Navigator.prototype, "wakeLock", {
  configurable: true, get: () => undefined,
});
"""
# As a phone on battery saver answers.
REFUSED_WAKE_LOCK_JS = """
WakeLock.prototype.request = async () => {
  throw new DOMException("Wake Lock permission request denied", "NotAllowedError");
};
"""


def is_end(response: Response) -> bool:
    """What a page posts to end a paused session for good (its Stop, or leaving, while
    paused), with or without the ?link= that routes it."""
    return urlsplit(response.url).path == "/api/end"


CAMERA_TRACK_JS = "document.getElementById('live-video').srcObject?.getVideoTracks()[0]"


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    return await make_client(Config(workers=1, no_cache=True))


async def track_at_ten_fps(page: Page) -> None:
    """Asks the running live page for 10 fps and waits for it to be tracking again."""
    await page.select_option("#live-fps", "10")
    await page.wait_for_function(
        "() => document.getElementById('live-status').textContent.startsWith('Tracking')"
    )


async def results(page: Page) -> int:
    return int(await page.inner_text("#live-results"))


async def wait_for_results(page: Page, more_than: int) -> None:
    await page.wait_for_function(
        "(n) => Number(document.getElementById('live-results').textContent) > n",
        arg=more_than,
    )


@asynccontextmanager
async def tracking(
    client: Client, tmp_path: Path, init_js: str = RECORD_WAKE_LOCKS_JS
) -> AsyncIterator[BrowserPage]:
    """The live page, its camera playing the signer, tracking."""
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=30)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await page.add_init_script(init_js)
        await page.goto(str(client.make_url("/")))
        await page.wait_for_selector("body[data-live-ready]", state="attached")
        await page.click("#live-start")
        await wait_for_results(page, 2)
        yield browser


async def paused_on_the_server(client: Client, rested: asyncio.Event) -> None:
    """Once `rested` (tests.live.when_resting, armed before the pause) is set, the server
    has ended the session and counted its end, which must be a pause (4002)."""
    async with asyncio.timeout(10):
        await rested.wait()
    response = await client.get("/metrics")
    paused = [
        float(line.split()[-1])
        for line in (await response.text()).splitlines()
        if line.startswith('holotrack_sessions_closed_total{code="4002"}')
    ]
    assert paused == [1.0], f"the server saw no pause: {paused}"


async def test_the_screen_stays_on_while_the_camera_runs(client: Client, tmp_path: Path) -> None:
    async with tracking(client, tmp_path) as browser:
        page = browser.page
        await page.wait_for_selector("body[data-wake=held]", state="attached")
        assert await page.evaluate(HELD_JS) == 1
        # Hidden, the browser lets go of the lock; the page asks for none while hidden...
        await hide_page(page)
        await page.evaluate(BROWSER_RELEASES_JS)
        await page.wait_for_selector("body[data-wake=released]", state="attached")
        assert await page.evaluate("window.__wakeLocks.length") == 1
        # ...and holds a new one as soon as it is shown again.
        await show_page(page)
        await page.wait_for_selector("body[data-wake=held]", state="attached")
        assert await page.evaluate("window.__wakeLocks.length") == 2
        assert await page.evaluate(HELD_JS) == 1
        assert await page.is_hidden(".wake-note")
        # Stop lets the screen sleep again.
        await page.click("#live-stop")
        await page.wait_for_selector("body[data-wake=off]", state="attached")
        assert await page.evaluate(HELD_JS) == 0
        assert browser.errors == []


@pytest.mark.parametrize(
    ("init_js", "state"),
    [(NO_WAKE_LOCK_JS, "unavailable"), (REFUSED_WAKE_LOCK_JS, "refused")],
    ids=["missing", "refused"],
)
async def test_without_a_wake_lock_a_note_says_what_to_do_and_tracking_goes_on(
    client: Client, tmp_path: Path, init_js: str, state: str
) -> None:
    async with tracking(client, tmp_path, init_js) as browser:
        page = browser.page
        await page.wait_for_selector(f"body[data-wake={state}]", state="attached")
        note = await page.inner_text(".wake-note")
        assert "keep the screen on" in note, note
        assert "screen timeout longer" in note, note
        # A note, not an error: the camera runs and results come.
        assert await page.get_attribute("#live-status", "data-kind") == "ok"
        assert await page.is_hidden("#live-notice")
        await wait_for_results(page, await results(page) + 2)
        await page.click("#live-stop")
        await page.wait_for_selector("body[data-wake=off]", state="attached")
        assert await page.is_hidden(".wake-note")
        assert browser.errors == []


async def test_a_frozen_page_pauses_and_goes_on_by_itself_when_shown(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frozen while hidden, the page pauses its session (4002: the server keeps its link)
    and says so; shown again, it resumes that session by itself and says what happened."""
    async with tracking(client, tmp_path) as browser:
        page = browser.page
        hellos, readies = Reported("hello"), Reported("ready")
        record_text(page, heard=readies, said=hellos)
        # The socket of the running session was opened before the recording began.
        await track_at_ten_fps(page)
        await wait_for_results(page, await results(page) + 2)
        rested = when_resting(client.app[LIVE].tokens, monkeypatch)
        await hide_page(page, freeze=True)
        await page.wait_for_selector("body[data-paused=frozen]", state="attached")
        assert "suspended this page" in await page.inner_text("#live-status")
        await paused_on_the_server(client, rested)
        assert not client.app[SESSIONS]
        assert await page.is_disabled("#live-start")

        before = await results(page)
        await show_page(page, frozen=True)
        await wait_for_results(page, before + 2)
        assert await page.get_attribute("body", "data-paused") is None
        # Playwright may report the resuming hello after the page has counted results.
        [ready] = await readies.first(1)
        await hellos.first(2)
        assert len(hellos) == 2
        assert hellos[1]["resume"] == ready["resume"]
        assert hellos[1]["fps"] == 10
        notice = await page.inner_text("#live-notice")
        assert notice.startswith("Tracking went on by itself after a pause of "), notice
        assert "suspended the hidden page" in notice, notice
        assert await page.get_attribute("#live-notice", "data-kind") == "info"
        assert await page.is_disabled("#live-start")
        assert browser.errors == []


async def test_stop_takes_away_the_words_on_how_the_run_went_on(
    client: Client, tmp_path: Path
) -> None:
    """A pause the page came back from, then Stop: "Tracking went on by itself after a
    pause" stayed, as an alert, under "Stopped." until the next Start."""
    async with tracking(client, tmp_path) as browser:
        page = browser.page
        await hide_page(page, freeze=True)
        await page.wait_for_selector("body[data-paused=frozen]", state="attached")
        before = await results(page)
        await show_page(page, frozen=True)
        await wait_for_results(page, before + 2)
        notice = await page.inner_text("#live-notice")
        assert notice.startswith("Tracking went on by itself after a pause of "), notice
        await page.click("#live-stop")
        await page.wait_for_selector("#live-start:enabled")
        assert await page.inner_text("#live-status") == "Stopped."
        assert await page.is_hidden("#live-notice")
        assert browser.errors == []


async def test_a_muted_camera_pauses_the_session_until_its_picture_is_back(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A phone's browser mutes the camera while the screen is locked or another app has it:
    no picture to track, so the session pauses rather than sending the last one again."""
    async with tracking(client, tmp_path) as browser:
        page = browser.page
        hellos, readies = Reported("hello"), Reported("ready")
        record_text(page, heard=readies, said=hellos)
        await track_at_ten_fps(page)
        rested = when_resting(client.app[LIVE].tokens, monkeypatch)
        await page.evaluate(f"() => {CAMERA_TRACK_JS}.dispatchEvent(new Event('mute'))")
        await page.wait_for_selector("body[data-paused=muted]", state="attached")
        assert "gives no picture" in await page.inner_text("#live-status")
        await paused_on_the_server(client, rested)
        # Shown again with the camera still muted: the session still waits for a picture.
        await hide_page(page)
        await show_page(page)
        assert await page.get_attribute("body", "data-paused") == "muted"

        before = await results(page)
        await page.evaluate(f"() => {CAMERA_TRACK_JS}.dispatchEvent(new Event('unmute'))")
        await wait_for_results(page, before + 2)
        # Playwright may report the resuming hello after the page has counted results.
        [ready] = await readies.first(1)
        await hellos.first(2)
        assert [h.get("resume") for h in hellos[1:]] == [ready["resume"]]
        notice = await page.inner_text("#live-notice")
        assert notice.endswith(": the camera gave no picture."), notice

        # The rate changed while paused: a new session, which waits as well, saying why.
        await page.evaluate(f"() => {CAMERA_TRACK_JS}.dispatchEvent(new Event('mute'))")
        await page.wait_for_selector("body[data-paused=muted]", state="attached")
        await page.select_option("#live-fps", "5")
        assert "gives no picture" in await page.inner_text("#live-status")
        before = await results(page)
        await page.evaluate(f"() => {CAMERA_TRACK_JS}.dispatchEvent(new Event('unmute'))")
        await wait_for_results(page, before + 2)
        await hellos.first(3)
        assert [h["fps"] for h in hellos[2:]] == [5]
        assert browser.errors == []


async def test_a_camera_taken_while_hidden_is_opened_again_when_shown(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hidden, the page cannot have the camera back (a browser gives it only to a page on
    screen): it says so, and opens it again by itself when it is shown."""
    async with tracking(client, tmp_path) as browser:
        page = browser.page
        hellos, readies = Reported("hello"), Reported("ready")
        record_text(page, heard=readies, said=hellos)
        await track_at_ten_fps(page)
        first = await page.evaluate(f"() => {CAMERA_TRACK_JS}.id")
        rested = when_resting(client.app[LIVE].tokens, monkeypatch)
        await hide_page(page)
        await page.evaluate(
            f"""() => {{
                  const track = {CAMERA_TRACK_JS};
                  track.stop();
                  track.dispatchEvent(new Event("ended"));
                }}"""
        )
        await page.wait_for_selector("body[data-paused=camera]", state="attached")
        status = await page.inner_text("#live-status")
        assert status.startswith("Paused: the camera stopped"), status
        assert "when you come back to this page" in status, status
        await paused_on_the_server(client, rested)
        assert await page.evaluate(f"() => {CAMERA_TRACK_JS}.readyState") == "ended"

        before = await results(page)
        await show_page(page)
        await wait_for_results(page, before + 2)
        again = await page.evaluate(f"() => [{CAMERA_TRACK_JS}.id, {CAMERA_TRACK_JS}.readyState]")
        assert again[0] != first
        assert again[1] == "live"
        # Playwright may report the resuming hello after the page has counted results.
        [ready] = await readies.first(1)
        await hellos.first(2)
        assert [h.get("resume") for h in hellos[1:]] == [ready["resume"]]
        notice = await page.inner_text("#live-notice")
        assert notice.endswith(": the camera stopped and was opened again."), notice
        assert await page.is_disabled("#live-start")
        assert browser.errors == []


async def test_a_vtubers_phone_frozen_in_a_pocket_keeps_the_obs_view_on_the_same_session(
    make_client: MakeClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The avatar page on a phone, its OBS view on the PC: frozen while hidden, the phone's
    page pauses; the view stays connected, and when the phone's page is shown again it goes
    on by itself with the same link, which the view follows untouched."""
    needs_node_modules()
    client = await make_client(Config(workers=1, no_cache=True))
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=90)
    async with open_phone(extra_args=fake_camera_args(y4m)) as phone, open_page() as obs:
        streamer = phone.page
        await open_avatar(phone, client)
        hellos = record_hellos(streamer)
        await start_session(phone)
        await streamer.wait_for_selector("body[data-wake=held]", state="attached")
        token = await streamer.get_attribute("#watch-link", "data-token")
        link = await streamer.get_attribute("#watch-link", "href")
        assert token
        assert link
        view = obs.page
        await open_avatar(obs, client, link.removeprefix(str(client.make_url(""))))
        first = await streamer.get_attribute("body", "data-session")
        await view.wait_for_function(
            "(session) => document.body.dataset.session === session", arg=first
        )

        rested = when_resting(client.app[LIVE].tokens, monkeypatch)
        await hide_page(streamer, freeze=True)
        await streamer.wait_for_selector("body[data-paused=frozen]", state="attached")
        await paused_on_the_server(client, rested)
        assert await view.get_attribute("body", "data-watch-state") != "error"

        await show_page(streamer, frozen=True)
        await streamer.wait_for_function(
            "(first) => document.body.dataset.session && document.body.dataset.session !== first",
            arg=first,
        )
        await same_link_new_session(streamer, view, token)
        await hellos.first(2)
        assert [h.get("resume") is not None for h in hellos] == [False, True]
        assert await streamer.is_disabled("#avatar-start")
        assert await streamer.get_attribute("body", "data-wake") == "held"
        notice = await streamer.inner_text("#avatar-notice")
        assert "suspended the hidden page" in notice, notice
        assert phone.errors == []
        assert [e for e in obs.errors if "WebSocket" not in e] == []


async def test_a_workout_paused_by_a_locked_screen_keeps_its_count_and_coach_link(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The screen locks mid-set: the camera is muted and the page pauses; unlocked, the
    workout goes on by itself: the next rep is the second, the coach's link and the log's
    row are the same."""
    track = "document.getElementById('fitness-video').srcObject.getVideoTracks()[0]"
    async with first_rep_of_a_loop(client, tmp_path) as browser:
        page = browser.page
        token = await page.get_attribute("#coach-link", "data-token")
        assert token
        rested = when_resting(client.app[LIVE].tokens, monkeypatch)
        await hide_page(page)
        await page.evaluate(f"() => {track}.dispatchEvent(new Event('mute'))")
        await page.wait_for_selector("body[data-paused=muted]", state="attached")
        await paused_on_the_server(client, rested)
        await show_page(page)
        await page.evaluate(f"() => {track}.dispatchEvent(new Event('unmute'))")
        await wait_for_reps(page, 2)
        assert await page.get_attribute("#coach-link", "data-token") == token
        assert await page.is_visible("#coach-share")
        rows = await log_rows(browser)
        assert [row[1:3] for row in rows] == [["1", "Push-up"]]
        assert browser.errors == []


async def test_a_pause_longer_than_the_grace_is_said_to_be_a_new_session(
    make_client: MakeClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Back after the server let go of the paused session (--watch-grace): the page goes on
    all the same, in a new session, and says so (a workout would start again at 0)."""
    client = await make_client(Config(workers=1, no_cache=True, watch_grace=1))
    async with tracking(client, tmp_path) as browser:
        page = browser.page
        rested = when_resting(client.app[LIVE].tokens, monkeypatch)
        await hide_page(page, freeze=True)
        await page.wait_for_selector("body[data-paused=frozen]", state="attached")
        await paused_on_the_server(client, rested)
        tokens = client.app[LIVE].tokens
        await until(lambda: len(tokens) == 0, "the server let go of the paused session's link")
        before = await results(page)
        await show_page(page, frozen=True)
        await wait_for_results(page, before + 2)
        notice = await page.inner_text("#live-notice")
        assert notice.endswith(
            "That is longer than the 1 s the server keeps a paused session: this is a new one."
        ), notice
        assert browser.errors == []


RESTARTED = "it was restarted, or another of its servers answered"


def said_to_be_new(notice: str, why: str) -> bool:
    """The words of a page back in a session that carries nothing over (run.js forgotten):
    `why` is "it keeps a lost one GRACE" when it was away longer, else RESTARTED."""
    said = re.fullmatch(
        r"The connection was back after \d+ s, but the server no longer had the session"
        rf" \({re.escape(why)}\): this is a new one\.",
        notice,
    )
    return said is not None


async def test_back_from_a_pause_to_a_server_that_forgot_the_session_says_so(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paused well within the grace, but the server that answers the resume no longer has
    the session (it restarted, or a balancer sent the live page to another replica): the
    page goes on in a new session and says so, rather than letting a count start again
    unsaid."""
    y4m = write_y4m(ASL_VIDEO, tmp_path / "camera.y4m", frames=30)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await page.goto(str(client.make_url("/")))
        await page.wait_for_selector("body[data-live-ready]", state="attached")
        readies = Readies(page)
        await page.click("#live-start")
        await wait_for_results(page, 2)
        rested = when_resting(client.app[LIVE].tokens, monkeypatch)
        await page.evaluate(f"() => {CAMERA_TRACK_JS}.dispatchEvent(new Event('mute'))")
        await page.wait_for_selector("body[data-paused=muted]", state="attached")
        await paused_on_the_server(client, rested)
        [ready] = await readies.first(1)
        client.app[LIVE].tokens.end(ready["resume"], "forgotten by the test")
        before = await results(page)
        await page.evaluate(f"() => {CAMERA_TRACK_JS}.dispatchEvent(new Event('unmute'))")
        await wait_for_results(page, before + 2)
        _, again = await readies.first(2)
        assert again["resumed"] is False
        notice = await page.inner_text("#live-notice")
        # Back well within the minute the server keeps it: that is not why.
        assert said_to_be_new(notice, RESTARTED), notice
        assert browser.errors == []


def routed_socket(client: Client, token: str) -> str:
    return "ws" + str(client.make_url(f"/ws?link={token}")).removeprefix("http")


@pytest.mark.parametrize("why", ["muted", "frozen"])
async def test_a_workout_paused_longer_than_the_grace_goes_on_as_a_new_one(
    make_client: MakeClient, tmp_path: Path, why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Back after the server let go of the paused workout: the page goes on with a new
    link (its key of the workout would open the old one again, empty) and a new row in the
    log, so the first workout's row keeps its rep. Frozen, the page is also hurried on as
    it is shown: it must still open the new link once, when it knows the link's token."""
    client = await make_client(Config(workers=1, no_cache=True, watch_grace=1))
    track = "document.getElementById('fitness-video').srcObject.getVideoTracks()[0]"
    async with first_rep_of_a_loop(client, tmp_path) as browser:
        page = browser.page
        token = await page.get_attribute("#coach-link", "data-token")
        opened = asyncio.Event()
        sockets = record_socket_urls(page, lambda url: opened.set())
        rested = when_resting(client.app[LIVE].tokens, monkeypatch)
        if why == "muted":
            await page.evaluate(f"() => {track}.dispatchEvent(new Event('mute'))")
        else:
            await hide_page(page, freeze=True)
        await page.wait_for_selector(f"body[data-paused={why}]", state="attached")
        await paused_on_the_server(client, rested)
        tokens = client.app[LIVE].tokens
        await until(lambda: len(tokens) == 0, "the server let go of the paused session's link")
        if why == "muted":
            await page.evaluate(f"() => {track}.dispatchEvent(new Event('unmute'))")
        else:
            await show_page(page, frozen=True)
        await page.wait_for_function(
            "(token) => !['', undefined, token].includes("
            "document.getElementById('coach-link').dataset.token)",
            arg=token,
        )
        new_token = await page.get_attribute("#coach-link", "data-token")
        # Playwright may report the new socket after the page has read its ready.
        async with asyncio.timeout(30):
            await opened.wait()
        assert sockets == [routed_socket(client, str(new_token))]
        notice = await page.inner_text("#fitness-notice")
        assert notice.endswith("this is a new one."), notice
        await page.wait_for_function("() => document.querySelectorAll('#log-body tr').length === 2")
        rows = await log_rows(browser)
        first = rows[-1]  # the newest workout is on top
        assert first[2] == "Push-up"
        assert int(first[3]) >= 1  # the first workout's reps stay in its own row
        assert browser.errors == []


async def test_a_workout_cut_off_longer_than_the_grace_goes_on_in_a_new_row(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """The Wi-Fi gone for longer than the server keeps a lost session: the page's tries
    fail until the network is back, then it goes on in a session that carries nothing over
    (ready's resumed false), says so, and the log starts a new row rather than counting the
    new workout's reps into the first one's."""
    client = await make_client(Config(workers=1, no_cache=True, watch_grace=1))
    async with first_rep_of_a_loop(client, tmp_path) as browser:
        page = browser.page
        first = await page.get_attribute("body", "data-session")
        network = NetworkDown(page)
        await network.cut()  # the running socket is cut below
        (camera,) = client.app[SESSIONS]
        assert camera.transport is not None
        camera.transport.abort()
        await network.refused.wait()
        tokens = client.app[LIVE].tokens
        await until(lambda: len(tokens) == 0, "the server let go of the paused session's link")
        network.back()
        back = await page.wait_for_function(
            "(old) => document.body.dataset.session !== old && document.body.dataset.session",
            arg=first,
        )
        assert await back.json_value() != first
        notice = await page.inner_text("#fitness-notice")
        assert said_to_be_new(notice, "it keeps a lost one 1 s"), notice
        await page.wait_for_function("() => document.querySelectorAll('#log-body tr').length === 2")
        rows = await log_rows(browser)
        assert [row[2] for row in rows] == ["Push-up", "Push-up"]
        assert int(rows[-1][3]) >= 1  # the first workout keeps its reps in its own row
        assert [e for e in browser.errors if "WebSocket" not in e] == []


async def test_stop_on_a_paused_workout_ends_it_and_its_coach_link_at_once(
    make_client: MakeClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The screen locked mid-set and the person presses Stop: the paused page has no
    connection to close with 1000, so it sends an end with its resume string. The coach's
    card is closed as after any Stop, now and not when the 10-minute grace runs out, and
    the log's row gets the workout the end answers with."""
    client = await make_client(Config(workers=1, no_cache=True, watch_grace=600))
    track = "document.getElementById('fitness-video').srcObject.getVideoTracks()[0]"
    async with first_rep_of_a_loop(client, tmp_path) as browser:
        page = browser.page
        token = await page.get_attribute("#coach-link", "data-token")
        coach = await client.ws_connect("/ws")
        await coach.send_json({"type": "watch", "version": 1, "token": token})
        assert (await coach.receive_json(timeout=30))["type"] == "watching"
        sent, _ = record_text(page)
        rested = when_resting(client.app[LIVE].tokens, monkeypatch)
        await hide_page(page)
        await page.evaluate(f"() => {track}.dispatchEvent(new Event('mute'))")
        await page.wait_for_selector("body[data-paused=muted]", state="attached")
        await paused_on_the_server(client, rested)
        await show_page(page)  # to press Stop; the camera is still muted, the page paused

        async with page.expect_response(is_end) as answered:
            await page.click("#fitness-stop")
        end = await answered.value
        async with asyncio.timeout(10):
            while (message := await coach.receive()).type is WSMsgType.TEXT:
                pass
        assert (message.type, message.data, message.extra) == (
            WSMsgType.CLOSE,
            1000,
            "the watched session ended: the client closed the session",
        )
        await page.wait_for_selector("body[data-running=false]", state="attached")
        assert len(client.app[LIVE].tokens) == 0
        assert sent == []  # no socket: the end went over HTTP
        assert urlsplit(end.url).query == f"link={token}"  # routed where the link lives
        # The resume string of its last ready: the server found the session by it.
        posted = end.request.post_data_json
        assert isinstance(posted, dict)
        assert list(posted) == ["resume"]
        answer = await end.json()
        workout = answer["workout"]
        [(exercise, reps)] = [(s["exercise"], s["reps"]) for s in workout["sets"]]
        assert exercise == "push_up"
        assert reps >= 1
        seconds = int(workout["sets"][0]["duration_ms"] // 1000)
        time = f"{seconds // 60}:{seconds % 60:02d}"
        # The page logs the answer once it has read its body, after the response Playwright
        # reported: read at once, the row was the last summary's, a second short at times.
        await page.wait_for_function(
            "(cells) => [...(document.querySelector('#log-body tr')?.cells ?? [])]"
            ".slice(3, 5).map((cell) => cell.textContent).join(' ') === cells",
            arg=f"{reps} {time}",
        )
        rows = await log_rows(browser)
        assert [row[1:5] for row in rows] == [["1", "Push-up", str(reps), time]]
        assert await page.inner_text("#fitness-status") == "Stopped."
        assert browser.errors == []


async def test_stop_on_a_paused_live_page_ends_its_session_at_once(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live page ends its session on Stop (1000); paused, it ends it with an end, and
    the server lets go of its link now rather than after the grace (60 s here)."""
    async with tracking(client, tmp_path) as browser:
        page = browser.page
        rested = when_resting(client.app[LIVE].tokens, monkeypatch)
        await hide_page(page, freeze=True)
        await page.wait_for_selector("body[data-paused=frozen]", state="attached")
        await paused_on_the_server(client, rested)
        assert len(client.app[LIVE].tokens) == 1
        async with page.expect_response(is_end) as answered:
            await page.click("#live-stop")
        end = await answered.value
        tokens = client.app[LIVE].tokens
        await until(lambda: len(tokens) == 0, "the server let go of the paused session's link")
        assert end.status == 200
        assert (await end.json())["workout"] is None
        assert await page.get_attribute("body", "data-paused") is None
        assert browser.errors == []


@pytest.mark.parametrize("paused", [True, False], ids=["paused", "running"])
async def test_leaving_the_live_page_ends_its_session_at_once(
    client: Client, tmp_path: Path, paused: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Left while running, the page closes its socket with 1000 as it unloads. Left while
    paused, it has no socket to close: its end goes out as it unloads (a fetch with
    keepalive). Either way the server lets go of the link now rather than after the grace."""
    async with tracking(client, tmp_path) as browser:
        page = browser.page
        if paused:
            rested = when_resting(client.app[LIVE].tokens, monkeypatch)
            await hide_page(page, freeze=True)
            await page.wait_for_selector("body[data-paused=frozen]", state="attached")
            await paused_on_the_server(client, rested)
        assert len(client.app[LIVE].tokens) == 1
        await page.goto(str(client.make_url("/fitness")))  # on to the workout
        tokens = client.app[LIVE].tokens
        await until(lambda: len(tokens) == 0, "the server let go of the paused session's link")
        assert browser.errors == []
