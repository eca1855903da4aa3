"""The names the pages give with aria-label, as the real Chromium hands them to a screen
reader: ARIA lets no name stand on a plain box (a div, a span: role "generic"), so a
screen reader says none of it, and what was to be named goes unsaid."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser import open_page
from tests.conftest import MakeClient
from tests.media import PERSON_JPEG
from tests.test_avatar_page import needs_node_modules
from webapp.config import Config

pytestmark = pytest.mark.browser


def unspoken_names(nodes: list[dict[str, Any]]) -> list[str]:
    """The names in Chromium's accessibility tree that sit on a role with no name."""
    return [
        node["name"]["value"]
        for node in nodes
        if not node.get("ignored")
        and node.get("role", {}).get("value") == "generic"
        and node.get("name", {}).get("value")
    ]


@pytest.mark.parametrize("path", ["/", "/avatar", "/fitness", "/coach"])
async def test_every_name_a_page_gives_reaches_a_screen_reader(
    make_client: MakeClient, path: str
) -> None:
    needs_node_modules()
    client = await make_client(Config(workers=1, no_cache=True))
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
