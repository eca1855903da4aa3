"""How fast the avatar page tracks in a browser that draws in software, against the plain
tracking page, in one run.

    .venv/bin/python -m bench.avatar_page              # 20 s a mode, two rounds
    .venv/bin/python -m bench.avatar_page --seconds 10 --rounds 1

A real server (one worker) and real headless Chromium, which here draws WebGL with
SwiftShader on the CPU, as a browser without a GPU does (some VMs, remote desktops).
Its fake camera plays the shared ASL video. The modes, alternated round by round:

- `tracking page`: `/`, which draws only the landmarks: the rate the camera and the
  server allow.
- `avatar page`: `/avatar` as it ships, resting after each slow drawing
  (static/avatar/pace.js), without antialiasing since the renderer is a software one
  (static/avatar/scene.js).
- `avatar, every frame`: the same page made to draw on every animation frame, as it did
  before pace.js.

Each prints results/s (results the page received, after a warm-up of 3 results), and for
the avatar pages drawings/s and animation frames/s. Compare only figures of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Page

from bench.common import loadavg
from tests.browser import fake_camera_args, open_page, write_y4m
from tests.media import ASL_VIDEO
from webapp.app import create_app
from webapp.config import Config

OUT = Path(__file__).resolve().parent / "out" / "avatar_page.json"
MODES = ("tracking page", "avatar page", "avatar, every frame")
RESULTS = {
    "/": "Number(document.getElementById('live-results').textContent)",
    "/avatar": "Number(document.getElementById('avatar-stage').dataset.results || 0)",
}
START = {"/": "#live-start", "/avatar": "#avatar-start"}
FRAMES_PER_SECOND = """() => new Promise((done) => {
  let frames = 0;
  const start = performance.now();
  const tick = (now) => {
    frames += 1;
    if (now - start < 2000) requestAnimationFrame(tick);
    else done(frames / ((now - start) / 1000));
  };
  requestAnimationFrame(tick);
})"""


async def measure(page: Page, path: str, every_frame: bool, seconds: float) -> dict[str, Any]:
    if every_frame:
        await page.evaluate("window.holotrackAvatar.drawEveryFrame()")
    await page.click(START[path])
    await page.wait_for_function(f"() => {RESULTS[path]} > 3", timeout=120_000)
    results_0, drawn_0, started = await _counts(page, path)
    await asyncio.sleep(seconds)
    results_1, drawn_1, ended = await _counts(page, path)
    took = ended - started
    row: dict[str, Any] = {"results_per_s": (results_1 - results_0) / took}
    if path == "/avatar":
        row["drawn_per_s"] = (drawn_1 - drawn_0) / took
        row["frames_per_s"] = await page.evaluate(FRAMES_PER_SECOND)
    return row


async def _counts(page: Page, path: str) -> tuple[int, int, float]:
    results = await page.evaluate(RESULTS[path])
    drawn = await page.evaluate("window.holotrackAvatar.drawn()") if path == "/avatar" else 0
    return int(results), int(drawn), time.monotonic()


async def one(y4m: Path, mode: str, seconds: float) -> dict[str, Any]:
    path = "/" if mode == "tracking page" else "/avatar"
    async with (
        TestClient(TestServer(create_app(Config(workers=1)))) as client,
        open_page(fake_camera_args(y4m)) as camera,
    ):
        page = camera.page
        await page.goto(str(client.make_url(path)))
        if path == "/avatar":
            await page.wait_for_selector("body[data-avatar-ready=true]", state="attached")
        return await measure(page, path, mode == "avatar, every frame", seconds)


async def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.avatar_page", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    report: dict[str, Any] = {"load_before": loadavg(), "rounds": []}
    with tempfile.TemporaryDirectory() as tmp:
        y4m = write_y4m(ASL_VIDEO, Path(tmp) / "camera.y4m", frames=300)
        for _ in range(args.rounds):
            report["rounds"].append({mode: await one(y4m, mode, args.seconds) for mode in MODES})
    report["load_after"] = loadavg()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2))
    print(f"load {report['load_before']} -> {report['load_after']}")
    print("| mode | results/s | drawings/s | animation frames/s |")
    print("|---|---|---|---|")
    for i, rows in enumerate(report["rounds"], 1):
        for mode, row in rows.items():
            drawn = f"{row['drawn_per_s']:.1f}" if "drawn_per_s" in row else ""
            frames = f"{row['frames_per_s']:.1f}" if "frames_per_s" in row else ""
            print(f"| round {i}, {mode} | {row['results_per_s']:.1f} | {drawn} | {frames} |")


if __name__ == "__main__":
    asyncio.run(main())
