"""GET /api/exercises, the fitness page and the coach's view. The pages run in a real
headless Chromium against the real app and model: the fitness page with a fake camera
playing the push-up footage, the coach's view watching protocol clients fed real frames."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp_jinja2
import jinja2
import pytest
from aiohttp import web
from playwright.async_api import Dialog, Page, WebSocketRoute

from bench.common import free_port
from bench.fitness_clips import PUSHUPS, SQUATS, cached
from tests.browser import (
    COUNT_COLORS_JS,
    BrowserPage,
    cut_camera_session,
    fake_camera_args,
    open_page,
    open_phone,
    record_socket_urls,
    record_text,
    write_y4m,
)
from tests.conftest import Client, MakeClient
from tests.live import LiveClient, frame_message, lose_connection, until, video_frames
from tests.test_lifecycle import serving
from webapp.analysis.fitness import Workout, load_exercises
from webapp.analysis.fitness import workout as workout_module
from webapp.app import TEMPLATES_DIR
from webapp.config import Config
from webapp.fitness_page import setup_fitness_routes
from webapp.keys import LIVE
from webapp.live.shared import LiveShared
from webapp.protocol import Track

ISSUE_EXERCISES = ("squat", "push_up", "bicep_curl", "jumping_jack", "lunge", "shoulder_press")
# media/PROVENANCE.md: 1543 frames at 30 fps, six push-ups, the last at the bottom at 47.3 s.
PUSHUP_FRAMES = 1543
PUSHUP_REPS = 6
# The model's first frames, a busy machine, and 51 s of footage played in real time.
PUSHUPS_TIMEOUT_MS = 200_000
# Watch tokens of the right form that name no session (anything else makes no card).
NO_SESSION = "no-such-session-on-this-server"
NOR_THAT = "another-one-that-is-not-there"
CSV_HEADER = ["date", "set", "session", "exercise", "reps", "target", "partial_reps", "time_s"]
CSV_HEADER += ["range_of_motion_deg", "rep_s", "quality"]

PagesClient = Callable[[], Awaitable[Client]]


@pytest.fixture
def pages_client(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
) -> PagesClient:
    """The fitness routes alone: the exercises and the templates, no workers."""

    async def build() -> Client:
        app = web.Application()
        aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True)
        app[LIVE] = LiveShared()
        setup_fitness_routes(app)
        return await aiohttp_client(app)

    return build


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    return await make_client(Config(workers=1, no_cache=True))


async def test_exercises_are_described(pages_client: PagesClient) -> None:
    client = await pages_client()
    response = await client.get("/api/exercises")
    assert response.status == 200
    assert response.content_type == "application/json"
    body = await response.json()
    described = {e["name"]: e for e in body["exercises"]}
    for name in ISSUE_EXERCISES:
        exercise = described[name]
        assert isinstance(exercise["title"], str)
        assert exercise["title"]
        assert isinstance(exercise["joints"], list)
        assert exercise["joints"]
        # Where to put the camera, a sentence of its own for each.
        assert isinstance(exercise["camera"], str)
    assert len({e["camera"] for e in described.values()}) == len(described)
    assert described["push_up"]["title"] == "Push-up"
    assert described["push_up"]["camera"].startswith("Side-on")
    # Shoulder, elbow, wrist: MediaPipe Pose's 11, 13, 15 (left) and 12, 14, 16 (right).
    assert described["push_up"]["angle_points"] == {"left": [11, 13, 15], "right": [12, 14, 16]}
    # A straight body: shoulder, hip, ankle on each side. Knees caving in: the distance
    # between the knees, and between the ankles, it compares.
    assert described["push_up"]["cue_lines"] == {"body_line": [[11, 23, 27], [12, 24, 28]]}
    assert described["squat"]["cue_lines"]["knees_caving"] == [[25, 26], [27, 28]]
    # A curl counts each arm on its own, so its cue names the arm, and lights that one's
    # hip-shoulder-elbow line alone. The other exercises judge the sides' mean.
    assert described["bicep_curl"]["cue_side_lines"] == {
        "elbow_drift": {"left": [[23, 11, 13]], "right": [[24, 12, 14]]}
    }
    assert all(described[n]["cue_side_lines"] == {} for n in described if n != "bicep_curl")


@pytest.mark.parametrize(
    ("path", "script"),
    [("/fitness", "/static/fitness/main.js"), ("/coach", "/static/fitness/coach.js")],
)
async def test_pages_are_served(pages_client: PagesClient, path: str, script: str) -> None:
    client = await pages_client()
    response = await client.get(path)
    assert response.status == 200
    assert response.content_type == "text/html"
    assert f'src="{script}"' in await response.text()


# -- the fitness page in Chromium -----------------------------------------------------------


async def mark_colors(page: Page) -> dict[str, str]:
    """The colours static/fitness/marks.js draws with: MARK_COLOR (the counting angle) and
    CUE_COLOR (a form cue's limbs)."""
    colors: dict[str, str] = await page.evaluate(
        "async () => { const m = await import('/static/fitness/marks.js');"
        " return { MARK_COLOR: m.MARK_COLOR, CUE_COLOR: m.CUE_COLOR }; }"
    )
    return colors


async def open_fitness(browser: BrowserPage, client: Client, exercise: str) -> None:
    page = browser.page
    await page.goto(str(client.make_url("/fitness")))
    await page.wait_for_selector("body[data-fitness-ready]", state="attached")
    await page.select_option("#fitness-exercise", exercise)
    assert await page.is_checked('input[name="fitness-track"][value="pose"]')


async def results(page: BrowserPage) -> int:
    return int(await page.page.eval_on_selector("#fitness-stage", "el => el.dataset.results"))


async def wait_for_results(browser: BrowserPage, more_than: int) -> None:
    await browser.page.wait_for_function(
        "n => Number(document.getElementById('fitness-stage').dataset.results) > n", arg=more_than
    )


async def exercise_joints(client: Client, name: str) -> list[str]:
    response = await client.get("/api/exercises")
    [exercise] = [e for e in (await response.json())["exercises"] if e["name"] == name]
    joints: list[str] = exercise["joints"]
    return joints


async def log_rows(browser: BrowserPage) -> list[list[str]]:
    rows: list[list[str]] = await browser.page.eval_on_selector_all(
        "#log-body tr", "rows => rows.map((r) => [...r.cells].map((c) => c.textContent))"
    )
    return rows


@pytest.mark.browser
async def test_the_page_counts_the_six_pushups(client: Client, tmp_path: Path) -> None:
    # The whole video, once: Chromium's fake camera loops it, and the first loop's sixth rep
    # (about 48 s in) comes well before a second loop could count anything (about 59 s).
    y4m = write_y4m(PUSHUPS, tmp_path / "pushups.y4m", frames=PUSHUP_FRAMES)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await page.add_init_script(SPOKEN_JS)
        await open_fitness(browser, client, "push_up")
        await page.check("#fitness-voice")
        await page.fill("#fitness-target", str(PUSHUP_REPS - 1))
        await page.click("#fitness-start")
        await page.wait_for_selector("#coach-link[data-token]")
        # The skeleton the counter sees is drawn over the video: the pose's (pose only).
        colors = await browser.colors()
        pose_only = {colors["pose"]: (100, 10**9), colors["face"]: (0, 0)}
        await browser.wait_for_colors("#fitness-overlay", pose_only)
        # The counting angle (an elbow, side-on) is marked on the arm with its value.
        mark = (await mark_colors(page))["MARK_COLOR"]
        await browser.wait_for_colors("#fitness-overlay", {mark: (100, 10**9)})
        await page.wait_for_function(
            "n => Number(document.getElementById('fitness-reps').textContent) >= n",
            arg=PUSHUP_REPS,
            timeout=PUSHUPS_TIMEOUT_MS,
        )
        assert await page.text_content("#fitness-reps") == str(PUSHUP_REPS)
        assert await page.text_content("#fitness-rep-unit") == "reps"
        # Said aloud as counted, each once, the form cues between them.
        spoken: list[str] = await page.evaluate("window.spoken")
        assert [text for text in spoken if text.isdigit()] == [
            str(n) for n in range(1, PUSHUP_REPS + 1)
        ], spoken
        # The target (one short of the video's reps) is said once, as its rep is counted,
        # and shows as reached after it.
        reached = await page.evaluate(
            "async () => (await import('/static/fitness/voice.js')).REACHED"
        )
        assert spoken.count(reached) == 1, spoken
        assert spoken[spoken.index(reached) - 1] == str(PUSHUP_REPS - 1), spoken
        assert (
            await page.text_content("#fitness-to-go") == f"Target reached: {PUSHUP_REPS - 1} reps"
        )
        # The angles keep the exercise's order (the far elbow may be seen late, or never).
        shown = await page.eval_on_selector_all(
            "#fitness-angles > div", "rows => rows.map((r) => r.dataset.measure)"
        )
        joints = await exercise_joints(client, "push_up")
        assert shown == [j for j in joints if j in shown]
        await page.click("#fitness-stop")
        await page.wait_for_selector("body[data-running=false]", state="attached")
        await browser.wait_for_colors("#fitness-overlay", {colors["pose"]: (0, 0), mark: (0, 0)})
        # The log holds the set, from the workout Stop asked for.
        await page.wait_for_function("() => document.querySelectorAll('#log-body tr').length === 1")
        [row] = await log_rows(browser)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", row[0]), row
        # With the target the page told the server, which the workout gave back.
        assert row[1:4] == ["1", "Push-up", f"{PUSHUP_REPS} of {PUSHUP_REPS - 1}"]
        assert row[5].endswith("°")
        assert await page.text_content("#fitness-set-title") == "Push-up"
        assert browser.errors == []


@contextlib.asynccontextmanager
async def started_on(
    client: Client, tmp_path: Path, exercise: str, frames: int, start: int = 0
) -> AsyncIterator[BrowserPage]:
    """The fitness page started on `exercise`, its camera `frames` frames of the push-up
    video from `start`, in a loop."""
    y4m = write_y4m(PUSHUPS, tmp_path / "pushups.y4m", frames=frames, start=start)
    async with open_page(fake_camera_args(y4m)) as browser:
        await open_fitness(browser, client, exercise)
        await browser.page.click("#fitness-start")
        yield browser


@pytest.mark.browser
async def test_the_status_names_the_exercise_in_its_plural(client: Client, tmp_path: Path) -> None:
    """The status said "Counting shoulder presss.": the title with an "s" added."""
    async with started_on(client, tmp_path, "shoulder_press", frames=30) as browser:
        page = browser.page
        await page.wait_for_function(
            "() => document.getElementById('fitness-status').textContent.startsWith('Counting')"
        )
        assert await page.inner_text("#fitness-status") == "Counting shoulder presses."
        await page.select_option("#fitness-exercise", "bicep_curl")
        await page.wait_for_function("() => document.body.dataset.exercise === 'bicep_curl'")
        assert await page.inner_text("#fitness-status") == "Counting bicep curls."
        await page.click("#fitness-stop")
        await page.wait_for_selector("body[data-running=false]", state="attached")
        assert browser.errors == []


@pytest.mark.browser
async def test_the_track_and_the_exercise_come_back_on_the_next_visit(client: Client) -> None:
    """Holistic chosen once stays chosen, and the target typed once (the browser keeps
    them); the exercise is in the address, so a reload or a bookmark comes back to it."""
    async with open_page() as browser:
        page = browser.page
        await open_fitness(browser, client, "squat")
        await page.check('input[name="fitness-track"][value="holistic"]')
        await page.fill("#fitness-target", "12")
        await page.press("#fitness-target", "Tab")  # a typed number is kept once it is left
        await page.reload()
        await page.wait_for_selector("body[data-fitness-ready]", state="attached")
        assert await page.is_checked('input[name="fitness-track"][value="holistic"]')
        assert await page.input_value("#fitness-exercise") == "squat"
        assert await page.input_value("#fitness-target") == "12"
        assert await page.text_content("#fitness-to-go") == "12 to go of 12"
        await page.goto(str(client.make_url("/fitness")))
        await page.wait_for_selector("body[data-fitness-ready]", state="attached")
        assert await page.is_checked('input[name="fitness-track"][value="holistic"]')
        # A name this server does not count: the page says so, and the address says what
        # it shows instead.
        await page.goto(str(client.make_url("/fitness?exercise=moonwalk")))
        await page.wait_for_selector("body[data-fitness-ready]", state="attached")
        shown = await page.input_value("#fitness-exercise")
        assert page.url.endswith(f"/fitness?exercise={shown}")
        assert "no exercise called “moonwalk”" in await page.inner_text("#fitness-notice")
        assert browser.errors == []


@pytest.mark.browser
async def test_the_workout_log_downloads_as_csv(client: Client, tmp_path: Path) -> None:
    async with started_on(client, tmp_path, "push_up", frames=75) as browser:
        page = browser.page
        await wait_for_results(browser, 2)
        # Another exercise while running is a new set of it; "New set" one more of the same.
        # None of them has a rep (2.5 s of video, before his first): only the last is kept,
        # where three 0-rep rows were logged.
        assert "push-ups" in await page.inner_text("#fitness-status")
        await page.select_option("#fitness-exercise", "squat")
        await page.wait_for_function("() => document.body.dataset.exercise === 'squat'")
        counting = await page.inner_text("#fitness-status")
        assert counting == "Counting squats.", counting
        seen = await results(browser)
        await wait_for_results(browser, seen + 2)
        await page.click("#fitness-new-set")
        seen = await results(browser)
        await wait_for_results(browser, seen + 3)
        await page.click("#fitness-stop")
        await page.wait_for_selector("body[data-running=false]", state="attached")
        await page.wait_for_function("() => document.querySelectorAll('#log-body tr').length === 1")
        async with page.expect_download() as info:
            await page.click("#log-download")
        download = await info.value
        assert download.suggested_filename.endswith(".csv")
        text = Path(await download.path()).read_text(encoding="utf-8")
        assert browser.errors == []
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == CSV_HEADER
    assert len(rows) == 1 + 1
    records = [dict(zip(CSV_HEADER, row, strict=True)) for row in rows[1:]]
    assert [r["set"] for r in records] == ["1"]
    assert [r["exercise"] for r in records] == ["squat"]
    assert len({r["session"] for r in records}) == 1
    assert len({r["date"] for r in records}) == 1  # one workout
    assert [r["reps"] for r in records] == ["0"]
    assert float(records[0]["time_s"]) > 0  # its frames' span, the set's active time


# A workout as the server's `workout` message gives it: a set without a rep has no rep time.
NO_REP_CSV_JS = """
async () => {
  const { setRecords, toCsv } = await import("/static/fitness/log.js");
  const sets = [
    { exercise: "squat", reps: 0, duration_ms: 4000, range_of_motion: null, rep_ms: null,
      quality: null },
    { exercise: "squat", reps: 2, target: 10, duration_ms: 9000, range_of_motion: 80,
      rep_ms: 2500, quality: 0.9 },
  ];
  return toCsv(setRecords([{ began: Date.now(), session: "s1", sets }]));
}
"""


# What the page gives the browser's speech to say, in window.spoken; said as well.
SPOKEN_JS = """window.spoken = [];
const speak = speechSynthesis.speak.bind(speechSynthesis);
speechSynthesis.speak = (words) => { window.spoken.push(words.text); speak(words); };"""

# A set's results as the voice hears them, in a page with a speech that only listens, at
# the times given (ms); then what a second voice, made as a reload would, finds ticked, and
# what one finds from a box kept the old way.
VOICE_JS = """async ({ results, times }) => {
  const { TICKED, Voice } = await import("/static/fitness/voice.js");
  const spoken = [];
  const synth = { speak: (words) => spoken.push(words.text), cancel: () => spoken.push("(hush)") };
  const kept = new Map();
  const storage = { getItem: (k) => kept.get(k) ?? null, setItem: (k, v) => kept.set(k, v) };
  const box = document.createElement("input");
  box.type = "checkbox";
  const note = document.createElement("p");
  let t = 0;
  const voice = new Voice({ box, note, synth, storage, now: () => t });
  const silent = box.checked;
  box.checked = true;
  box.dispatchEvent(new Event("change"));
  voice.reset();
  results.forEach((fitness, i) => { t = times[i]; voice.show(fitness); });
  voice.stop();
  const again = document.createElement("input");
  again.type = "checkbox";
  new Voice({ box: again, note, synth, storage });
  // Ticked before the pages kept their settings together.
  const old = new Map([["holotrack.fitness.voice", "on"]]);
  const oldBox = document.createElement("input");
  oldBox.type = "checkbox";
  const oldStorage = { getItem: (k) => old.get(k) ?? null, setItem: (k, v) => old.set(k, v) };
  new Voice({ box: oldBox, note, synth, storage: oldStorage });
  return {
    silent, spoken, remembered: again.checked, note: note.textContent, ticked: TICKED,
    carried: oldBox.checked,
  };
}"""


@pytest.mark.browser
async def test_the_voice_says_each_rep_once_and_a_held_cue_every_ten_seconds(
    client: Client,
) -> None:
    sag = {"code": "body_line", "message": "Keep your body in one straight line"}
    # A resumed set's first result (3 reps) is not news; a count going down (a new set) is
    # not said; a cue held from 1 s is said again only at 11 s.
    results = [
        {"reps": 3, "cues": []},
        {"reps": 4, "cues": [sag]},
        {"reps": 4, "cues": [sag]},
        {"reps": 5, "cues": [sag]},
        {"reps": 5, "cues": [sag]},
        {"reps": 0, "cues": []},
        {"reps": 1, "cues": []},
    ]
    times = [0, 1000, 2000, 10000, 11000, 12000, 13000]
    async with open_page() as browser:
        await open_fitness(browser, client, "push_up")
        heard = await browser.page.evaluate(VOICE_JS, {"results": results, "times": times})
    assert heard["silent"] is False  # off until asked for
    # Ticking the box says so at once: the voice is heard before the set.
    assert heard["spoken"] == [
        heard["ticked"],
        "4",
        sag["message"],
        "5",
        sag["message"],
        "1",
        "(hush)",
    ]
    assert heard["remembered"] is True
    assert heard["carried"] is True
    assert heard["note"] == ""
    assert browser.errors == []


# The reps to go as a set's counts come in, and which count reached the target.
TARGET_JS = """async (steps) => {
  const { RepTarget } = await import("/static/fitness/target.js");
  const input = document.createElement("input");
  input.type = "number";
  input.max = "999"; // as the page's box
  const line = document.createElement("p");
  const target = new RepTarget({ input, line });
  const seen = [];
  for (const [typed, reps] of steps) {
    if (typed === "new set") target.reset();
    else if (typed !== null) {
      input.value = typed;
      input.dispatchEvent(new Event("input"));
    }
    const reached = reps === null ? null : target.show(reps);
    seen.push([line.textContent, line.dataset.reached, reached]);
  }
  return seen;
}"""


@pytest.mark.browser
async def test_the_target_counts_down_and_is_reached_once(client: Client) -> None:
    steps = [
        (None, 0),  # no target: nothing shows
        ("3", None),  # typed mid-set: shows at once
        (None, 1),
        (None, 2),
        (None, 3),  # this count reaches it
        (None, 4),  # past it: still reached, not again
        ("5", None),  # raised past the count: to go again
        (None, 5),
        ("new set", None),
        (None, 7),  # a resumed set's first count: reached before the reload
        ("0", 8),  # not a target: the last one holds
        ("2.5", 9),
        ("1000", 10),  # past the box's max, which the server refuses (4001)
        ("", 10),  # emptied: no target
    ]
    async with open_page() as browser:
        await open_fitness(browser, client, "push_up")
        seen = await browser.page.evaluate(TARGET_JS, steps)
    assert seen == [
        ["", "false", False],
        ["3 to go of 3", "false", None],
        ["2 to go of 3", "false", False],
        ["1 to go of 3", "false", False],
        ["Target reached: 3 reps", "true", True],
        ["Target reached: 3 reps", "true", False],
        ["1 to go of 5", "false", None],
        ["Target reached: 5 reps", "true", True],
        ["5 to go of 5", "false", None],
        ["Target reached: 5 reps", "true", False],
        ["Target reached: 5 reps", "true", False],
        ["Target reached: 5 reps", "true", False],
        ["Target reached: 5 reps", "true", False],
        ["", "false", False],
    ]
    assert browser.errors == []


TARGET_RULE = "A target is a whole number of reps from 1 to 999"


@pytest.mark.browser
async def test_a_typo_in_the_target_keeps_the_last_one_and_says_so(
    client: Client, tmp_path: Path
) -> None:
    """0, 2.5 or 1000 typed mid-set dropped the target without a word (the box only turned
    red): the "to go" line went, and the server's set, so the coach's card, lost it. The
    last target holds, and the page says why; an emptied box is no target, on purpose."""
    y4m = write_y4m(PUSHUPS, tmp_path / "pushups.y4m", frames=45)
    note = "#fitness-target-note"
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        reported = asyncio.Event()
        sent, received = record_text(
            page, lambda message: reported.set() if message["type"] == "result" else None
        )
        await open_fitness(browser, client, "push_up")
        await page.fill("#fitness-target", "8")
        await page.press("#fitness-target", "Tab")
        await page.click("#fitness-start")
        await wait_for_results(browser, 2)
        assert await page.is_hidden(note)
        for typo in ("0", "2.5", "1000"):
            await page.fill("#fitness-target", typo)
            assert await page.get_attribute("#fitness-target", "aria-invalid") == "true"
            await page.press("#fitness-target", "Tab")
            assert await page.text_content("#fitness-to-go") == "8 to go of 8", typo
            said = await page.inner_text(note)
            assert said == f"{TARGET_RULE}: the set keeps its target of 8 until you type another."
            # Left, the box shows the target in force again, which the browser keeps.
            assert await page.input_value("#fitness-target") == "8"
        # Typed over with what is no number at all, which the box reads as empty.
        await page.locator("#fitness-target").select_text()
        await page.keyboard.type("-")
        assert await page.text_content("#fitness-to-go") == "8 to go of 8"
        assert await page.is_visible(note)
        # The server's set keeps it too: the coach's card still reads "of 8".
        heard = len(received)
        reported.clear()
        await wait_for_results(browser, await results(browser) + 2)
        # Playwright may report a result after the page has counted it.
        async with asyncio.timeout(30):
            await reported.wait()
        later = [m for m in received[heard:] if m["type"] == "result"]
        assert later, received[heard:]
        assert {m["fitness"]["target"] for m in later} == {8}
        assert {"type": "target", "reps": None} not in sent
        # Emptied on purpose: no target, and nothing to explain.
        await page.fill("#fitness-target", "")
        await page.press("#fitness-target", "Tab")
        assert await page.text_content("#fitness-to-go") == ""
        assert await page.is_hidden(note)
        await page.fill("#fitness-target", "0")
        said = await page.inner_text(note)
        assert said == f"{TARGET_RULE}: this set has none until you type one."
        await page.click("#fitness-stop")
        await page.wait_for_selector("body[data-running=false]", state="attached")
        assert browser.errors == []
        # A typo left in the box is not what the next visit reads: the kept target is.
        await page.fill("#fitness-target", "6")
        await page.press("#fitness-target", "Tab")
        await page.fill("#fitness-target", "1000")
        await page.press("#fitness-target", "Tab")
        await page.reload()
        await page.wait_for_selector("#fitness-start:enabled")
        assert await page.input_value("#fitness-target") == "6"
        assert await page.text_content("#fitness-to-go") == "6 to go of 6"


@pytest.mark.browser
async def test_a_target_typed_mid_set_reaches_the_server_before_the_box_is_left(
    client: Client, tmp_path: Path
) -> None:
    """Typed mid-set with the hands going back to the floor, the box never left: the page
    read "12 to go of 12" while the coach's card and the log had no target. Told at every
    key, "12" was a target of 1 for a moment, "1 of 1 reps" on the coach's card."""
    async with started_on(client, tmp_path, "push_up", 30) as browser:
        page = browser.page
        await page.wait_for_selector("#coach-link[data-token]")
        # What the page's socket sends from now on (its send() is looked up on the prototype).
        await page.evaluate(
            """() => {
                 window.sentTexts = [];
                 const send = WebSocket.prototype.send;
                 WebSocket.prototype.send = function (data) {
                   if (typeof data === "string") window.sentTexts.push(JSON.parse(data));
                   return send.call(this, data);
                 };
               }"""
        )
        await page.click("#fitness-target")
        await page.keyboard.type("12")
        assert await page.text_content("#fitness-to-go") == "12 to go of 12"
        # The server's workout, which the log shows, carries the target.
        await page.wait_for_function(
            "() => document.querySelector('#log-body tr')?.textContent.includes('0 of 12')"
        )
        assert await page.evaluate("document.activeElement.id") == "fitness-target"
        told = await page.evaluate(
            "() => window.sentTexts.filter((m) => m.type === 'target').map((m) => m.reps)"
        )
        assert told == [12]
        assert browser.errors == []


# New set pressed while the session reconnects: what each FitnessSession sends once its
# next connection is accepted (its hello already names the exercise asked for).
NEW_SET_AWAY_JS = """async () => {
  const { FitnessSession } = await import("/static/fitness/connection.js");
  const sent = [];
  const session = (name) => {
    const s = new FitnessSession({
      url: "ws://127.0.0.1:9/ws", track: "pose", fps: 15, grab: async () => null,
      handlers: {}, options: { exercise: "squat" },
    });
    // A connection's hello carries the options of the moment (session.js connect()).
    s.hello = () => { s.sentOptions = s.options; };
    s.accept = () => {
      s.socket = { readyState: WebSocket.OPEN, send: (m) => sent.push([name, JSON.parse(m)]) };
      s.ready = true;
      s.accepted();
    };
    s.open = () => { s.hello(); s.accept(); };
    s.away = () => { s.ready = false; s.socket = null; };
    s.open();
    return s;
  };
  const again = session("same exercise");
  again.away();
  const taken = again.newSet("squat");
  again.open();
  const other = session("another exercise");
  other.away();
  other.newSet("push_up");
  other.open();
  const back = session("another, then back");
  back.away();
  back.newSet("push_up");
  back.newSet("squat");
  back.open();
  const now = session("connected");
  now.newSet("push_up");
  now.aim(12);
  now.newSet("squat");
  now.away();
  now.aim(null);
  now.open();
  const late = session("after the hello");
  late.away();
  late.hello();
  late.newSet("push_up");
  late.accept();
  return { taken, sent, hello: now.options };
}"""


@pytest.mark.browser
async def test_a_new_set_asked_for_while_reconnecting_starts_once_back(client: Client) -> None:
    """It was dropped without a word: the hello resumed the set going on."""
    async with open_page() as browser:
        await open_fitness(browser, client, "squat")
        got = await browser.page.evaluate(NEW_SET_AWAY_JS)
    assert got["taken"] is True  # the page starts the set at once
    assert got["sent"] == [
        ["same exercise", {"type": "exercise", "name": "squat", "target": None}],
        ["another, then back", {"type": "exercise", "name": "squat", "target": None}],
        ["connected", {"type": "exercise", "name": "push_up", "target": None}],
        # The set's target goes to the server, and with each new set after it.
        ["connected", {"type": "target", "reps": 12}],
        ["connected", {"type": "exercise", "name": "squat", "target": 12}],
        # Changed while away: the hello may have gone before it, so it goes once back.
        ["connected", {"type": "target", "reps": None}],
        # Another exercise chosen after the hello went: the server counts the hello's
        # until told.
        ["after the hello", {"type": "exercise", "name": "push_up", "target": None}],
    ]
    # One changed while away goes in the next hello.
    assert got["hello"] == {"exercise": "squat", "target": None}
    assert browser.errors == []


# Stop with a frame still out: what the session sends before and after that frame's result.
FINISH_JS = """async () => {
  const { FitnessSession } = await import("/static/fitness/connection.js");
  const sent = [];
  const session = new FitnessSession({
    url: "ws://127.0.0.1:9/ws", track: "pose", fps: 15, grab: async () => null,
    handlers: {}, options: { exercise: "squat" },
  });
  session.socket = { readyState: WebSocket.OPEN, send: (m) => sent.push(JSON.parse(m)) };
  session.ready = true;
  session.inFlight.set(7, performance.now());
  const finishing = session.windDown();
  const before = [...sent, session.finalAsked];
  session.receive(JSON.stringify({ type: "result", seq: 7, capture_ms: 0 }));
  return { finishing, before, after: [...sent, session.finalAsked] };
}"""


@pytest.mark.browser
async def test_stop_asks_for_the_workout_once_the_last_frame_is_answered(client: Client) -> None:
    """A rep the last frame completes is in the workout the log keeps: one Stop in
    seventeen, asked at once, logged a rep fewer than the server and the coach counted."""
    async with open_page() as browser:
        await open_fitness(browser, client, "squat")
        got = await browser.page.evaluate(FINISH_JS)
        assert browser.errors == []
    assert got == {
        "finishing": True,
        "before": [False],
        "after": [{"type": "summary"}, True],
    }


@pytest.mark.browser
async def test_a_set_stopped_in_its_first_seconds_on_a_slow_link_is_logged(
    client: Client, tmp_path: Path
) -> None:
    """Stop just after Start on a link whose answers take 1.5 s: the last frame's answer
    and then the workout's took longer than Stop waits, the page stopped listening, and
    the set (no rep yet, so never asked for before) was missing from the log."""
    y4m = write_y4m(PUSHUPS, tmp_path / "pushups.y4m", frames=60)
    loop = asyncio.get_running_loop()

    async def slow(socket: WebSocketRoute) -> None:
        server = socket.connect_to_server()
        server.on_message(lambda message: loop.call_later(1.5, socket.send, message))

    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await page.route_web_socket(re.compile(r"/ws(\?|$)"), slow)
        await open_fitness(browser, client, "push_up")
        await page.click("#fitness-start")
        await page.wait_for_selector("#coach-link[data-token]")
        await page.click("#fitness-stop")
        await page.wait_for_selector("body[data-running=false]", state="attached")
        await page.wait_for_function(
            "() => document.querySelectorAll('#log-body tr').length", timeout=15_000
        )
        [row] = await log_rows(browser)
        assert row[1:4] == ["1", "Push-up", "0"], row
        assert await page.text_content("#fitness-status") == "Stopped."
        assert browser.errors == []


@pytest.mark.browser
async def test_without_speech_the_box_is_off_and_says_why(client: Client) -> None:
    async with open_page() as browser:
        page = browser.page
        await page.add_init_script("delete window.speechSynthesis;")
        await open_fitness(browser, client, "push_up")
        assert await page.is_disabled("#fitness-voice")
        assert not await page.is_checked("#fitness-voice")
        assert "cannot speak" in (await page.text_content("#fitness-voice-note") or "")
        assert browser.errors == []


# A side-on push-up: the far elbow comes into view after the rest, then goes again.
ANGLES_IN_ORDER_JS = """async (joints) => {
  const { RepReadout } = await import("/static/fitness/readout.js");
  const el = (tag) => document.createElement(tag);
  const angles = el("dl");
  const readout = new RepReadout({
    reps: el("output"), unit: el("span"), sides: el("p"), phase: el("strong"),
    angles, cues: el("ul"), lastRep: el("p"),
  });
  readout.reset(joints);
  const seen = [];
  for (const shown of [joints.filter((j) => j !== "right_elbow"), joints, ["left_elbow"]]) {
    readout.show({ reps: 0, phase: "up", angles: Object.fromEntries(shown.map((j) => [j, 90])) });
    const rows = [...angles.children];
    seen.push(rows.map((row) => [row.dataset.measure, row.querySelector("dd").textContent]));
  }
  return seen;
}"""


@pytest.mark.browser
async def test_the_angles_keep_the_exercises_order(client: Client) -> None:
    joints = await exercise_joints(client, "push_up")
    assert joints.index("right_elbow") < len(joints) - 1  # else the order could not go wrong
    async with open_page() as browser:
        await open_fitness(browser, client, "push_up")
        first, all_seen, one = await browser.page.evaluate(ANGLES_IN_ORDER_JS, joints)
    assert first == [[j, "90°"] for j in joints if j != "right_elbow"]
    assert all_seen == [[j, "90°"] for j in joints]
    # A measure once seen keeps its row and its place, with a dash while unseen.
    assert one == [[j, "90°" if j == "left_elbow" else "\u2013"] for j in joints]
    assert browser.errors == []


# A bicep curl's count (each arm on its own) as the readout and the workout log show it.
SIDES_SHOWN_JS = """async () => {
  const { RepReadout } = await import("/static/fitness/readout.js");
  const { WorkoutLog } = await import("/static/fitness/log.js");
  const el = (tag) => document.createElement(tag);
  const sides = el("p");
  const readout = new RepReadout({
    reps: el("output"), unit: el("span"), sides, phase: el("strong"),
    angles: el("dl"), cues: el("ul"), lastRep: el("p"),
  });
  readout.show({ reps: 5, sides: { left: 3, right: 2 }, phase: "down", angles: {} });
  const before = sides.textContent;
  readout.show({ reps: 4, phase: "down", angles: {} });  // a one-sided exercise: none
  localStorage.clear();
  const table = el("table");
  table.createTHead().insertRow().append(...["When", "Set", "Exercise", "Reps"].map((t) => {
    const th = el("th");
    th.textContent = t;
    return th;
  }));
  const body = table.createTBody();
  const log = new WorkoutLog({
    body, empty: el("p"), download: el("button"), clear: el("button"), kept: el("p"),
    exercises: [{ name: "bicep_curl", title: "Bicep curl" }],
  });
  log.update("link", "s1", { sets: [
    { exercise: "bicep_curl", reps: 5, sides: { left: 3, right: 2 }, partial_reps: 1,
      duration_ms: 20000, range_of_motion: 90, rep_ms: 2000, quality: 1 },
  ] });
  return [before, sides.textContent, body.rows[0].cells[3].textContent];
}"""


@pytest.mark.browser
async def test_each_arms_count_reads_the_same_in_the_readout_and_the_log(
    client: Client,
) -> None:
    async with open_page() as browser:
        await open_fitness(browser, client, "bicep_curl")
        assert await browser.page.evaluate(SIDES_SHOWN_JS) == [
            "left 3 · right 2",
            "",
            "5 (left 3 · right 2), 1 partial",
        ]
        assert browser.errors == []


# The readout's "Last rep" line after each of these results.
LAST_REP_JS = """async (results) => {
  const { RepReadout } = await import("/static/fitness/readout.js");
  const el = (tag) => document.createElement(tag);
  const lastRep = el("p");
  const readout = new RepReadout({
    reps: el("output"), unit: el("span"), sides: el("p"), phase: el("strong"),
    angles: el("dl"), cues: el("ul"), lastRep,
  });
  return results.map((fitness) => {
    readout.show({ phase: "up", angles: {}, ...fitness });
    return lastRep.textContent;
  });
}"""


@pytest.mark.browser
async def test_the_last_rep_says_its_range_its_time_and_its_arm(client: Client) -> None:
    """A one-armed exercise's last rep names the arm that did it: a left rep's 88 degrees
    read as the right's shallow one otherwise."""
    curl = {"range_of_motion": 87.6, "duration_ms": 2140}
    async with open_page() as browser:
        await open_fitness(browser, client, "bicep_curl")
        said = await browser.page.evaluate(
            LAST_REP_JS,
            [
                {"reps": 1, "last_rep": {**curl, "side": "left"}},
                {"reps": 2, "last_rep": {**curl, "side": None}},
                {"reps": 0},
            ],
        )
        assert browser.errors == []
    assert said == [
        "Last rep: 88° range of motion in 2.1 s (left)",
        "Last rep: 88° range of motion in 2.1 s",
        "",
    ]


@pytest.mark.browser
async def test_a_sets_time_reads_as_a_clock(client: Client) -> None:
    """The timer and the log's time column read minutes and two-digit seconds: "1:05", not
    "1:5" (which reads as a minute and a half a second)."""
    async with open_page() as browser:
        page = browser.page
        await page.goto(str(client.make_url("/fitness")))
        await page.wait_for_selector("body[data-fitness-ready]", state="attached")
        said = await page.evaluate(
            """async () => {
                 const { clock } = await import("/static/fitness/words.js");
                 return Object.fromEntries([0, 999, 5000, 59999, 60000, 65400, 600000, 3725000, -1]
                   .map((ms) => [ms, clock(ms)]));
               }"""
        )
        assert browser.errors == []
    assert said == {
        "0": "0:00",
        "999": "0:00",
        "5000": "0:05",
        "59999": "0:59",
        "60000": "1:00",
        "65400": "1:05",
        "600000": "10:00",
        "3725000": "62:05",
        "-1": "0:00",
    }


async def on_fitness_page(client: Client, script: str) -> Any:
    """What `script` returns on the fitness page once it is ready, the page logging no
    error."""
    async with open_page() as browser:
        page = browser.page
        await page.goto(str(client.make_url("/fitness")))
        await page.wait_for_selector("body[data-fitness-ready]", state="attached")
        answer = await page.evaluate(script)
        assert browser.errors == []
    return answer


@pytest.mark.browser
async def test_a_set_without_reps_leaves_its_figures_empty_in_the_csv(client: Client) -> None:
    text = await on_fitness_page(client, NO_REP_CSV_JS)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == CSV_HEADER
    none, two = (dict(zip(CSV_HEADER, row, strict=True)) for row in rows[1:])
    assert (none["reps"], none["target"], none["time_s"]) == ("0", "", "4.0")
    assert (two["reps"], two["target"]) == ("2", "10")
    # As the table's dash: no figure, not a zero one.
    assert (none["rep_s"], none["range_of_motion_deg"], none["quality"]) == ("", "", "")
    assert (two["rep_s"], two["range_of_motion_deg"], two["quality"]) == ("2.50", "80.0", "0.90")


# Each button, link and field that sticks out of its card, with the two edges.
OUT_OF_CARD_JS = """
() => [...document.querySelectorAll(".card")].flatMap((card) => {
  const box = card.getBoundingClientRect();
  return [...card.querySelectorAll("button, a, input, select")]
    .filter((e) => !e.closest(".table-scroll"))
    .map((e) => [e, e.getBoundingClientRect()])
    .filter(([, r]) => r.width && (r.left < box.left - 0.5 || r.right > box.right + 0.5))
    .map(([e, r]) => `${e.id || e.textContent}: ${r.left}-${r.right}, card ends at ${box.right}`);
})
"""


@pytest.mark.browser
async def test_on_a_phone_every_button_lies_inside_its_card(client: Client) -> None:
    async with open_page() as browser:
        page = browser.page
        await page.set_viewport_size({"width": 390, "height": 844})
        await page.goto(str(client.make_url("/fitness")))
        await page.wait_for_selector("body[data-fitness-ready]", state="attached")
        assert await page.is_visible("#log-clear")
        assert await page.evaluate(OUT_OF_CARD_JS) == []
        assert browser.errors == []


async def one_short_set(browser: BrowserPage, exercise: str) -> None:
    """Start, a few results, Stop, and the log has the set's workout."""
    page = browser.page
    await page.select_option("#fitness-exercise", exercise)
    rows = len(await log_rows(browser))
    await page.click("#fitness-start")
    await wait_for_results(browser, await results(browser) + 2)
    await page.click("#fitness-stop")
    await page.wait_for_selector("body[data-running=false]", state="attached")
    await page.wait_for_function(
        "n => document.querySelectorAll('#log-body tr').length === n", arg=rows + 1
    )


async def reload(browser: BrowserPage) -> None:
    await browser.page.reload()
    await browser.page.wait_for_selector("body[data-fitness-ready]", state="attached")


# made(): a WorkoutLog of the page's log.js over elements of its own.
LOG_MAKER = """  const { WorkoutLog } = await import("/static/fitness/log.js");
  const made = () => {
    const table = document.createElement("table");
    table.createTHead().insertRow().insertCell().textContent = "Set";
    const body = table.createTBody();
    const el = () => document.createElement("button");
    const parts = { empty: el(), download: el(), clear: el(), kept: el(), exercises: [] };
    return new WorkoutLog({ body, ...parts });
  };
"""

# A WorkoutLog of its own on the page, fed a running workout's messages: set 1 done, set 2
# under way, Clear, set 2 goes on; then the page reloaded (a log made from storage).
CLEARED_MID_WORKOUT_JS = (
    """async () => {
"""
    + LOG_MAKER
    + """  const set = (reps) => ({ exercise: "squat", reps });
  const sets = (log) => log.records().map((r) => [r.set, r.reps]);
  window.confirm = () => true;
  const log = made();
  log.update("L", "s1", { sets: [set(5)] });
  log.update("L", "s1", { sets: [set(5), set(1)] });
  log.clear();
  const cleared = sets(log);
  const early = made(); // reloaded before the workout's next message
  early.update("L", "s1", { sets: [set(5), set(2)] });
  log.update("L", "s1", { sets: [set(5), set(2)] });
  const after = sets(log);
  const reloaded = made();
  reloaded.update("L", "s1", { sets: [set(5), set(3)] });
  return { cleared, early: sets(early), after, reloaded: sets(reloaded) };
}"""
)


@pytest.mark.browser
async def test_a_clear_mid_workout_keeps_the_sets_before_it_cleared(client: Client) -> None:
    """Clear pressed mid-workout: the workout's next message (a rep) brought every set done
    before the Clear back into the log and its storage, within seconds."""
    async with open_page() as browser:
        page = browser.page
        await page.goto(str(client.make_url("/fitness")))
        await page.wait_for_selector("body[data-fitness-ready]", state="attached")
        seen = await page.evaluate(CLEARED_MID_WORKOUT_JS)
        assert seen == {
            "cleared": [],
            "early": [[2, 2]],
            "after": [[2, 2]],
            "reloaded": [[2, 3]],
        }
        assert browser.errors == []


# A WorkoutLog of its own on the page, fed the workout messages `messages` of one workout:
# its records' [set, reps].
LOGGED_JS = (
    """async (messages) => {
"""
    + LOG_MAKER
    + """  const log = made();
  for (const message of messages) log.update("L", "s1", message);
  return log.records().map((r) => [r.set, r.reps]);
}"""
)


@pytest.mark.browser
async def test_the_log_keeps_every_set_of_a_workout_longer_than_its_list(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server lists a workout's last 100 sets: past them the log lost its first sets
    (from its storage and its CSV too) and numbered the rest from 1. Here room for three,
    a new set after each real push-up, and the workout messages the page gets."""
    monkeypatch.setattr(workout_module, "MAX_SETS", 3)
    clip = cached(PUSHUPS, Track.POSE)
    workout = Workout(load_exercises(), "push_up")
    messages = []
    for ms, pose in clip.poses():
        if workout.update(pose, clip.image_size, ms)["reps"]:
            messages.append(workout.summary())  # the page asks after each rep
            workout.switch("push_up")
            messages.append(workout.summary())  # the answer to "New set"
    assert [s["reps"] for s in messages[-1]["sets"]] == [1, 1, 0]
    async with open_page() as browser:
        page = browser.page
        await page.goto(str(client.make_url("/fitness")))
        await page.wait_for_selector("body[data-fitness-ready]", state="attached")
        logged = await page.evaluate(LOGGED_JS, messages)
        assert logged == [[n, 1] for n in range(1, 7)] + [[7, 0]]
        assert browser.errors == []


# A WorkoutLog of its own on the page, fed a workout begun at 23:50 whose second set begins
# at 00:10, its messages at the times given; then one made from storage, as a reload's: the
# dates of their records and of the CSV's rows.
MIDNIGHT_JS = (
    """async () => {
"""
    + LOG_MAKER
    + """  const { toCsv } = await import("/static/fitness/log.js");
  const realNow = Date.now;
  const at = (day, hour, minute) => new Date(2026, 11, day, hour, minute).getTime();
  const set = (reps) => ({ exercise: "squat", reps, duration_ms: 1000 });
  const log = made();
  try {
    Date.now = () => at(2, 23, 50);
    log.update("L", "s1", { sets: [set(0)] });
    Date.now = () => at(2, 23, 55);
    log.update("L", "s1", { sets: [set(8)] });
    Date.now = () => at(3, 0, 10);
    log.update("L", "s1", { sets: [set(8), set(0)] });
    Date.now = () => at(3, 0, 12);
    log.update("L", "s1", { sets: [set(8), set(5)] });
  } finally {
    Date.now = realNow;
  }
  const dates = (records) => records.map((r) => r.date);
  const csv = toCsv(log.records()).split("\\r\\n").slice(1, -1).map((row) => row.split(",")[0]);
  return { dates: dates(log.records()), reloaded: dates(made().records()), csv };
}"""
)


@pytest.mark.browser
async def test_a_set_begun_after_midnight_is_dated_on_its_own_day(client: Client) -> None:
    """A workout begun at 23:50 with a set at 00:10: the log and its CSV dated that set
    with the workout's start, the day before."""
    seen = await on_fitness_page(client, MIDNIGHT_JS)
    dates = ["2026-12-02 23:50", "2026-12-03 00:10"]
    assert seen == {"dates": dates, "reloaded": dates, "csv": dates}


# A WorkoutLog of the tab's own, fed its running workout's messages (window.log); and one
# made to keep a workout as another tab's page does (window.keepOne).
TAB_LOG_JS = (
    """async () => {
"""
    + LOG_MAKER
    + """  window.log = made();
  window.keepOne = (link, sets) => made().update(link, link, { sets });
}"""
)


@pytest.mark.browser
async def test_the_log_follows_what_another_tab_keeps_and_clears(client: Client) -> None:
    """Two tabs of /fitness: the one open since before showed, and downloaded, the log
    without the other's workout; and a Clear in the other came undone at its next rep,
    every set before it back."""
    async with open_page() as browser:
        here = browser.page
        there = await here.context.new_page()
        for page in (here, there):
            await page.goto(str(client.make_url("/fitness")))
            await page.wait_for_selector("body[data-fitness-ready]", state="attached")
            await page.evaluate(TAB_LOG_JS)
        await there.evaluate("() => keepOne('B', [{ exercise: 'lunge', reps: 4 }])")
        await here.wait_for_function(
            "() => document.querySelectorAll('#log-body tr').length === 1", timeout=10_000
        )
        [row] = await log_rows(browser)
        assert row[1:4] == ["1", "Lunge", "4"], row
        async with here.expect_download() as info:
            await here.click("#log-download")
        text = Path(await (await info.value).path()).read_text(encoding="utf-8")
        assert [r["exercise"] for r in csv.DictReader(io.StringIO(text))] == ["lunge"]

        # Set 1 done here, set 2 under way; Clear pressed in the other tab.
        squat = "(reps) => ({ exercise: 'squat', reps })"
        sets = "() => log.records().filter((r) => r.session === 's1').map((r) => [r.set, r.reps])"
        await here.evaluate(f"() => log.update('A', 's1', {{ sets: [5, 1].map({squat}) }})")
        there.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await there.click("#log-clear")
        await here.wait_for_function("() => log.records().length === 0", timeout=10_000)
        assert await log_rows(browser) == []
        # The set under way is back at its next rep, under its own number; set 1 is not, nor
        # when the other tab keeps a workout again.
        await here.evaluate(f"() => log.update('A', 's1', {{ sets: [5, 2].map({squat}) }})")
        assert await here.evaluate(sets) == [[2, 2]]
        await there.evaluate("() => keepOne('C', [{ exercise: 'squat', reps: 1 }])")
        await here.wait_for_function(
            "() => document.querySelectorAll('#log-body tr').length === 2", timeout=10_000
        )
        assert await here.evaluate(sets) == [[2, 2]]
        assert browser.errors == []


@pytest.mark.browser
async def test_the_log_outlives_a_reload_until_it_is_cleared(
    client: Client, tmp_path: Path
) -> None:
    """Kept in the browser's storage, newest workout first; Clear asks, then empties it;
    what is stored but not the page's own (a hand edit, another version) is left out."""
    y4m = write_y4m(PUSHUPS, tmp_path / "pushups.y4m", frames=45)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await open_fitness(browser, client, "push_up")
        # The chosen exercise's camera placement shows before Start, and follows the choice.
        tip = await page.text_content("#fitness-camera")
        assert tip is not None
        assert tip.startswith("Camera: Side-on at floor level")
        await page.select_option("#fitness-exercise", "shoulder_press")
        assert (await page.text_content("#fitness-camera") or "").startswith("Camera: In front")
        await one_short_set(browser, "push_up")
        assert await page.get_attribute("#log-kept", "data-kept") == "true"
        await reload(browser)
        [row] = await log_rows(browser)
        assert row[1:3] == ["1", "Push-up"]
        await one_short_set(browser, "squat")
        await reload(browser)
        # The address keeps the exercise last chosen (without it, the list's first).
        assert await page.input_value("#fitness-exercise") == "squat"
        assert page.url.endswith("/fitness?exercise=squat")
        assert (await page.text_content("#fitness-camera") or "").startswith("Camera: Side-on,")
        assert [r[1:3] for r in await log_rows(browser)] == [["1", "Squat"], ["1", "Push-up"]]
        async with page.expect_download() as info:
            await page.click("#log-download")
        text = Path(await (await info.value).path()).read_text(encoding="utf-8")
        assert [r["exercise"] for r in csv.DictReader(io.StringIO(text))] == ["push_up", "squat"]

        asked: list[str] = []

        async def answer(dialog: Dialog) -> None:
            asked.append(dialog.message)
            await dialog.accept()

        page.once("dialog", answer)
        await page.click("#log-clear")
        await page.wait_for_function("() => !document.querySelector('#log-body tr')")
        [question] = asked
        assert "Download it first" in question
        await reload(browser)
        assert await log_rows(browser) == []
        assert await page.is_disabled("#log-clear")

        await page.evaluate(
            """() => localStorage.setItem('holotrack.workoutLog.v1',
                JSON.stringify([{id: 5, sets: 'many'}, 'x', null]))"""
        )
        await reload(browser)
        assert await log_rows(browser) == []
        await page.evaluate("() => localStorage.setItem('holotrack.workoutLog.v1', '{not json')")
        await reload(browser)
        assert await log_rows(browser) == []
        assert browser.errors == []


# A set as the page stores it, from the server's workout.
GOOD_SET = {"exercise": "squat", "reps": 3, "sides": {"left": 1, "right": 2}, "partial_reps": 0}


@pytest.mark.browser
async def test_a_stored_workout_with_counts_no_set_has_is_left_out(client: Client) -> None:
    """Stored workouts the page never wrote, whose fields passed its check, showed as
    "NaN-NaN-NaN NaN:NaN", "-4 (left [object Object])" and "1e+21" in the log and its CSV."""
    good = {"id": "ok", "session": "s1", "began": 1765000000000, "sets": [GOOD_SET]}
    odd = [
        {**good, "id": "far", "began": 1e300},
        {**good, "id": "text", "began": "2026-12-06"},
        {**good, "id": "minus", "sets": [{**GOOD_SET, "reps": -4}]},
        {**good, "id": "huge", "sets": [{**GOOD_SET, "reps": 1e21}]},
        {**good, "id": "sides", "sets": [{**GOOD_SET, "sides": {"left": {"a": 1}}}]},
        {**good, "id": "letters", "sets": [{**GOOD_SET, "sides": "ab"}]},
        {**good, "id": "partial", "sets": [{**GOOD_SET, "partial_reps": "x"}]},
    ]
    async with open_page() as browser:
        page = browser.page
        await page.goto(str(client.make_url("/fitness")))
        await page.evaluate(
            "(log) => localStorage.setItem('holotrack.workoutLog.v1', JSON.stringify(log))",
            [good, *odd],
        )
        await reload(browser)
        [row] = await log_rows(browser)
        assert row[1:4] == ["1", "Squat", "3 (left 1 · right 2)"], row
        assert browser.errors == []


def seconds(clock: str) -> int:
    """The page's "m:ss" in seconds."""
    minutes, secs = clock.split(":")
    return int(minutes) * 60 + int(secs)


async def wait_for_reps(page: Page, reps: int) -> None:
    """The counter shows `reps`, with its word: "1 rep", "2 reps"."""
    await page.wait_for_function(
        """(n) => document.getElementById('fitness-reps').textContent === String(n)
              && document.getElementById('fitness-rep-unit').textContent
                 === (n === 1 ? 'rep' : 'reps')""",
        arg=reps,
        timeout=PUSHUPS_TIMEOUT_MS,
    )


@pytest.mark.browser
async def test_an_exercise_chosen_before_the_server_accepts_the_session_is_counted(
    client: Client, tmp_path: Path
) -> None:
    """Squats chosen between Start's hello (push-ups) and its ready, a round trip on a
    phone's data: the page said it counted squats while the server counted push-ups for the
    rest of the session. Once accepted, the page asks for the set it shows."""
    y4m = write_y4m(PUSHUPS, tmp_path / "pushups.y4m", frames=30)
    hello_sent, let_ready = asyncio.Event(), asyncio.Event()
    sent: list[dict[str, Any]] = []
    workouts: list[dict[str, Any]] = []
    held: list[asyncio.Task[None]] = []

    async def hold_ready(socket: WebSocketRoute) -> None:
        server = socket.connect_to_server()

        def from_page(message: str | bytes) -> None:
            if isinstance(message, str):
                sent.append(json.loads(message))
                hello_sent.set()
            server.send(message)

        async def ready_later(message: str) -> None:
            await let_ready.wait()
            socket.send(message)

        def from_server(message: str | bytes) -> None:
            if isinstance(message, str) and json.loads(message)["type"] == "ready":
                held.append(asyncio.create_task(ready_later(message)))
                return
            if isinstance(message, str) and json.loads(message)["type"] == "workout":
                workouts.append(json.loads(message))
            socket.send(message)

        socket.on_message(from_page)
        server.on_message(from_server)

    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await page.route_web_socket(re.compile(r"/ws(\?|$)"), hold_ready)
        await open_fitness(browser, client, "push_up")
        await page.click("#fitness-start")
        await hello_sent.wait()
        assert sent[0]["exercise"] == "push_up"
        await page.select_option("#fitness-exercise", "squat")
        let_ready.set()
        await wait_for_results(browser, 1)
        assert {"type": "exercise", "name": "squat", "target": None} in sent[1:], sent
        await until(lambda: workouts != [], "the server's workout for the new set")
        assert workouts[-1]["sets"][-1]["exercise"] == "squat"
        assert await page.inner_text("#fitness-set-title") == "Squat"
        assert browser.errors == []


class HeldReplies:
    """The server's messages to the page's /ws, passed on at once until `holding`, then
    held back until release(); `marked` is set once a held one meets `mark` (its JSON)."""

    def __init__(self, mark: Callable[[dict[str, Any]], bool]) -> None:
        self.mark = mark
        self.holding = False
        self.held: list[str | bytes] = []
        self.pages: list[WebSocketRoute] = []
        self.marked = asyncio.Event()

    async def route(self, socket: WebSocketRoute) -> None:
        server = socket.connect_to_server()
        self.pages.append(socket)

        def from_server(message: str | bytes) -> None:
            if not self.holding:
                socket.send(message)
                return
            self.held.append(message)
            if self.mark(json.loads(message) if isinstance(message, str) else {}):
                self.marked.set()

        server.on_message(from_server)

    def results(self) -> int:
        return sum('"result"' in str(message) for message in self.held)

    def release(self) -> None:
        for message in self.held:
            self.pages[-1].send(message)
        self.holding = False


@pytest.mark.browser
async def test_results_of_the_last_set_on_their_way_leave_the_new_one_alone(
    client: Client, tmp_path: Path
) -> None:
    """Squats chosen while push-up results were still on their way (a phone's data): they
    came after the page had begun the squat set, put "Push-up" and its count back for a
    moment, and left elbow and body line rows in the squat's angles to the set's end."""
    y4m = write_y4m(PUSHUPS, tmp_path / "pushups.y4m", frames=30)
    # The server's workout with the squat set is held too.
    replies = HeldReplies(
        lambda said: said.get("type") == "workout" and said["sets"][-1]["exercise"] == "squat"
    )

    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await page.route_web_socket(re.compile(r"/ws(\?|$)"), replies.route)
        await open_fitness(browser, client, "push_up")
        await page.click("#fitness-start")
        await page.wait_for_selector('#fitness-angles [data-measure="left_elbow"]')
        replies.holding = True
        await until(lambda: replies.results() > 0, "a push-up result held")
        await page.select_option("#fitness-exercise", "squat")
        async with asyncio.timeout(30):
            await replies.marked.wait()
        replies.release()
        await wait_for_results(browser, await results(browser) + 3)
        rows = await page.eval_on_selector_all(
            "#fitness-angles > div", "rows => rows.map((r) => r.dataset.measure)"
        )
        squat = await exercise_joints(client, "squat")
        assert set(rows) <= set(squat), rows
        assert await page.inner_text("#fitness-set-title") == "Squat"
        assert browser.errors == []


# Each count the readout shows from now on, with how many results the page had then.
SHOWN_COUNTS_JS = """() => {
  window.shownCounts = [];
  const reps = document.getElementById("fitness-reps");
  const stage = document.getElementById("fitness-stage");
  new MutationObserver(() => {
    window.shownCounts.push([reps.textContent, Number(stage.dataset.results)]);
  }).observe(reps, { childList: true, characterData: true, subtree: true });
}"""


@pytest.mark.browser
async def test_results_of_the_last_set_leave_a_new_set_of_the_same_exercise_at_0(
    client: Client, tmp_path: Path
) -> None:
    """ "New set" of push-ups after a push-up, while results were on their way: those of
    the last set carry the same exercise, so the page showed their count (1) again over
    the new set's 0 for a moment."""
    y4m = write_y4m(PUSHUPS, tmp_path / "one_rep.y4m", frames=141, start=144)
    # The server's workout with the new set is held too.
    replies = HeldReplies(lambda said: said.get("type") == "workout" and len(said["sets"]) == 2)

    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await page.route_web_socket(re.compile(r"/ws(\?|$)"), replies.route)
        await open_fitness(browser, client, "push_up")
        await page.click("#fitness-start")
        await wait_for_reps(page, 1)
        replies.holding = True
        await until(lambda: replies.results() > 0, "a push-up result held")
        await page.click("#fitness-new-set")
        assert await page.text_content("#fitness-reps") == "0"
        async with asyncio.timeout(30):
            await replies.marked.wait()
        await page.evaluate(SHOWN_COUNTS_JS)
        before = await results(browser)
        held_results = replies.results()
        replies.release()
        await wait_for_results(browser, before + held_results)
        shown = await page.evaluate("window.shownCounts")
        assert [text for text, at in shown if at <= before + held_results] in ([], ["0"]), shown
        assert browser.errors == []


@contextlib.asynccontextmanager
async def first_rep_of_a_loop(client: Client, tmp_path: Path) -> AsyncIterator[BrowserPage]:
    """The fitness page counting push-ups from a camera that plays 4.8-9.5 s of the video in
    a loop (up, one rep, up again), once it has counted the first rep."""
    async with started_on(client, tmp_path, "push_up", frames=141, start=144) as browser:
        await wait_for_reps(browser.page, 1)
        yield browser


@pytest.mark.browser
async def test_without_the_bone_tables_the_count_goes_on(client: Client, tmp_path: Path) -> None:
    y4m = write_y4m(PUSHUPS, tmp_path / "one_rep.y4m", frames=141, start=144)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await open_fitness(browser, client, "push_up")
        await page.route("**/api/skeleton", lambda route: route.fulfill(status=503, body="{}"))
        await page.click("#fitness-start")
        await wait_for_reps(page, 1)
        notice = await page.inner_text("#fitness-notice")
        assert "GET /api/skeleton answered 503" in notice
        assert "Counting goes on without the skeleton." in notice
        colors = await browser.colors()
        drawn = await browser.count_colors("#fitness-overlay", {"pose": colors["pose"]})
        assert drawn == {"pose": 0}


@pytest.mark.browser
async def test_a_form_cue_lights_up_the_limbs_it_is_about(client: Client, tmp_path: Path) -> None:
    """The end of the push-up video, from 45 s: a last rep, then he bends at the hips to
    stand up while still at the top (body line 131-142 degrees). The straight-line cue shows
    and, on the same result, his shoulder-hip-ankle lines are drawn in the cue's colour."""
    start = 45 * 30
    y4m = write_y4m(PUSHUPS, tmp_path / "getting_up.y4m", frames=PUSHUP_FRAMES - start, start=start)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await open_fitness(browser, client, "push_up")
        cue = (await mark_colors(page))["CUE_COLOR"]
        await page.click("#fitness-start")
        await page.wait_for_function(
            f"""([cue]) => {{
                  const count = ({COUNT_COLORS_JS});
                  const shown = document.querySelector('#fitness-cues li[data-code=body_line]');
                  const canvas = document.getElementById('fitness-overlay');
                  return shown !== null && count([canvas, {{cue}}, 12]).cue > 100;
                }}""",
            arg=[cue],
            timeout=PUSHUPS_TIMEOUT_MS,
        )
        assert browser.errors == []


# One curl result's cue drawn over a real pose, its side named or not: whether the pixel
# at each elbow (left, right) is in the cue's colour, and how many pixels are.
CUE_SIDES_JS = """async ([pose, size, sides]) => {
  const { markExercise, CUE_COLOR } = await import("/static/fitness/marks.js");
  const { exercises } = await (await fetch("/api/exercises")).json();
  const rgb = [1, 3, 5].map((i) => parseInt(CUE_COLOR.slice(i, i + 2), 16));
  const out = [];
  for (const side of sides) {
    const canvas = document.createElement("canvas");
    [canvas.width, canvas.height] = size;
    const cue = { code: "elbow_drift", message: "Keep your elbow at your side", side };
    markExercise(canvas, { pose }, { exercise: "bicep_curl", cues: [cue], angles: {} }, exercises);
    const ctx = canvas.getContext("2d");
    const lit = ([x, y]) => {
      const { data } = ctx.getImageData(Math.round(x * size[0]), Math.round(y * size[1]), 1, 1);
      return rgb.every((c, i) => Math.abs(data[i] - c) <= 12);
    };
    out.push([lit(pose[13]), lit(pose[14]), (COUNT)([canvas, { cue: CUE_COLOR }, 12]).cue]);
  }
  return out;
}"""


@pytest.mark.browser
async def test_a_cue_that_names_an_arm_lights_that_arm_alone(client: Client) -> None:
    """A curl's elbow cue comes from one arm's counter and names it: the page draws that
    arm's hip-shoulder-elbow line, not both (which it still does for a cue with no side).
    The squat clip from behind, frame 174: arms out to the bar, each elbow well away from
    the other side's line."""
    clip = cached(SQUATS, Track.POSE)
    pose = clip.pose[174].tolist()
    script = CUE_SIDES_JS.replace("(COUNT)", f"({COUNT_COLORS_JS})")
    async with open_page() as browser:
        await browser.page.goto(str(client.make_url("/fitness")))
        left, right, both = await browser.page.evaluate(
            script, [pose, list(clip.image_size), ["left", "right", None]]
        )
        assert browser.errors == []
    assert left[:2] == [True, False], left
    assert right[:2] == [False, True], right
    assert both[:2] == [True, True], both
    assert both[2] > max(left[2], right[2]) > 0


@pytest.mark.browser
async def test_a_reconnect_keeps_the_count_and_the_log_row(client: Client, tmp_path: Path) -> None:
    """The server cuts the page's session after the first rep; the page reconnects by
    itself, and its workout goes on: the next rep is the second, in the same row of the log."""
    async with first_rep_of_a_loop(client, tmp_path) as browser:
        page = browser.page
        session = await page.get_attribute("body", "data-session")
        await cut_camera_session(page, client.app)
        await wait_for_reps(page, 2)
        assert await page.is_hidden("#fitness-notice")  # nothing was lost to say so
        await page.click("#fitness-stop")
        await page.wait_for_selector("body[data-running=false]", state="attached")
        rows = await log_rows(browser)
        async with page.expect_download() as info:
            await page.click("#log-download")
        text = Path(await (await info.value).path()).read_text(encoding="utf-8")
        assert browser.errors == []
    assert [row[1:3] for row in rows] == [["1", "Push-up"]]
    assert int(rows[0][3]) >= 2
    [record] = list(csv.DictReader(io.StringIO(text)))
    assert record["session"] == session


async def timer_seconds(page: Page) -> int:
    minutes, seconds = (await page.text_content("#fitness-timer") or "").split(":")
    return int(minutes) * 60 + int(seconds)


@pytest.mark.browser
async def test_a_new_session_after_a_long_pause_starts_the_set_timer_again(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """The page frozen longer than the server keeps a paused session: it goes on in a new
    one, whose workout starts at 0 in a new row of the log, and so does the set's timer
    (it ran on from the old set's time, ahead of the log's)."""
    client = await make_client(Config(workers=1, watch_grace=1.0))
    async with first_rep_of_a_loop(client, tmp_path) as browser:
        page = browser.page
        await page.wait_for_function(
            "() => document.getElementById('fitness-timer').textContent >= '0:03'"
        )
        before = await timer_seconds(page)
        old_session = await page.get_attribute("body", "data-session")
        await page.evaluate("document.dispatchEvent(new Event('freeze'))")
        await page.wait_for_selector("body[data-paused=frozen]", state="attached")
        live = client.app[LIVE]
        await until(lambda: len(live.tokens) == 0, "the paused session's link let go")
        await page.evaluate("document.dispatchEvent(new Event('resume'))")
        await page.wait_for_function(
            "() => document.getElementById('fitness-notice').textContent.includes('new one')"
        )
        # The notice comes with the resume, the new session's ready (and its reset) after it.
        await page.wait_for_function(
            "old => (document.body.dataset.session ?? old) !== old", arg=old_session
        )
        after = await timer_seconds(page)
        await wait_for_reps(page, 0)
        await page.wait_for_function("() => document.querySelectorAll('#log-body tr').length > 1")
        assert browser.errors == []
    assert before >= 3
    assert after <= 1, (before, after)


@pytest.mark.browser
async def test_a_reload_mid_set_keeps_the_count_the_coach_link_and_the_log_row(
    client: Client, tmp_path: Path
) -> None:
    """Reloaded mid-workout, the page pauses its session (close 4002) and its next Start
    resumes it: the next rep is the second, the coach's link is the same, one row, and the
    set's timer goes on from the set's time (it began again at 0:00, behind the log's time
    of the same set). Stop, by contrast, ends the workout and its link."""
    async with first_rep_of_a_loop(client, tmp_path) as browser:
        page = browser.page
        token = await page.get_attribute("#coach-link", "data-token")
        sockets = record_socket_urls(page)
        await reload(browser)
        assert await page.input_value("#fitness-exercise") == "push_up"
        await page.click("#fitness-start")
        await wait_for_reps(page, 2)
        assert await page.get_attribute("#coach-link", "data-token") == token
        await page.wait_for_function(
            "() => document.querySelector('#log-body td:nth-child(4)')?.textContent === '2'"
        )
        timer, logged = await page.evaluate(
            """() => [document.getElementById('fitness-timer').textContent,
                      document.querySelector('#log-body td:nth-child(5)').textContent]"""
        )
        assert seconds(timer) >= seconds(logged) - 1 >= 2, (timer, logged)
        await page.click("#fitness-stop")
        await page.wait_for_selector("body[data-running=false]", state="attached")
        rows = await log_rows(browser)
        await page.click("#fitness-start")
        await wait_for_results(browser, 0)
        new_token = await page.get_attribute("#coach-link", "data-token")
        assert new_token != token
        # Each Start named its link before the server said it (the workout's key, kept
        # through the reload): a balancer sends it where the coach's card looks.
        ws = "ws" + str(client.make_url("/ws")).removeprefix("http")
        assert sockets == [f"{ws}?link={token}", f"{ws}?link={new_token}"]
        assert browser.errors == []
    assert [row[1:3] for row in rows] == [["1", "Push-up"]]
    assert int(rows[0][3]) >= 2


FIRST_VISIT = "Choose an exercise, stand where the camera sees the whole movement"


@pytest.mark.browser
async def test_a_reload_mid_set_says_start_goes_on_with_the_set(
    client: Client, tmp_path: Path
) -> None:
    """Reloaded mid-set, the page showed 0 reps and the first visit's "Choose an
    exercise… and press Start", though Start goes on with the set: it says the set is
    kept, for how long, and once the server has let it go, that Start begins a new one."""
    y4m = write_y4m(PUSHUPS, tmp_path / "pushups.y4m", frames=45)
    async with open_page(fake_camera_args(y4m)) as browser:
        page = browser.page
        await open_fitness(browser, client, "push_up")
        assert FIRST_VISIT in await page.inner_text("#fitness-status")
        await page.click("#fitness-start")
        await wait_for_results(browser, 2)
        token = await page.get_attribute("#coach-link", "data-token")
        await reload(browser)
        said = await page.inner_text("#fitness-status")
        kept = re.fullmatch(
            r"Your set from before the reload is kept for (1 min|\d+ s): press Start to go on"
            r" with it, with its count and your coach's link\.",
            said,
        )
        assert kept, said
        # The server's 60 s grace.
        assert kept[1] == "1 min" or 50 <= int(kept[1].removesuffix(" s")) <= 60, said
        await page.click("#fitness-start")
        await wait_for_results(browser, 0)
        assert await page.get_attribute("#coach-link", "data-token") == token
        assert await page.inner_text("#fitness-status") == "Counting push-ups."
        await page.click("#fitness-stop")
        await page.wait_for_selector("body[data-running=false]", state="attached")
        # Stopped, nothing is kept: the first visit's words.
        await reload(browser)
        assert FIRST_VISIT in await page.inner_text("#fitness-status")
        # A set kept 3 s more, as a reload near the end of the grace leaves it.
        await page.evaluate(
            """() => sessionStorage.setItem('holotrack.keptLink:/fitness',
                 JSON.stringify({ resume: 'r', key: null, until: Date.now() + 3000 }))"""
        )
        await reload(browser)
        said = await page.inner_text("#fitness-status")
        assert re.search(r"is kept for [1-3] s:", said), said
        await page.wait_for_function(
            "() => document.getElementById('fitness-status').textContent.includes('ended')"
        )
        assert await page.inner_text("#fitness-status") == (
            "Your set from before the reload has ended, not resumed in time:"
            " press Start to begin a new one."
        )
        # Kept near an hour (a --watch-grace of 3600): said "3542 s", a figure to work out.
        await page.evaluate(
            """() => sessionStorage.setItem('holotrack.keptLink:/fitness',
                 JSON.stringify({ resume: 'r', key: null, until: Date.now() + 3542500 }))"""
        )
        await reload(browser)
        said = await page.inner_text("#fitness-status")
        assert re.search(r"is kept for 59 min \d+ s:", said), said
        assert browser.errors == []


@pytest.mark.browser
async def test_a_reload_then_another_exercise_says_start_begins_a_new_set(
    client: Client,
) -> None:
    """Reloaded mid-set, the page promised Start would go on "with its count" even after
    another exercise was picked, though Start then begins a new set of it from 0."""
    async with open_page() as browser:
        page = browser.page
        await open_fitness(browser, client, "push_up")
        await page.evaluate(
            """() => sessionStorage.setItem('holotrack.keptLink:/fitness',
                 JSON.stringify({ resume: 'r', key: null, until: Date.now() + 50000 }))"""
        )
        await reload(browser)
        said = []
        for exercise in ("squat", "push_up"):
            await page.select_option("#fitness-exercise", exercise)
            said.append(re.sub(r"\d+ s:", "N s:", await page.inner_text("#fitness-status")))
        assert said == [
            "Your workout from before the reload is kept for N s: press Start to go on with it"
            " and your coach's link, with a new set of squats from 0 (your push-ups keep"
            " their count in the workout).",
            "Your set from before the reload is kept for N s: press Start to go on with it,"
            " with its count and your coach's link.",
        ]
        assert browser.errors == []


# -- the coach's view -----------------------------------------------------------------------


async def card_state(browser: BrowserPage, token: str, state: str) -> None:
    await browser.page.wait_for_selector(
        f'.coach-card[data-token="{token}"][data-state="{state}"]', state="attached"
    )


async def a_coach_watching(client: Client, browser: BrowserPage) -> tuple[LiveClient, str]:
    """A person's push-up session, pose-only, and the coach's view of it open on `browser`
    and watching; the person's client and the watch token."""
    person = await LiveClient.connect(client)
    token = (await person.hello(track="pose", exercise="push_up"))["watch"]
    await browser.page.goto(str(client.make_url(f"/coach?watch={token}")))
    await card_state(browser, token, "watching")
    return person, token


async def card_text(browser: BrowserPage, token: str) -> str:
    text = await browser.page.text_content(f'.coach-card[data-token="{token}"]')
    assert text is not None
    return " ".join(text.split())


async def feed(
    person: LiveClient, frames: tuple[bytes, ...], fed: asyncio.Event, first: int = 0
) -> None:
    """Frames in lockstep (numbered from `first`), then reads on (a browser would: pings
    are answered on reads) until the session closes."""
    try:
        await person.lockstep(frames, first=first)
    finally:
        fed.set()
    while not person.ws.closed:
        message = await person.ws.receive()
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            break


@pytest.mark.browser
async def test_a_coach_card_says_when_its_results_stop(make_client: MakeClient) -> None:
    client = await make_client(Config(workers=1, no_cache=True, idle_timeout=300))
    person = await LiveClient.connect(client)
    token = (await person.hello(track="pose", exercise="push_up"))["watch"]
    async with open_page() as browser:
        page = browser.page
        # The quiet seconds pass on the page's clock, not the test's.
        await page.clock.install()
        sockets = record_socket_urls(page)
        await page.goto(str(client.make_url(f"/coach?watch={token}")))
        await card_state(browser, token, "watching")
        watcher = "ws" + str(client.make_url(f"/ws?link={token}&watcher=1")).removeprefix("http")
        assert sockets == [watcher]
        frames = video_frames(PUSHUPS, 4)
        await person.lockstep(frames[:3])
        await page.wait_for_function(
            "(token) => document.querySelector(`.coach-card[data-token='${token}']`)"
            ".textContent.includes('Live.')",
            arg=token,
        )
        await page.clock.run_for(7000)
        text = await card_text(browser, token)
        assert "No news for" in text, text
        assert "Live." not in text
        await person.send(3, 3000, frames[3])
        await person.next_of("result")
        await page.wait_for_function(
            "(token) => document.querySelector(`.coach-card[data-token='${token}']`)"
            ".textContent.includes('Live.')",
            arg=token,
        )
        assert browser.errors == []
    await person.ws.close()


@pytest.mark.browser
async def test_a_card_opened_while_its_person_is_paused_shows_their_set(
    make_client: MakeClient,
) -> None:
    """A coach reloading the view while the person's page was paused (reloaded, a locked
    phone) saw no exercise and "0 reps" under "Live: waiting for the next frame…" for the
    whole pause, though the workout it was sent said otherwise."""
    client = await make_client(Config(workers=1, no_cache=True, idle_timeout=300))
    person = await LiveClient.connect(client)
    token = (await person.hello(track="pose", exercise="push_up", target=5))["watch"]
    await person.ws.send_json({"type": "summary"})
    assert (await person.next_of("workout"))["sets"][-1]["target"] == 5
    async with open_page() as browser:
        page = browser.page
        await page.clock.install()
        await page.goto(str(client.make_url(f"/coach?watch={token}")))
        await card_state(browser, token, "watching")
        card = f'.coach-card[data-token="{token}"]'
        # The sets line shows once the workout has come: the count is drawn from it too.
        await page.wait_for_selector(f"{card} [data-field=sets]:not([hidden])")
        assert await page.text_content(f"{card} [data-field=exercise]") == "Push-up"
        assert await page.text_content(f"{card} [data-field=reps]") == "0 of 5"
        await page.clock.run_for(7000)
        text = await card_text(browser, token)
        assert "No news for" in text, text
        assert browser.errors == []
    await person.ws.close()


CARD_LAYOUT_JS = """(token) => {
  const card = document.querySelector(`.coach-card[data-token='${token}']`);
  const reps = card.querySelector('.card-reps').getBoundingClientRect();
  const figure = card.querySelector('canvas.card-figure');
  const box = figure.getBoundingClientRect();
  return {
    reps: parseFloat(getComputedStyle(card.querySelector('.card-reps')).fontSize),
    besideReps: box.left >= reps.right,
    drawn: [figure.width, figure.height],
    shown: Math.round(figure.clientWidth * devicePixelRatio),
    bottom: box.bottom,
    aboveForm: card.getBoundingClientRect().bottom <= document.querySelector('#coach-form')
      .getBoundingClientRect().top,
  };
}"""


@pytest.mark.browser
async def test_a_card_alone_on_a_phone_on_its_side_has_its_figure_beside_the_count(
    client: Client,
) -> None:
    """A phone 360 px high on its side (many Androids) put a lone card's figure under its
    count, never on the screen with it; one 390 px high (844 wide) had it beside."""
    async with open_phone((740, 360)) as browser:
        person, token = await a_coach_watching(client, browser)
        await person.lockstep(video_frames(PUSHUPS, 1))
        # The person's answer can come before the coach's copy: the figure shows with it.
        await browser.page.wait_for_selector(
            f'.coach-card[data-token="{token}"] canvas.card-figure', state="visible"
        )
        layout = await browser.page.evaluate(CARD_LAYOUT_JS, token)
        assert layout["besideReps"], layout
        assert browser.errors == []
    await person.ws.close()


async def kept_link_session(port: int, link_key: str, frame: bytes) -> str:
    """A push-up session on its kept link, as the fitness page opens one, with one frame
    answered; its watch token. The socket is left to the server's end."""
    http = aiohttp.ClientSession()
    try:
        ws = await http.ws_connect(f"http://127.0.0.1:{port}/ws")
        hello = {"type": "hello", "version": 1, "track": "pose", "exercise": "push_up"}
        await ws.send_json({**hello, "link_key": link_key})
        ready = await ws.receive_json()
        await ws.send_bytes(frame_message(0, 0.0, frame))
        while (await ws.receive_json())["type"] != "result":
            pass
        token: str = ready["watch"]
        return token
    finally:
        # Closing the client session leaves the server a lost connection, as a page that
        # was killed with its server would.
        await http.close()


# What a card does after each close: [state, tries again, words].
CARD_CLOSES_JS = """async () => {
  const { afterClose } = await import("/static/fitness/watcher.js");
  const seen = (code, wasWatching, attempt, awaiting) => {
    const next = afterClose({ code, reason: "", wasWatching, attempt, awaiting });
    return [next.state, next.delay !== null, next.text];
  };
  return [
    seen(4003, false, 0, null),
    seen(4003, false, 3, "server"),
    seen(4003, false, 16, "server"),
    seen(1000, true, 0, null),
  ];
}"""


@pytest.mark.browser
async def test_a_card_waits_for_whom_the_close_reason_says_may_come_back(client: Client) -> None:
    """A session let go of early, as too many from one address waited (a gym's Wi-Fi down),
    comes back on its link as one whose grace ran out does: its card waited for neither."""
    ended = "the watched session ended: "
    reasons = {
        "its camera was not back within 60 s (the connection was lost)": "person",
        "its camera was not back before too many others waited (heartbeat: no PONG)": "person",
        "its camera was not back within 60 s (its camera paused)": None,
        "its camera was not back before too many others waited (its camera paused)": None,
        "the client closed the session": None,
    }
    async with open_page() as browser:
        await browser.page.goto(str(client.make_url("/coach")))
        seen = await browser.page.evaluate(
            """async (reasons) => {
              const { awaitedAfter } = await import("/static/fitness/watcher.js");
              return reasons.map((reason) => awaitedAfter({ code: 1000, reason }));
            }""",
            [ended + reason for reason in reasons],
        )
        assert dict(zip(reasons, seen, strict=True)) == reasons
        assert (
            await browser.page.evaluate(
                """async () => (await import("/static/fitness/watcher.js"))
                .awaitedAfter({ code: 1001, reason: "" })"""
            )
            == "server"
        )


@pytest.mark.browser
async def test_a_card_waiting_for_a_restart_gives_up_after_two_minutes(client: Client) -> None:
    async with open_page() as browser:
        await browser.page.goto(str(client.make_url("/coach")))
        unknown, waiting, over, ended = await browser.page.evaluate(CARD_CLOSES_JS)
    assert unknown[:2] == ["invalid", False]
    assert waiting[:2] == ["lost", True]
    assert "waiting for this session to come back" in waiting[2]
    assert over[:2] == ["lost", False]
    assert "did not come back within two minutes" in over[2]
    assert "waiting" not in over[2]
    assert ended[:2] == ["ended", False]


@pytest.mark.browser
@pytest.mark.parametrize(("how", "then"), [("lost", "lost"), ("paused", "ended")])
async def test_a_card_waits_for_a_person_whose_network_was_gone_past_the_grace(
    make_client: MakeClient, how: str, then: str
) -> None:
    """A person's network gone longer than --watch-grace: the server let go of the session
    and the card said "This session has ended." for good, though their page, back online,
    opened the same link (the workout's key) and counted on, found only by a coach's
    reload. The card waits for it. Not after a pause that long, which opens a new link."""
    client = await make_client(Config(workers=1, watch_grace=0.5))
    link_key = "coach-away-" + "k" * 30
    person = await LiveClient.connect(client)
    ready = await person.hello(track="pose", exercise="push_up", link_key=link_key)
    token = ready["watch"]
    async with open_page() as browser:
        await browser.page.goto(str(client.make_url(f"/coach?watch={token}")))
        await card_state(browser, token, "watching")
        if how == "lost":
            lose_connection(person)
        else:
            await person.ws.close(code=4002, message=b"paused")
        await card_state(browser, token, then)
        if then == "ended":
            assert "This session has ended." in await card_text(browser, token)
            return
        said = await card_text(browser, token)
        assert "Their connection was lost for longer than the server keeps a session" in said
        back = await LiveClient.connect(client)
        again = await back.hello(track="pose", exercise="push_up", link_key=link_key)
        assert (again["watch"], again["resumed"]) == (token, False)
        await card_state(browser, token, "watching")
        assert browser.errors == []
    await back.ws.close()


@pytest.mark.browser
async def test_a_coach_card_waits_through_a_server_restart() -> None:
    """A restart is not the end of a workout: the person's page comes back on its kept link
    by itself, so the card, told 1001, keeps asking until the link is back, instead of
    saying the session ended (which a 1000 means)."""
    port = free_port()
    link_key = "coach-restart-" + "k" * 30
    frame = video_frames(PUSHUPS, count=1, width=320)[0]
    async with open_page() as browser:
        async with serving(port, "--min-session-fps", "0") as server:
            token = await kept_link_session(port, link_key, frame)
            await browser.page.goto(f"http://127.0.0.1:{port}/coach?watch={token}")
            await card_state(browser, token, "watching")
            server.proc.send_signal(signal.SIGTERM)
            await card_state(browser, token, "lost")
            assert "or it restarted" in await card_text(browser, token)
        async with serving(port, "--min-session-fps", "0"):
            # Until the person is back, the link is unknown (4003): the card waits on.
            assert await kept_link_session(port, link_key, frame) == token
            await card_state(browser, token, "watching")
            assert "Live" in await card_text(browser, token)
    # While the server was down, Chromium logged each refused connection.
    assert all("WebSocket connection" in error for error in browser.errors), browser.errors


@pytest.mark.browser
async def test_a_card_alone_fills_a_big_screen(make_client: MakeClient) -> None:
    """A phone on the floor as the camera, the count on a laptop or TV across the room:
    the coach's view with one card shows the reps large and the figure beside them, drawn
    at the size it shows; with a second card both are cards in the grid again, sharing
    the width."""
    client = await make_client(Config(workers=1, no_cache=True, idle_timeout=300))
    async with open_page() as browser:
        page = browser.page
        person, token = await a_coach_watching(client, browser)
        # One result, drawn before its figure is laid out: no other comes to draw it larger.
        await person.lockstep(video_frames(PUSHUPS, 1))
        await page.wait_for_function(
            "(token) => document.querySelector(`.coach-card[data-token='${token}'] "
            "canvas.card-figure`).width > 240",
            arg=token,
        )
        alone = await page.evaluate(CARD_LAYOUT_JS, token)
        assert alone["reps"] >= 4 * 16, alone
        assert alone["besideReps"], alone
        width, height = alone["drawn"]
        assert width == alone["shown"], alone
        assert abs(height / width - 240 / 320) < 0.01, alone  # the footage's 4:3
        assert alone["bottom"] <= 900, alone  # within the screen
        assert alone["aboveForm"], alone  # what the screen shows first

        await page.fill("#coach-links", NO_SESSION)
        await page.click("#coach-add")
        await card_state(browser, NO_SESSION, "invalid")
        together = await page.evaluate(CARD_LAYOUT_JS, token)
        # Two share the width, and their counts are smaller than one alone's, larger
        # than in a grid of many (3rem).
        assert 3 * 16 < together["reps"] < alone["reps"], together
        assert not together["besideReps"], together
        assert not together["aboveForm"], together
        assert browser.errors == []
    await person.ws.close()


# How a card's count lies: its text, its lines, and whether it and its "reps" fit on one
# line within the card's first column (a lone card's, beside the figure) or the card.
COUNT_LINE_JS = """(token) => {
  const card = document.querySelector(`.coach-card[data-token='${token}']`);
  const line = card.querySelector('.card-reps');
  const count = line.querySelector('[data-field=reps]');
  const unit = line.querySelector('.rep-unit').getBoundingClientRect();
  const style = getComputedStyle(line);
  // The exercise's line spans the column the count is in.
  const column = card.querySelector('[data-field=exercise]').parentElement.getBoundingClientRect();
  const box = line.getBoundingClientRect();
  const font = parseFloat(style.fontSize);
  return {
    text: `${count.textContent} ${line.querySelector('.rep-unit').textContent}`,
    countLines: count.getClientRects().length,
    lines: Math.round(box.height / parseFloat(style.lineHeight)),
    sameLine: Math.abs(unit.bottom - count.getBoundingClientRect().bottom) < font / 2,
    fits: unit.right <= column.right + 0.5 && line.scrollWidth <= line.clientWidth + 0.5,
    font,
  };
}"""


@pytest.mark.browser
async def test_a_cards_count_of_its_target_stays_on_one_line(make_client: MakeClient) -> None:
    """A target of 12 made a lone card's "2 of 12" two lines on a TV ("2 of" / "12", with
    "reps" left hanging): the count stays one line, with its "reps", and fits its card, on
    a TV alone or beside another, and on a phone."""
    client = await make_client(Config(workers=1, no_cache=True, idle_timeout=300))
    people = [await LiveClient.connect(client) for _ in range(2)]
    tokens = [(await p.hello(track="pose", exercise="squat", target=12))["watch"] for p in people]
    frames = video_frames(PUSHUPS, 2)
    seen = []
    async with open_page() as browser:
        page = browser.page

        async def counted(person: LiveClient, token: str) -> None:
            await card_state(browser, token, "watching")
            await person.lockstep(frames)
            await page.wait_for_selector(
                f'.coach-card[data-token="{token}"][data-target="12"]', state="attached"
            )

        await page.set_viewport_size({"width": 1920, "height": 1080})
        await page.goto(str(client.make_url(f"/coach?watch={tokens[0]}")))
        await counted(people[0], tokens[0])
        seen.append(("TV, alone", await page.evaluate(COUNT_LINE_JS, tokens[0])))
        await page.set_viewport_size({"width": 390, "height": 844})
        seen.append(("phone, alone", await page.evaluate(COUNT_LINE_JS, tokens[0])))
        await page.set_viewport_size({"width": 1920, "height": 1080})
        await page.fill("#coach-links", tokens[1])
        await page.click("#coach-add")
        await counted(people[1], tokens[1])
        seen.append(("TV, two", await page.evaluate(COUNT_LINE_JS, tokens[0])))
        assert browser.errors == []
    for person in people:
        await person.ws.close()
    for where, count in seen:
        assert count["text"] == "0 of 12 reps", (where, count)
        assert (count["countLines"], count["lines"]) == (1, 1), (where, count)
        assert count["sameLine"], (where, count)
        assert count["fits"], (where, count)
    # Still read from across the room.
    assert all(count["font"] >= 3 * 16 for _, count in seen), seen


CARD_TOKENS_JS = "() => [...document.querySelectorAll('.coach-card')].map((c) => c.dataset.token)"


@pytest.mark.browser
async def test_text_that_names_no_watch_token_makes_no_card(client: Client) -> None:
    """'hello world' pasted made two cards that could only say 'not valid', and the status
    said 'Added 2 sessions.'; so did /coach?watch=garbage."""
    async with open_page() as browser:
        page = browser.page
        await page.goto(str(client.make_url("/coach?watch=garbage")))
        await page.wait_for_selector("#coach-status[data-kind=error]")
        assert "not one" in (await page.text_content("#coach-status") or "")
        foreign = "http://example.com/coach?watch=abc"
        await page.fill("#coach-links", f"hello world <script> {foreign}")
        await page.click("#coach-add")
        await page.wait_for_function(
            "() => document.getElementById('coach-status').textContent.includes('Added 0')"
        )
        said = await page.text_content("#coach-status") or ""
        assert "No watch token in: hello world <script>" in said
        assert await page.evaluate(CARD_TOKENS_JS) == []
        assert browser.errors == []


@pytest.mark.browser
async def test_sessions_added_again_are_announced_though_only_their_number_changed(
    client: Client,
) -> None:
    """'Added 3 sessions.' after 'Added 2 sessions.' read as a countdown's next figure: the
    status turned its live region off, and a screen reader said nothing of the new cards."""
    async with open_page() as browser:
        page = browser.page
        await page.goto(str(client.make_url("/coach")))
        await page.wait_for_selector("body[data-coach-ready]", state="attached")
        for count, letter in [(2, "A"), (3, "B")]:
            tokens = [letter * 21 + str(n) for n in range(count)]
            await page.fill("#coach-links", " ".join(tokens))
            await page.click("#coach-add")
            await page.wait_for_function(
                "(said) => document.getElementById('coach-status').textContent === said",
                arg=f"Added {count} sessions.",
            )
            assert await page.get_attribute("#coach-status", "aria-live") == "polite"
        assert browser.errors == []


@pytest.mark.browser
async def test_a_code_typed_wrong_is_said_to_be_one_and_kept_as_typed(client: Client) -> None:
    """A code with a letter missed, one too many or a 0 read "No watch token in: K7QM-2XD.",
    and one typed with a space came back split over two lines of the box."""
    async with open_page() as browser:
        page = browser.page
        await page.goto(str(client.make_url("/coach")))
        await page.wait_for_selector("body[data-coach-ready]", state="attached")
        for typed in ["K7QM-2XD", "k7qm 2xdo", "K7QM-2XDAB"]:
            await page.fill("#coach-links", typed)
            await page.click("#coach-add")
            await page.wait_for_function(
                "() => document.getElementById('coach-status').textContent.includes('Added 0')"
            )
            said = await page.text_content("#coach-status") or ""
            assert f"{typed}: a code is 8 letters and digits" in said, said
            assert "No watch token" not in said
            assert await page.input_value("#coach-links") == typed
            # The next entry's words are waited for, not these.
            await page.eval_on_selector("#coach-status", "(status) => { status.textContent = ''; }")
        assert await page.evaluate(CARD_TOKENS_JS) == []
        assert browser.errors == []


@pytest.mark.browser
async def test_a_link_opened_in_another_tab_adds_its_card_to_the_view_already_open(
    client: Client,
) -> None:
    """A coach opening each person's link (or scanning each QR code) gets a tab each, and
    each view opened every card kept in the browser: tab N watched N people, taking their
    watcher places, until the address's connections ran out. The view already open takes
    the new link's card; the new tab opens no connection unless asked to."""
    async with open_page() as browser:
        page = browser.page
        first, token = await a_coach_watching(client, browser)
        second = await LiveClient.connect(client)
        other = (await second.hello(track="pose", exercise="squat"))["watch"]
        tab = await page.context.new_page()
        sockets = record_socket_urls(tab)
        await tab.goto(str(client.make_url(f"/coach?watch={other}")))
        await tab.wait_for_selector("body[data-coach-ready]", state="attached")
        await card_state(browser, other, "watching")
        assert await page.evaluate(CARD_TOKENS_JS) == [token, other]
        said = await tab.inner_text("#coach-elsewhere-words")
        assert said.startswith(
            "The coach's view is open in another tab of this browser: "
            "this link's card was added there."
        ), said
        assert await tab.evaluate(CARD_TOKENS_JS) == []
        assert await tab.is_hidden("#coach-empty")
        # Asked to, it watches them all here too.
        await tab.click("#coach-here")
        await tab.wait_for_selector(
            f'.coach-card[data-token="{other}"][data-state="watching"]', state="attached"
        )
        assert await tab.evaluate(CARD_TOKENS_JS) == [token, other]
        assert await tab.is_hidden("#coach-elsewhere")
        assert len(sockets) == 2, sockets  # none before Watch here too
        # With the first view closed, the one watching too is the view a new link joins.
        await page.close()
        third = await LiveClient.connect(client)
        another = (await third.hello(track="pose", exercise="squat"))["watch"]
        last = await tab.context.new_page()
        await last.goto(str(client.make_url(f"/coach?watch={another}")))
        await last.wait_for_selector("#coach-elsewhere", state="visible")
        await tab.wait_for_selector(
            f'.coach-card[data-token="{another}"][data-state="watching"]', state="attached"
        )
        assert await last.evaluate(CARD_TOKENS_JS) == []
        await tab.close()
        assert browser.errors == []
    await first.ws.close()
    await second.ws.close()
    await third.ws.close()


@pytest.mark.browser
async def test_two_links_opened_together_open_one_view(client: Client) -> None:
    """A coach scanning two QR codes at once had two tabs each asking whether a view was
    open, neither serving yet to answer: both served, each person watched twice over. The
    first to hold the browser's lock serves and the other hands its link over."""
    people = [await LiveClient.connect(client) for _ in range(2)]
    tokens = [(await p.hello(track="pose", exercise="squat"))["watch"] for p in people]
    async with open_page() as browser:
        tabs = [browser.page, await browser.page.context.new_page()]
        await asyncio.gather(
            *(
                tab.goto(str(client.make_url(f"/coach?watch={token}")))
                for tab, token in zip(tabs, tokens, strict=True)
            )
        )
        for tab in tabs:
            await tab.wait_for_selector("body[data-coach-ready]", state="attached")
        handed = [await tab.is_visible("#coach-elsewhere") for tab in tabs]
        assert sorted(handed) == [False, True], handed
        serving = tabs[handed.index(False)]
        for token in tokens:
            await serving.wait_for_selector(
                f'.coach-card[data-token="{token}"][data-state="watching"]', state="attached"
            )
        assert sorted(await serving.evaluate(CARD_TOKENS_JS)) == sorted(tokens)
        assert await tabs[handed.index(True)].evaluate(CARD_TOKENS_JS) == []
        assert browser.errors == []
    for person in people:
        await person.ws.close()


@pytest.mark.browser
async def test_a_card_that_gave_up_is_tried_again_when_pasted_again(client: Client) -> None:
    """A card no longer trying (its network was gone for its five tries, or its link was
    not valid) is tried again in its place when its link is pasted again; one watching
    is not added twice."""
    async with open_page() as browser:
        page = browser.page
        person, token = await a_coach_watching(client, browser)
        await page.fill("#coach-links", f"{NO_SESSION} {NOR_THAT}")
        await page.click("#coach-add")
        await card_state(browser, NO_SESSION, "invalid")
        await card_state(browser, NOR_THAT, "invalid")
        cards = [token, NO_SESSION, NOR_THAT]
        assert await page.evaluate(CARD_TOKENS_JS) == cards
        said = await page.text_content("#coach-status")
        sockets = record_socket_urls(page)
        await page.fill("#coach-links", f"{token}\n{NO_SESSION}")
        async with page.expect_websocket() as opened:
            await page.click("#coach-add")
        await page.wait_for_function(
            "(said) => document.getElementById('coach-status').textContent !== said", arg=said
        )
        assert await page.text_content("#coach-status") == "Added 1 session. 1 was shown already."
        # Playwright reports a socket after the page made it: once the retried one is
        # refused and closed, one opened beside it in the same click is reported too.
        retried = await opened.value
        if not retried.is_closed():
            await retried.wait_for_event("close")
        assert len(sockets) == 1, sockets  # the card given up, and only it
        assert sockets[0].endswith(f"?link={NO_SESSION}&watcher=1")
        assert await page.evaluate(CARD_TOKENS_JS) == cards
        await card_state(browser, NO_SESSION, "invalid")
        await card_state(browser, token, "watching")
        assert browser.errors == []
    await person.ws.close()


async def until_body_line(person: LiveClient, frames: tuple[bytes, ...]) -> int:
    """Sends `frames` one by one, each after the last one's result, up to the first whose
    result carries the straight-line cue: its index."""
    for at, frame in enumerate(frames):
        [result] = await person.lockstep((frame,), first=at)
        if any(cue["code"] == "body_line" for cue in result["fitness"]["cues"]):
            return at
    raise AssertionError("no body-line cue in the push-ups' last seconds")


@pytest.mark.browser
async def test_a_coach_card_lights_up_what_a_cue_is_about(client: Client) -> None:
    # The end of the push-up video at 15 fps: a last rep, then he gets up bending at the
    # hips while at the top, and the straight-line cue shows on his card and on its figure.
    frames = video_frames(PUSHUPS, PUSHUP_FRAMES)[45 * 30 :: 2]
    async with open_page() as browser:
        page = browser.page
        person, token = await a_coach_watching(client, browser)
        cue = (await mark_colors(page))["CUE_COLOR"]
        seen = asyncio.create_task(
            page.wait_for_function(
                f"""([cue, token]) => {{
                  const count = ({COUNT_COLORS_JS});
                  const card = document.querySelector(`.coach-card[data-token='${{token}}']`);
                  const canvas = card.querySelector('canvas.card-figure');
                  return card.dataset.cue === 'body_line'
                    && card.querySelector('[data-field=cue]').dataset.fresh === 'true'
                    && count([canvas, {{cue}}, 12]).cue > 20;
                }}""",
                arg=[cue, token],
                polling=10,
                timeout=60_000,
            )
        )
        # Up to the first result with the cue, then no other until the card shows it: the
        # cue lasts a few frames, and a page busy for as long saw only the ones after it.
        at = await until_body_line(person, frames)
        await seen
        fed = asyncio.Event()
        feeding = asyncio.create_task(feed(person, frames[at + 1 :], fed, first=at + 1))
        await fed.wait()
        # He moves on to squats: the push-up's cue ("Last cue: ...") leaves his card.
        await person.ws.send_json({"type": "exercise", "name": "squat"})
        await person.send(len(frames), len(frames) * 1000 / 15, frames[-1])
        await page.wait_for_function(
            """(token) => {
                 const card = document.querySelector(`.coach-card[data-token='${token}']`);
                 return card.dataset.exercise === 'squat'
                   && card.querySelector('[data-field=cue]').textContent === ''
                   && card.dataset.cue === undefined;
               }""",
            arg=token,
        )
        assert browser.errors == []
    await person.ws.close()
    await feeding


@pytest.mark.browser
async def test_the_coach_follows_three_sessions(make_client: MakeClient) -> None:
    # Long enough that the squatter, fed few frames, is not ended as idle meanwhile.
    client = await make_client(Config(workers=1, no_cache=True, idle_timeout=300))
    # 11 s of the push-up footage at 15 fps: its first rep ends at about 8.5 s.
    pushups = video_frames(PUSHUPS, 330)[::2]
    people = [await LiveClient.connect(client) for _ in range(3)]
    exercises = ["push_up", "push_up", "squat"]
    tokens = []
    # The second person set a target of 3 reps.
    targets = [None, 3, None]
    for person, exercise, target in zip(people, exercises, targets, strict=True):
        ready = await person.hello(track="pose", exercise=exercise, target=target)
        tokens.append(ready["watch"])
    async with open_page() as browser:
        page = browser.page
        await page.goto(str(client.make_url("/coach")))
        await page.wait_for_selector("body[data-coach-ready]", state="attached")
        links = [
            str(client.make_url(f"/coach?watch={tokens[0]}")),
            tokens[1],  # a bare token works as well as a link
            str(client.make_url(f"/fitness?watch={tokens[2]}")),
            str(client.make_url(f"/coach?watch={NO_SESSION}")),
        ]
        await page.fill("#coach-links", "\n".join(links))
        await page.click("#coach-add")
        for token in tokens:
            await card_state(browser, token, "watching")
        await card_state(browser, NO_SESSION, "invalid")
        assert "not valid" in await card_text(browser, NO_SESSION)

        fed = [asyncio.Event() for _ in people]
        feeds = [
            asyncio.create_task(feed(person, frames, done))
            for person, frames, done in zip(
                people, [pushups, pushups, pushups[:20]], fed, strict=True
            )
        ]
        await asyncio.gather(*(done.wait() for done in fed))
        for token, reps in zip(tokens[:2], ("1 rep", "1 of 3 reps"), strict=True):
            await page.wait_for_selector(
                f'.coach-card[data-token="{token}"][data-reps="1"]', state="attached"
            )
            text = await card_text(browser, token)
            assert "Push-up" in text
            assert f"Push-up {reps} Phase:" in text
            # The sets line follows the workout the server pushes at each rep.
            await page.wait_for_function(
                "(token) => document.querySelector(`.coach-card[data-token='${token}'] "
                "[data-field=sets]`).textContent.endsWith(' 1 rep in all')",
                arg=token,
            )
            sets = "1 of 3" if token == tokens[1] else "1"
            assert f"Sets: Push-up {sets} (now)" in await card_text(browser, token)
        await page.wait_for_selector(
            f'.coach-card[data-token="{tokens[2]}"][data-exercise="squat"]', state="attached"
        )
        assert "Squat" in await card_text(browser, tokens[2])
        # Each card draws the person's pose (no face, no video), shaped as their 4:3 frames,
        # with the angle that counts marked (the push-ups' elbows, seen side-on).
        colors = await browser.colors()
        mark = (await mark_colors(page))["MARK_COLOR"]
        for token, exercise in zip(tokens, exercises, strict=True):
            figure = f'.coach-card[data-token="{token}"] canvas.card-figure'
            await browser.wait_for_colors(
                figure, {colors["pose"]: (50, 10**9), colors["face"]: (0, 0)}
            )
            if exercise == "push_up":
                await browser.wait_for_colors(figure, {mark: (20, 10**9)})
            width, height, hidden = await page.eval_on_selector(
                figure, "c => [c.width, c.height, c.hidden]"
            )
            assert (width >= 240, round(height / width, 2), hidden) == (True, 0.75, False)

        await people[1].ws.close()
        await card_state(browser, tokens[1], "ended")
        assert "has ended" in await card_text(browser, tokens[1])
        for token in (tokens[0], tokens[2]):
            state = await page.get_attribute(f'.coach-card[data-token="{token}"]', "data-state")
            assert state == "watching", await card_text(browser, token)
        assert browser.errors == []
    for person in people:
        await person.ws.close()
    await asyncio.gather(*feeds)


async def test_a_card_whose_session_ended_shows_no_phase_nor_a_cue_as_now(
    client: Client,
) -> None:
    """Under "This session has ended." a card read "Phase: Up" and the cue in red, as if
    the person were still being counted."""
    # The push-up video's last seconds, as for the cue on the card's figure.
    frames = video_frames(PUSHUPS, PUSHUP_FRAMES)[45 * 30 :: 2]
    async with open_page() as browser:
        page = browser.page
        person, token = await a_coach_watching(client, browser)
        card = f'.coach-card[data-token="{token}"]'
        shown = asyncio.create_task(
            page.wait_for_function(
                "(card) => document.querySelector(`${card} [data-field=cue]`).dataset.fresh"
                " === 'true'",
                arg=card,
                polling=10,
            )
        )
        await until_body_line(person, frames)
        await shown
        assert await page.text_content(f"{card} [data-field=phase]") != "\u2013"
        await person.ws.close()
        await card_state(browser, token, "ended")
        assert await page.text_content(f"{card} [data-field=phase]") == "\u2013"
        cue = await page.text_content(f"{card} [data-field=cue]")
        assert cue == "Last cue: Keep your body in one straight line", cue
        assert browser.errors == []


async def test_a_card_whose_session_ended_marks_no_set_as_now(client: Client) -> None:
    """A card whose session had ended still read "Sets: Push-up 0 (now)", as if the set
    were being counted."""
    async with open_page() as browser:
        page = browser.page
        person, token = await a_coach_watching(client, browser)
        # A target sends the watchers the workout at once, without a frame.
        await person.ws.send_json({"type": "target", "reps": 5})
        sets = f'.coach-card[data-token="{token}"] [data-field=sets]'
        await page.wait_for_function(
            "(sets) => document.querySelector(sets).textContent.includes('(now)')", arg=sets
        )
        await person.ws.close()
        await card_state(browser, token, "ended")
        assert await page.text_content(sets) == "Sets: Push-up 0 of 5 · 0 reps in all"
        assert browser.errors == []


# draw.js MIN_VISIBILITY: a point less likely in view than this is not drawn.
MIN_VISIBILITY = 0.5

# The counting angle's values drawn over a pose on a `size` canvas, in a mirrored stage or
# not: each value's [left, right] on the canvas as fillText drew it.
ANGLE_LABELS_JS = """async ([pose, size, mirrored]) => {
  const { markExercise } = await import("/static/fitness/marks.js");
  const { exercises } = await (await fetch("/api/exercises")).json();
  const stage = document.createElement("div");
  if (mirrored) stage.className = "stage mirrored";
  const canvas = document.createElement("canvas");
  [canvas.width, canvas.height] = size;
  stage.append(canvas);
  document.body.append(stage);
  const ctx = canvas.getContext("2d");
  const spans = [];
  const fillText = ctx.fillText.bind(ctx);
  ctx.fillText = (text, x, y) => {
    const { a, e } = ctx.getTransform();
    const ends = [x, x + ctx.measureText(text).width].map((at) => a * at + e);
    spans.push([Math.min(...ends), Math.max(...ends)]);
    fillText(text, x, y);
  };
  const angles = { left_knee: 167, right_knee: 171 };
  markExercise(canvas, { pose }, { exercise: "squat", cues: [], angles }, exercises);
  stage.remove();
  return spans;
}"""


@pytest.mark.browser
@pytest.mark.parametrize("mirrored", [False, True], ids=["plain", "mirrored"])
@pytest.mark.parametrize("edge", ["left", "right"])
async def test_a_knee_at_the_frames_edge_keeps_its_whole_angle_on_the_picture(
    client: Client, mirrored: bool, edge: str
) -> None:
    """A person at the side of the picture (a phone held upright frames a squat tightly):
    the knee's value went on past the canvas's edge and was cut, "16" of "167°". The squat
    clip's frame 174, moved until a knee is 2% from the frame's edge."""
    clip = cached(SQUATS, Track.POSE)
    pose = clip.pose[174].tolist()
    # Only the knees the page marks: one the model is unsure of gets no value.
    knees = [pose[i][0] for i in (25, 26) if pose[i][3] >= MIN_VISIBILITY]
    shift = 0.98 - max(knees) if edge == "right" else 0.02 - min(knees)
    moved = [[p[0] + shift, *p[1:]] for p in pose]
    width, height = clip.image_size
    async with open_page() as browser:
        await browser.page.goto(str(client.make_url("/fitness")))
        spans = await browser.page.evaluate(ANGLE_LABELS_JS, [moved, [width, height], mirrored])
        assert browser.errors == []
    assert len(spans) == len(knees) > 0
    for left, right in spans:
        assert left >= 0, (left, right)
        assert right <= width, (left, right, width)
