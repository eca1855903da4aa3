"""Watch a session on a faraway server and replay its rig as VMC on this machine.

    python -m webapp.vmc.relay --watch wss://host/ws --token=TOKEN --to 127.0.0.1:39539

A server in the cloud cannot send UDP into a home network, and should not try; this relay
runs next to VSeeFace (or VNyan, Warudo...), opens an ordinary outgoing WebSocket as a
watcher, and sends each result's rig to the local receivers: `--to` takes several,
comma-separated, so one watcher feeds every app on the machine. When the connection drops
it reconnects, waiting longer each time up to a limit, until the watched session ends.
With --wait it waits for the link instead, through the session's end and a token the
server does not know yet: the avatar page's link is kept (the same every Start, and after
the server restarts), so a relay started once follows every stream.

A server started with --self-signed has a certificate no machine trusts: --cafile names it
(the server keeps it as self-signed-cert.pem in its state folder, ~/.local/state/holotrack;
copy it to the relay's machine), or, on the server's own machine, watch its plain
--local-http-port address instead.

Exit status: 0 when the watched session ends; 1 when watching cannot work (the server does
not know the token, answers the URL with an HTTP 4xx or with a page, shows a certificate
this machine does not trust, or speaks TLS to ws:// or plain HTTP to wss://); 2 for bad
arguments, a --to receiver that does not resolve among them; 130 for Ctrl-C (SIGINT), 143
for SIGTERM (kill, systemd, docker stop), after the receivers are sent the rest pose. With
--wait, only the HTTP answer, a certificate not trusted, a scheme the server does not speak,
the arguments and a signal end it: asking again would show the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import signal
import ssl
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from yarl import URL

from webapp.protocol import NO_WATCHERS_REASON, Close
from webapp.signals import Stopped, until_signal
from webapp.vmc.relay_config import RelayConfig, parse
from webapp.vmc.sender import VmcSender
from webapp.ws_close import sent_code

log = logging.getLogger("webapp.vmc.relay")

# The first wait before a reconnect, and the least any wait can be whatever --retry-max
# says: a server that refuses at once must not be asked thousands of times a second.
FIRST_RETRY_S = 0.5
RETRY_FLOOR_S = 0.1
# How often --wait asks for a link the server answered it does not hold now.
LINK_POLL_S = 1.0
# Answers to the upgrade that a later try may not get again; any other 4xx means the URL
# is wrong (a wrong path is a 404), as does a 2xx or 3xx (a page's URL, not /ws), and asking
# again only repeats it.
RETRYABLE_4XX = {http.HTTPStatus.REQUEST_TIMEOUT, http.HTTPStatus.TOO_MANY_REQUESTS}

# How often it says it is there: the server's heartbeat counts from the last message it
# heard, so a watcher that only listens was cut by a network drop of 7.5 s or more,
# where its camera, sending frames, rode out 22 (docs/protocol.md, "Watchers").
KEEPALIVE_S = 2.0
KEEPALIVE = json.dumps({"type": "keepalive"})
# OpenSSL's verify codes for a certificate that is trusted but names another host.
HOST_MISMATCH, IP_MISMATCH = 62, 64
# The longest a connection and its upgrade may take: a server (or a proxy) that accepts the
# connection and never answers would otherwise hold each try for aiohttp's 300 s, silently.
HANDSHAKE_S = 10.0

# What a message the relay cannot read raises on its way to VMC: a list where an object
# should be, a quaternion of three numbers, a weight past what OSC's float32 holds.
UNREADABLE = (AttributeError, IndexError, KeyError, OverflowError, TypeError, ValueError)
UNREADABLE_NOTE = (
    "a message from the server the relay cannot read (%s: %s); skipped, as the next ones it "
    "cannot read will be: is the server a Holotrack of another version?"
)
NO_RIG = (
    'the watched session\'s results carry no rig: its camera must ask for "rig": true '
    "(the avatar page does); nothing is sent until they do"
)


class Stop(Exception):
    """The relay is done: `status` is its exit status, the message says why."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


def next_wait(wait: float, retry_max_s: float) -> float:
    """The wait before the next reconnect: twice the last, at most --retry-max, and never
    less than RETRY_FLOOR_S."""
    return max(RETRY_FLOOR_S, min(wait * 2, retry_max_s))


def first_wait(retry_max_s: float) -> float:
    return max(RETRY_FLOOR_S, min(FIRST_RETRY_S, retry_max_s))


def carries_pose_without_rig(result: Mapping[str, Any]) -> bool:
    """A session that asked for the rig sends one with every result that found a pose
    (docs/protocol.md); a pose without it means the session never asked."""
    landmarks = result.get("landmarks")
    return isinstance(landmarks, dict) and bool(landmarks.get("pose")) and "rig" not in result


class Relay:
    """One run of the relay: its receivers, and what it has learnt of the watched session."""

    def __init__(self, config: RelayConfig, sender: VmcSender) -> None:
        self.config = config
        self.sender = sender
        # The token has named a live session at least once: a 4003 after that means the
        # session went while the relay was away, not that the token was never right.
        self.watched = False
        self.warned_no_rig = False
        self.warned_unreadable = False
        # The server answered that the link names no session now (with --wait), and the
        # log said so since the relay last watched.
        self.link_away = False
        self.told_away = False

    async def watch_once(self, session: aiohttp.ClientSession) -> int:
        """One watcher connection, forwarding until it closes; returns how many rigs it
        sent. Raises Stop when reconnecting cannot help."""
        self.link_away = False
        try:
            return await self._watch(session)
        except aiohttp.WSServerHandshakeError as error:
            stop = refused(error, self.config.shown)
            if stop is None:
                # aiohttp's own words ("502, message='Invalid response status', url=...")
                # said little, and wrote the watch token (the URL's ?link=) into the log
                # at every retry: the token kept out of `ps` by its environment twin too.
                raise aiohttp.ClientError(upgrade_failed(error)) from None
            raise stop from None
        except aiohttp.ClientConnectorCertificateError as error:
            # Asking again shows the same certificate: no reconnect can help.
            raise Stop(1, untrusted(error, self.config)) from None
        except aiohttp.ServerDisconnectedError:
            # Plain HTTP spoken to a server that speaks TLS (--self-signed, --tls-cert): it
            # hangs up before any answer, as it will on every retry.
            url = URL(self.config.shown)
            if url.scheme != "ws" or not await speaks_tls(url):
                raise
            raise Stop(
                1,
                f"{url}: the server speaks TLS, not plain HTTP: watch {url.with_scheme('wss')} "
                "(with --cafile its self-signed-cert.pem, for a server started with "
                "--self-signed)",
            ) from None
        except aiohttp.ClientConnectorSSLError as error:
            # TLS spoken to a server that answers in plain HTTP: no retry can help either.
            if getattr(error.os_error, "reason", None) != "WRONG_VERSION_NUMBER":
                raise
            url = URL(self.config.shown)
            raise Stop(
                1,
                f"{url}: the server answered in plain HTTP, not TLS: watch "
                f"{url.with_scheme('ws')} (wss:// is for a server started with "
                "--self-signed or --tls-cert)",
            ) from None

    async def _watch(self, session: aiohttp.ClientSession) -> int:
        try:
            async with asyncio.timeout(HANDSHAKE_S) as handshake:
                # ?link= sends it, behind a balancer, to the replica that holds the link;
                # watcher=1 keeps a full one from sending it elsewhere.
                ws = await session.ws_connect(
                    self.config.watch,
                    heartbeat=20.0,
                    params={"link": self.config.token, "watcher": "1"},
                    ssl=self.config.ssl_context or True,
                )
        except TimeoutError:
            if not handshake.expired():
                raise
            raise aiohttp.ServerTimeoutError(
                f"no answer to the WebSocket upgrade within {HANDSHAKE_S:g} s"
            ) from None
        async with ws:
            await ws.send_json({"type": "watch", "version": 1, "token": self.config.token})
            keeping = asyncio.create_task(keep_alive(ws))
            try:
                forwarded, code, reason = await self._receive(ws)
            finally:
                keeping.cancel()
            self._closed(code, reason or "no reason")
        return forwarded

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse) -> tuple[int, int | None, str]:
        """Each result's rig to the receivers until the server closes: how many were
        forwarded, and the close's code and reason."""
        forwarded = 0
        while True:
            # Nothing comes while the camera is away (paused, reconnecting): the sender
            # watches the clock itself (VmcSender.quiet) and rests the receivers.
            message = await ws.receive()
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                # ws.close_code read 1006 after a normal end, which the relay took for a
                # drop to reconnect after (CI, 2026-12-06).
                return forwarded, sent_code(ws, message), str(message.extra or "")
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                forwarded += self._read(message.data)
            except UNREADABLE as error:
                # One frame lost, not the relay: the next may be fine.
                if not self.warned_unreadable:
                    self.warned_unreadable = True
                    log.warning(UNREADABLE_NOTE, type(error).__name__, error)

    def _read(self, text: str) -> int:
        """One text message; how many rigs it forwarded."""
        data = json.loads(text)
        if data.get("type") == "watching":
            self.watched = True
            self.told_away = False
            to = ", ".join(map(str, self.config.to))
            log.info("watching session %s, sending VMC to %s", data.get("session"), to)
        elif data.get("type") == "result":
            return self._forward(data)
        return 0

    def _forward(self, result: Mapping[str, Any]) -> int:
        rig = result.get("rig")
        if isinstance(rig, dict):
            self.sender.send(rig, time.monotonic())
            return 1
        self.sender.unseen(time.monotonic())
        if not self.warned_no_rig and carries_pose_without_rig(result):
            self.warned_no_rig = True
            log.warning(NO_RIG)
        return 0

    def _closed(self, code: int | None, reason: str) -> None:
        """Raises Stop for a close after which reconnecting cannot help."""
        if self.config.wait and code in (Close.NORMAL, Close.UNKNOWN_WATCH):
            if not self.told_away:  # once a wait, not at each ask
                log.info(
                    "the link names no live session now (%s: %s); waiting for it", code, reason
                )
                self.told_away = True
            self.link_away = True
            return
        if code == Close.NORMAL:
            raise Stop(0, f"the watched session is over: {reason}")
        if code == Close.POLICY and reason == NO_WATCHERS_REASON:
            # No wait gives it a place: it asked again for ever, a warning each time.
            raise Stop(
                1,
                f"the server takes no watchers, and a relay is one ({code}: {reason}); its "
                "operator can start it with --max-watchers 1 or more",
            )
        if code == Close.UNKNOWN_WATCH and self.watched:
            raise Stop(
                1,
                f"the watch token no longer names a live session ({code}: {reason}); the "
                "session ended while the relay was disconnected, or the server restarted "
                "(a new session has a new token; a kept link and --wait outlast both)",
            )
        if code == Close.UNKNOWN_WATCH:
            raise Stop(
                1,
                f"the server does not know this watch token ({code}, unknown or expired "
                f"token: {reason}); check --token against the page's watch link, whose "
                "session must be live",
            )
        log.warning("connection closed (%s %s); reconnecting", code, reason)


def untrusted(error: aiohttp.ClientConnectorCertificateError, config: RelayConfig) -> str:
    cause = error.certificate_error
    host = URL(config.watch).host
    if getattr(cause, "verify_code", None) in (HOST_MISMATCH, IP_MISMATCH):
        # Trusted, but made for other names: a --self-signed server remakes its certificate
        # when its addresses change, and the copy given is the old one.
        return (
            f"{config.shown}: the server's certificate does not name {host} ({cause}); "
            "a --self-signed server makes a new one when its addresses change: copy its "
            "self-signed-cert.pem again, or watch an address the certificate names"
        )
    given = "the --cafile given" if config.ssl_context is not None else "this machine"
    return (
        f"{config.shown}: the server's certificate is not one {given} trusts "
        f"({cause}); a server started with --self-signed keeps its own "
        "as self-signed-cert.pem in its state folder (~/.local/state/holotrack): copy it "
        "here and give it with --cafile, or on the server's machine watch its "
        "--local-http-port address (ws://127.0.0.1:PORT/ws)"
    )


async def speaks_tls(url: URL) -> bool:
    """Whether the server at `url`'s host and port completes a TLS handshake. Its certificate
    goes unchecked: this asks only which protocol it speaks, to name the URL to watch."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        async with asyncio.timeout(HANDSHAKE_S):
            _, writer = await asyncio.open_connection(url.host, url.port, ssl=context)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def upgrade_failed(error: aiohttp.WSServerHandshakeError) -> str:
    """An answer to the upgrade worth asking again, in words that do not quote its URL."""
    if error.status < 200:
        return f"the WebSocket upgrade failed ({error.message})"
    try:
        phrase = f" {http.HTTPStatus(error.status).phrase}"
    except ValueError:
        phrase = ""
    return f"the WebSocket upgrade was answered HTTP {error.status}{phrase}"


def refused(error: aiohttp.WSServerHandshakeError, url: str) -> Stop | None:
    """A Stop for an answer to the upgrade that asking again would only repeat: a 4xx, or
    a page (2xx, or a redirect to one) where the WebSocket endpoint should be."""
    status = error.status
    if not 200 <= status < 500 or status in RETRYABLE_4XX:
        return None
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = error.message
    page = ", a page, not a WebSocket" if status < 400 else ""
    return Stop(
        1,
        f"{url} answered HTTP {status} {phrase}{page}: --watch must be the server's /ws URL, "
        "ws(s)://HOST:PORT/ws",
    )


async def run(config: RelayConfig) -> int:
    """Relays until the watched session ends or watching cannot work; the exit status."""
    try:
        sender = await VmcSender.open(*config.to)
    except OSError as error:
        log.error("cannot send VMC to %s: %s", ", ".join(map(str, config.to)), error)
        return 2
    relay = Relay(config, sender)
    wait = first_wait(config.retry_max_s)
    try:
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    if await relay.watch_once(session):
                        wait = first_wait(config.retry_max_s)
                except Stop as stop:
                    log.log(logging.INFO if stop.status == 0 else logging.ERROR, "%s", stop)
                    return stop.status
                except (aiohttp.ClientError, OSError, ValueError) as error:
                    log.warning("cannot watch %s: %s; retry in %.1f s", config.shown, error, wait)
                # A server that answers is up: its link comes back when its camera does,
                # within seconds after a restart, so it is asked at a steady pace, from the
                # first answer on. Backing off, the relay came back 8 s after the camera.
                if relay.link_away:
                    wait = max(RETRY_FLOOR_S, min(LINK_POLL_S, config.retry_max_s))
                await asyncio.sleep(wait)
                if not relay.link_away:
                    wait = next_wait(wait, config.retry_max_s)
    finally:
        sender.rest()
        sender.close()


async def keep_alive(ws: aiohttp.ClientWebSocketResponse) -> None:
    while not ws.closed:
        await asyncio.sleep(KEEPALIVE_S)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_str(KEEPALIVE)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = parse(sys.argv[1:] if argv is None else argv, description=__doc__ or "")
    try:
        return asyncio.run(until_signal(run(config)))
    except Stopped as stop:
        log.info("%s", stop)
        return stop.status
    except KeyboardInterrupt:
        log.info("stopped by SIGINT")
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
