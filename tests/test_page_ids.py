"""Every page's ids are its own once, and what names one (a label's `for`, `aria-*`) names
one that is there: a second element with a page's id is the one a script does not find
(a camera chooser once took the camera tip's id on the fitness page, and the cameras' names
went into the tip)."""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser

import pytest

from tests.conftest import Client, MakeClient
from webapp.config import Config

# Attributes that name other elements by id, one or several.
REFERENCES = ("for", "aria-describedby", "aria-labelledby", "aria-controls", "list")


class Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.named: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name == "id":
                self.ids.append(value)
            elif name in REFERENCES:
                self.named.extend(value.split())


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    return await make_client(Config(workers=1, vmc_allow="127.0.0.1:39539"))


@pytest.mark.parametrize("page", ["/", "/avatar", "/fitness", "/coach"])
async def test_each_id_is_on_one_element_and_each_one_named_is_there(
    client: Client, page: str
) -> None:
    response = await client.get(page)
    assert response.status == 200
    parser = Ids()
    parser.feed(await response.text())
    assert len(parser.ids) > 5
    twice = [name for name, count in Counter(parser.ids).items() if count > 1]
    assert twice == []
    assert sorted(set(parser.named) - set(parser.ids)) == []
