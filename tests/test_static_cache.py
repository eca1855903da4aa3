"""A browser that comes back after the server was upgraded runs the new scripts.

The pages' modules, the npm files and the default avatar are served with an ETag and a
Last-Modified date: with no Cache-Control a browser takes a tenth of the file's age as
the time it may keep using its copy without asking, and a script last changed a month
before was run from the cache for three days after an upgrade changed it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.browser import open_page
from tests.conftest import Client, MakeClient
from webapp.config import Config
from webapp.static_files import static_files

MONTH = 30 * 24 * 3600
PAGE = '<!doctype html><title>t</title><script type="module" src="/static/version.js"></script>'


async def page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


async def test_a_returning_browser_runs_the_upgraded_script(
    aiohttp_server: object, tmp_path: Path
) -> None:
    script = tmp_path / "version.js"
    script.write_text("document.body.dataset.version = 'old';\n")
    a_month_ago = time.time() - MONTH
    os.utime(script, (a_month_ago, a_month_ago))
    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/static/{name:.+}", static_files(tmp_path))
    server: TestServer = await aiohttp_server(app)  # type: ignore[operator]
    url = str(server.make_url("/"))
    async with open_page() as browser:
        await browser.page.goto(url)
        await browser.page.wait_for_selector("body[data-version=old]", state="attached")
        script.write_text("document.body.dataset.version = 'new';\n")  # the upgrade
        # goto waits for the load event, which comes after the page's module has run.
        await browser.page.goto(url)
        assert await browser.page.get_attribute("body", "data-version") == "new"
        assert browser.errors == []


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    return await make_client(Config(workers=1))


@pytest.mark.parametrize(
    "url",
    [
        "/static/live.js",
        "/static/avatar/main.js",
        "/static/style.css",
        "/vendor/three/build/three.module.js",
        "/avatar/default.vrm",
    ],
)
async def test_every_served_file_is_checked_before_a_cached_copy_is_used(
    client: Client, url: str
) -> None:
    served = await client.get(url)
    assert served.status == 200
    assert served.headers["Cache-Control"] == "no-cache"
    # Asked again with its ETag, an unchanged file costs a 304 and no body.
    again = await client.get(url, headers={"If-None-Match": served.headers["ETag"]})
    assert again.status == 304
