from __future__ import annotations

import dataclasses
import os
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from webapp.app import create_app
from webapp.config import Config
from webapp.defaults import MIN_SESSION_FPS

# The same for every server a test starts as a subprocess (the cluster's replicas, TLS,
# key reloads, the swarm's and Locust's servers): they inherit this environment twin of
# --min-session-fps. A test that means to judge by rate passes the flag, which wins.
os.environ.setdefault("HOLOTRACK_MIN_SESSION_FPS", "0")

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[Config], Awaitable[Client]]


@pytest.fixture
def make_client(aiohttp_client: Callable[[web.Application], Awaitable[Client]]) -> MakeClient:
    """Builds the real app, real worker processes included, from a Config.

    Admission by rate (--min-session-fps) is judged from the measured cost of a frame, so
    with its default a test that puts several sessions on one worker would pass or fail
    with the machine's speed. Unless a test sets the minimum itself (test_admission.py and
    test_scheduling.py do), it is off here."""

    async def build(config: Config) -> Client:
        if config.min_session_fps == MIN_SESSION_FPS:
            config = dataclasses.replace(config, min_session_fps="0")
        return await aiohttp_client(create_app(config))

    return build


def files_form(data: bytes, content_type: str, *names: str) -> aiohttp.FormData:
    """A multipart body with `data` once under each file name, every part named `file`."""
    form = aiohttp.FormData()
    for name in names:
        form.add_field("file", data, filename=name, content_type=content_type)
    return form
