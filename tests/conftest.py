from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from webapp.app import create_app
from webapp.config import Config

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[Config], Awaitable[Client]]


@pytest.fixture
def make_client(aiohttp_client: Callable[[web.Application], Awaitable[Client]]) -> MakeClient:
    """Builds the real app, real worker processes included, from a Config."""

    async def build(config: Config) -> Client:
        return await aiohttp_client(create_app(config))

    return build
