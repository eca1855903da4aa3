"""The README's screenshots of the avatar page and of its OBS view, from a real run.

    .venv/bin/python -m bench.screenshots     # writes docs/avatar.png and docs/avatar-obs.png

A real server (one worker) and real Chromium, whose fake camera plays the shared ASL video;
the page's Start opens a session with the rig, Happy is held, and a second page opens its
watch link.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from tests.browser import fake_camera_args, open_page, write_y4m
from tests.media import ASL_VIDEO
from webapp.app import create_app
from webapp.config import Config

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RESULTS_BEFORE_SHOT = 40


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        y4m = write_y4m(ASL_VIDEO, Path(tmp) / "camera.y4m", frames=300)
        server = TestServer(create_app(Config(workers=1)))
        async with TestClient(server) as client, open_page(fake_camera_args(y4m)) as camera:
            page = camera.page
            await page.goto(str(client.make_url("/avatar")))
            await page.wait_for_selector("body[data-avatar-ready=true]", state="attached")
            await page.click("#avatar-start")
            await page.wait_for_function(
                "() => Number(document.getElementById('avatar-stage').dataset.results)"
                f" > {RESULTS_BEFORE_SHOT}"
            )
            # An expression held, so the pictures show the row of them in use.
            await page.click("button[data-emotion=happy]")
            await page.wait_for_function(
                "() => window.holotrackAvatar.expressionValue('happy') > 0.95"
            )
            link = await page.get_attribute("#watch-link", "href")
            assert link, "the page shows no watch link"
            await page.screenshot(path=str(DOCS / "avatar.png"))
            async with open_page() as viewer:
                obs = viewer.page
                await obs.set_viewport_size({"width": 640, "height": 720})
                await obs.goto(link if link.startswith("http") else str(client.make_url(link)))
                await obs.wait_for_function(
                    f"() => Number(document.body.dataset.results) > {RESULTS_BEFORE_SHOT}"
                )
                await obs.screenshot(path=str(DOCS / "avatar-obs.png"), omit_background=True)
    print(f"wrote {DOCS / 'avatar.png'} and {DOCS / 'avatar-obs.png'}")


if __name__ == "__main__":
    # --help must not overwrite the committed screenshots, as it did when no flag was parsed.
    argparse.ArgumentParser(prog="python -m bench.screenshots", description=__doc__).parse_args()
    asyncio.run(main())
