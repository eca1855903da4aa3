"""`python -m webapp`: read the settings, start the server."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import sys
import time
import traceback
from pathlib import Path
from typing import NoReturn

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from webapp import tls
from webapp.analysis.fitness import ExerciseDataError
from webapp.app import create_app
from webapp.config import Config, build_parser, json_logs_asked, load_config, unknown_twins
from webapp.config_checks import problems
from webapp.engine.process import WorkerStartError
from webapp.errors import shown
from webapp.log_format import formatter
from webapp.request_secrets import without_secrets

log = logging.getLogger("webapp")


def setup_logging(config: Config) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(config.log_format))
    logging.basicConfig(level=logging.DEBUG if config.verbose else logging.INFO, handlers=[handler])
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.server").addFilter(client_mistakes)
    logging.getLogger("aiohttp.websocket").addFilter(unknown_subprotocols)


def client_mistakes(record: logging.LogRecord) -> bool:
    """aiohttp logs a request it cannot parse (a header over its limit, a line that is not
    HTTP) at ERROR with a traceback: on a public port that is a scanner or a broken client,
    not the server failing. One INFO line says so instead, with the secrets the request
    carried cut out (a key in its query, its Authorization header); the client still gets
    its 400."""
    exc = record.exc_info[1] if record.exc_info else None
    if isinstance(exc, HttpProcessingError):
        record.levelno, record.levelname = logging.INFO, "INFO"
        # aiohttp quotes the offending line and points at it on lines of their own.
        said = without_secrets(" ".join(str(exc.message).split()))[:300]
        record.msg, record.args = "%s: malformed request: %s", (record.getMessage(), said)
        record.exc_info = record.exc_text = None
    elif isinstance(exc, UnicodeEncodeError) and _in_expect_handler(record):
        # aiohttp's refusal of an Expect it does not know, on a path no route serves (each
        # route's is http_errors.expect), quotes the header in its body, and fails to encode
        # one that was not UTF-8: 20 lines of traceback at ERROR for each such request, for
        # anyone to repeat. Its answer is still aiohttp's own 500.
        record.levelno, record.levelname = logging.INFO, "INFO"
        # Read before msg changes: read after, the new words took the peer's place in them.
        said = record.getMessage()
        record.msg, record.args = "%s: an Expect header that is not UTF-8, answered 500", (said,)
        record.exc_info = record.exc_text = None
    return True


def _in_expect_handler(record: logging.LogRecord) -> bool:
    tb = record.exc_info[2] if record.exc_info else None
    return any(
        frame.f_code.co_name == "_default_expect_handler" for frame, _ in traceback.walk_tb(tb)
    )


def unknown_subprotocols(record: logging.LogRecord) -> bool:
    """aiohttp logs each handshake whose Sec-WebSocket-Protocol names none the server
    knows (it knows none) at WARNING, quoting every name: a client's header of 8 KB was a
    WARNING line of 8 KB for each connection it opened. The session goes on without a
    subprotocol, as the RFC says; one INFO line, cut short, says so."""
    args = record.args
    if "Client protocols" in str(record.msg) and isinstance(args, tuple) and len(args) == 3:
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.msg = "%s: WebSocket subprotocols %s asked for; none is served, the session goes on"
        record.args = (args[0], shown(args[1]))
    return True


def tls_context(config: Config) -> tuple[ssl.SSLContext | None, tuple[str, ...]]:
    """The HTTPS context the flags ask for (None for plain HTTP), and the https origins a
    phone on the network may open; raises tls.TlsError."""
    if config.tls_cert:
        cert = Path(config.tls_cert)
        context = tls.server_context(cert, Path(config.tls_key))
        # Bound to loopback, the names the certificate holds lead a phone nowhere: its page
        # drew a code for them all the same.
        if tls.loopback_only(config.host):
            return context, ()
        return context, tuple(tls.certificate_origins(cert, config.port))
    if not config.self_signed:
        return None, ()
    names = tls.machine_names()
    # No shell reads a compose file's or a systemd unit's HOLOTRACK_STATE_DIR=~/holotrack:
    # the private key went into a folder named "~" under wherever the server was started.
    made = tls.self_signed(Path(config.state_dir).expanduser(), names)
    log.info(
        "TLS: %s self-signed certificate %s, valid until %s, SHA-256 %s",
        "reusing the" if made.reused else "made a new",
        made.cert,
        made.not_after.date().isoformat(),
        made.fingerprint,
    )
    origins = tls.phone_origins(config.host, config.port, names)
    if origins:
        if config.local_http_port:
            log.info(
                "on this machine, open http://127.0.0.1:%d/avatar and scan its code (Use a "
                "phone or another computer as the camera) with the phone; OBS reads from "
                "that port too",
                config.local_http_port,
            )
        for origin in origins:
            log.info("open on the phone (accept the warning once): %s/avatar", origin)
    else:
        log.info(
            "listening on %s only: open https://%s:%d/ on this machine; a phone cannot "
            "reach it, add --host 0.0.0.0",
            config.host,
            config.host,
            config.port,
        )
    return tls.server_context(made.cert, made.key), tuple(origins)


class ListenError(Exception):
    """A listening socket could not be opened: said in one line, exit status 2."""


async def serve(app: web.Application, config: Config, ssl_context: ssl.SSLContext | None) -> None:
    """web.run_app's life, with room for a second listener: plain HTTP on loopback beside
    HTTPS (--local-http-port). Serves until SIGINT or SIGTERM, then shuts down in full
    (sessions told 1001, workers stopped) before anything is cancelled."""
    stop = asyncio.Event()
    asked: list[str] = []

    def on_signal(name: str) -> None:
        asked.append(name)
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum.name)
    # A client that leaves ends its handler (aiohttp's handler_cancellation): an upload it
    # abandoned stops being read and waits for no worker. Without it the handler read on
    # into a reset connection and logged a traceback for an everyday event; with it the
    # server runs as every test's server (aiohttp's test server cancels) runs.
    # web.run_app closes idle connections after 75 s; AppRunner's own default is 3630 s,
    # which held a connection that never sent a whole request (slowloris) for an hour.
    runner = web.AppRunner(
        app,
        shutdown_timeout=3.0,
        handler_cancellation=True,
        keepalive_timeout=config.keepalive_timeout,
    )
    await runner.setup()
    try:
        sites = [web.TCPSite(runner, config.host, config.port, ssl_context=ssl_context)]
        if config.local_http_port:
            sites.append(web.TCPSite(runner, "127.0.0.1", config.local_http_port))
        for site in sites:
            try:
                await site.start()
            except OSError as exc:  # in use, not this machine's address, a name not found
                raise ListenError(f"cannot listen on {site.name}: {exc.strerror or exc}") from None
        names = [site.name for site in sites]
        if not config.host:
            # aiohttp names an empty host 0.0.0.0, yet asyncio listens on every IPv6
            # interface as well: the log hid half of what the server was open to.
            names[0] += " and " + names[0].replace("0.0.0.0", "[::]", 1)
        log.info("======== Running on %s ========", ", ".join(names))
        await stop.wait()
        # An operator reading the log saw the sessions' 1001 end lines with nothing to say
        # why, and no word of when the server was done.
        log.info("%s: shutting down (sessions told 1001, then the workers stop)", asked[0])
        began = time.monotonic()
    finally:
        await runner.cleanup()
    log.info("shut down in %.1f s", time.monotonic() - began)


def fail(config: Config, why: str) -> NoReturn:
    """Ends a server that cannot start, exit status 2. A log collector reading JSON lines
    (--log-format json) would drop a bare line of text, and with it the reason."""
    if config.log_format == "json":
        fail_in_json(why)
    print(f"python -m webapp: error: {why}", file=sys.stderr)
    raise SystemExit(2)


def fail_in_json(why: str) -> NoReturn:
    if not logging.getLogger().handlers:
        setup_logging(Config(log_format="json"))
    log.critical("cannot start: %s", why)
    raise SystemExit(2)


def main() -> None:
    config = load_config(
        check=False, on_error=fail_in_json if json_logs_asked(sys.argv[1:]) else None
    )
    setup_logging(config)
    for line in unknown_twins(os.environ):
        log.warning("%s", line)
    found = problems(config)
    if found:
        # A refused setting (HOLOTRACK_HEARTBEAT=0.015 in a compose file) is the likeliest
        # start to fail where JSON lines are read; as text, argparse's usage and error.
        if config.log_format == "json":
            fail(config, "; ".join(found))
        build_parser().error("; ".join(found))
    try:
        ssl_context, phone_origins = tls_context(config)
    except tls.TlsError as exc:
        fail(config, str(exc))
    try:
        app = create_app(config, phone_origins)
    except ExerciseDataError as exc:
        # An operator's edit of exercises.toml: its reason names the exercise and the key,
        # and ended a traceback (exit 1) that a JSON log collector drops.
        fail(config, str(exc))
    try:
        asyncio.run(serve(app, config, ssl_context))
    except (ListenError, WorkerStartError) as exc:
        fail(config, str(exc))


if __name__ == "__main__":
    main()
