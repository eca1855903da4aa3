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


def _nothing_to_reload() -> bool:
    log.info("SIGHUP: no keys file to re-read (--access-keys is off); the server goes on")
    return False


async def access_ctx(app: web.Application) -> AsyncIterator[None]:
    access = app[ACCESS]
    loop = asyncio.get_running_loop()
    if not access.required:
        log.info(
            "access keys: off, anyone who reaches this server may use it "
            "(set --access-keys FILE to require keys)"
        )
        reload = _nothing_to_reload
    else:
        log.info(
            "access keys: %d keys from %s: %s; SIGHUP re-reads the file",
            len(access.names),
            access.path,
            ", ".join(access.names),
        )
        reload = access.reload
    # Handled either way: SIGHUP's default action ends the process, and a fleet's
    # routine reload (systemd's ExecReload=kill -HUP) took down the servers without keys.
    loop.add_signal_handler(signal.SIGHUP, reload)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
