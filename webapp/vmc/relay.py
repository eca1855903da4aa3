"""Watch a session on a faraway server and replay its rig as VMC on this machine.

    python -m webapp.vmc.relay --watch wss://host/ws --token TOKEN --to 127.0.0.1:39539

A server in the cloud cannot send UDP into a home network, and should not try; this relay
runs next to VSeeFace (or VNyan, Warudo...), opens an ordinary outgoing WebSocket as a
watcher, and sends each result's rig to the local receivers: `--to` takes several,
comma-separated, so one watcher feeds every app on the machine. When the connection drops
it reconnects, waiting longer each time up to a limit, until the watched session ends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from webapp.vmc.sender import Target, VmcSender, parse_targets

log = logging.getLogger("webapp.vmc.relay")
# Close codes after which reconnecting cannot help: the token is unknown or has expired
# (4003), or the session it named ended normally (1000).
FINAL_CLOSES = {4003, 1000}


@dataclass(frozen=True)
class RelayConfig:
    watch: str
    token: str
    to: tuple[Target, ...]
    retry_max_s: float = 10.0


class SessionOver(Exception):
    """The watched session is gone for good."""


async def relay_once(config: RelayConfig, sender: VmcSender, http: aiohttp.ClientSession) -> int:
    """One watcher connection, forwarding until it closes; returns how many rigs it sent."""
    forwarded = 0
    started = time.monotonic()
    async with http.ws_connect(config.watch, heartbeat=20.0) as ws:
        await ws.send_json({"type": "watch", "version": 1, "token": config.token})
        reason = ""
        while True:
            message = await ws.receive()
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                reason = str(message.extra or "")
                break
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            if data.get("type") == "watching":
                to = ", ".join(map(str, config.to))
                log.info("watching session %s, sending VMC to %s", data.get("session"), to)
            elif data.get("type") == "result" and isinstance(data.get("rig"), dict):
                sender.send(data["rig"], time.monotonic() - started)
                forwarded += 1
        if ws.close_code in FINAL_CLOSES:
            raise SessionOver(f"closed with {ws.close_code}: {reason or 'no reason'}")
        log.warning("connection closed (%s %s); reconnecting", ws.close_code, reason)
    return forwarded


async def run(config: RelayConfig) -> int:
    sender = await VmcSender.open(*config.to)
    delay = 0.5
    try:
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    if await relay_once(config, sender, http):
                        delay = 0.5
                except SessionOver as over:
                    log.info("the watched session is over: %s", over)
                    return 0
                except (aiohttp.ClientError, OSError, ValueError) as error:
                    log.warning("cannot watch %s: %s; retry in %.1f s", config.watch, error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, config.retry_max_s)
    finally:
        sender.close()


def parse(argv: Sequence[str]) -> RelayConfig:
    parser = argparse.ArgumentParser(
        prog="python -m webapp.vmc.relay",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--watch", required=True, help="the server's /ws URL (ws:// or wss://)")
    parser.add_argument("--token", required=True, help="the watch token the page shows")
    parser.add_argument(
        "--to",
        default="127.0.0.1:39539",
        help="the local VMC receivers, HOST:PORT[,HOST:PORT...] (default: %(default)s)",
    )
    parser.add_argument(
        "--retry-max",
        type=float,
        default=10.0,
        help="longest wait between reconnects, seconds (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if not args.watch.startswith(("ws://", "wss://")):
        parser.error("--watch must be a ws:// or wss:// URL")
    try:
        targets = parse_targets(args.to)
    except ValueError as error:
        parser.error(f"--to: {error}")
    if not targets:
        parser.error("--to: name at least one receiver, HOST:PORT")
    return RelayConfig(args.watch, args.token, targets, args.retry_max)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = parse(sys.argv[1:] if argv is None else argv)
    try:
        return asyncio.run(run(config))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
