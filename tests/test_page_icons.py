"""Every page names its icon, and the server has it: without one each page load asked for
/favicon.ico and logged a 404 in the browser's console (a review in Chromium)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Client, MakeClient
from webapp.config import Config


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    return await make_client(Config(workers=1))


@pytest.mark.parametrize("page", ["/", "/avatar", "/fitness", "/coach"])
async def test_each_page_names_an_icon_the_server_serves(client: Client, page: str) -> None:
    html = await (await client.get(page)).text()
    (href,) = re.findall(r'<link rel="icon" href="([^"]+)"', html)
    icon = await client.get(href)
    assert icon.status == 200
    assert icon.content_type == "image/svg+xml"
    assert (await icon.read()).startswith(b"<svg")
