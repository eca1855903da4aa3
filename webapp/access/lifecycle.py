"""The access layer's life in the server: one line at start saying who may use it, and the
keys file re-read on SIGHUP (live sessions carry on)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator

from aiohttp import web

from webapp.keys import ACCESS

log = logging.getLogger(__name__)


async def access_ctx(app: web.Application) -> AsyncIterator[None]:
    access = app[ACCESS]
    if not access.required:
        log.info(
            "access keys: off, anyone who reaches this server may use it "
            "(set --access-keys FILE to require keys)"
        )
        yield
        return
    log.info(
        "access keys: %d keys from %s: %s; SIGHUP re-reads the file",
        len(access.names),
        access.path,
        ", ".join(access.names),
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, access.reload)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
