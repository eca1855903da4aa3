"""The relay's settings: one frozen RelayConfig, from flags with environment twins, each
checked with a reason that names the flag."""

from __future__ import annotations

import argparse
import ipaddress
import math
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from yarl import URL

from webapp import flags
from webapp.vmc.sender import Target, parse_targets

# Each flag's twin in the environment: HOLOTRACK_RELAY_TOKEN for --token, and so on.
ENV_PREFIX = "HOLOTRACK_RELAY_"
HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")


@dataclass(frozen=True)
class RelayConfig:
    watch: str
    token: str
    to: tuple[Target, ...]
    retry_max_s: float = 10.0
    # Through the end of the watched session and an unknown token: a kept link comes back.
    wait: bool = False
    # For wss://: the certificates to trust (--cafile), else the system's.
    ssl_context: ssl.SSLContext | None = None

    @property
    def shown(self) -> str:
        """--watch as the log and messages name it: a proxy's password given in it
        (wss://me:secret@host/ws) was written out at every retry."""
        url = URL(self.watch)
        return str(url.with_password("***")) if url.password else self.watch


def cafile(text: str) -> ssl.SSLContext:
    """--cafile: a context that trusts the PEM certificates in `text`, or an error that says
    why it cannot."""
    try:
        return ssl.create_default_context(cafile=text)
    except (OSError, ssl.SSLError) as error:
        why = f"{text!r}: not a PEM certificate file ({error})"
        raise argparse.ArgumentTypeError(why) from None


def watch_url(text: str) -> str:
    """--watch: a ws:// or wss:// URL with a host, or an error that says what is wrong."""
    try:
        url = URL(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a URL: {error}") from None
    if url.scheme not in ("ws", "wss"):
        raise argparse.ArgumentTypeError(f"{text!r}: must be a ws:// or wss:// URL")
    if not url.raw_host:
        raise argparse.ArgumentTypeError(f"{text!r} names no host")
    if not _is_host(url.raw_host):
        raise argparse.ArgumentTypeError(f"{text!r}: {url.host!r} is not a host name or address")
    if url.explicit_port == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: port 0 is no server's port")
    return text


def _is_host(host: str) -> bool:
    """An IP address or a DNS name (IDNs as yarl encodes them): anything else would only
    be retried until killed, each try failing to resolve."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return HOSTNAME.fullmatch(host) is not None
    return True


@dataclass(frozen=True)
class RelayFlags:
    """The relay's flags as given, each with its twin in the environment; parse() checks
    and converts them into a RelayConfig."""

    watch: str = field(default="", metadata={"help": "the server's /ws URL (ws:// or wss://)"})
    token: str = field(
        default="",
        metadata={
            "help": "the watch token the page shows (its environment twin keeps it out of ps)"
        },
    )
    to: str = field(
        default="127.0.0.1:39539",
        metadata={"help": "the local VMC receivers, HOST:PORT[,HOST:PORT...]"},
    )
    retry_max: float = field(
        default=10.0,
        metadata={"help": "longest wait between reconnects, seconds (never under 0.1)"},
    )
    cafile: str = field(
        default="",
        metadata={
            "help": "trust the certificate(s) in this PEM file for wss:// (a --self-signed "
            "server's self-signed-cert.pem, from its state folder)"
        },
    )
    wait: bool = field(
        default=False,
        metadata={
            "help": "keep waiting when the watched session ends or the server does not know "
            "the token: for a kept link (the avatar page's), which comes back with its camera"
        },
    )


def _named(flag: str) -> str:
    return f"--{flag.replace('_', '-')} [{flags.env_name(ENV_PREFIX, flag)}]"


def _converted(given: RelayFlags) -> RelayConfig:
    """`given` checked and converted; ValueError naming the flag and its twin."""
    try:
        watch = watch_url(given.watch) if given.watch else None
    except argparse.ArgumentTypeError as error:
        raise ValueError(f"{_named('watch')}: {error}") from None
    if watch is None:
        raise ValueError(f"{_named('watch')} is required: the server's /ws URL")
    if not given.token.strip():
        raise ValueError(
            f"{_named('token')} is empty or missing: give the watch token the page shows"
        )
    try:
        targets = parse_targets(given.to)
    except ValueError as error:
        raise ValueError(f"{_named('to')}: {error}") from None
    if not targets:
        raise ValueError(f"{_named('to')}: name at least one receiver, HOST:PORT")
    if not (math.isfinite(given.retry_max) and given.retry_max > 0):
        raise ValueError(f"{_named('retry_max')}: must be a positive number of seconds")
    try:
        context = cafile(given.cafile) if given.cafile else None
    except argparse.ArgumentTypeError as error:
        raise ValueError(f"{_named('cafile')}: {error}") from None
    # A token is base64url, never spaces: the one around it came with the copy (`set
    # HOLOTRACK_RELAY_TOKEN=abc ` in Windows' cmd keeps the trailing one), and the server
    # answered 4003, "does not know this watch token", for the right token.
    token = given.token.strip()
    return RelayConfig(watch, token, targets, given.retry_max, given.wait, context)


PROG = "python -m webapp.vmc.relay"


def parse(
    argv: Sequence[str], environ: Mapping[str, str] | None = None, description: str = ""
) -> RelayConfig:
    """The relay's settings from its flags, each of which may come from its twin in the
    environment instead (a token there stays out of `ps`); a flag wins. `description`
    heads --help."""
    given = flags.load(
        RelayFlags,
        prefix=ENV_PREFIX,
        prog=PROG,
        description=description,
        validate=lambda _: [],
        argv=argv,
        environ=environ,
    )
    try:
        return _converted(given)
    except ValueError as error:
        # As flags.load refuses a setting: the usage line, the reason, status 2.
        flags.build_parser(RelayFlags, ENV_PREFIX, PROG, description).error(str(error))
