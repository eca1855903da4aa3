"""How log lines look, the server's and its workers' alike: JSON lines for a log collector,
or text for a terminal (--log-format)."""

from __future__ import annotations

import logging
import re

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def formatter(kind: str) -> logging.Formatter:
    if kind == "json":
        return JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s", timestamp=True)
    return logging.Formatter(TEXT_FORMAT)


# What a request carries that is worth a session or a key: the query's access key and watch
# or link token, a pairing code or a watch token in the path, and the headers that hold the
# access key or a link's secrets (its key, its token, its camera's resume string), as
# deploy/nginx cuts them from its access log.
# A value runs on past a backslash: aiohttp quotes the line as bytes, and the stray byte
# that made it malformed (\x01) may sit inside the secret, whose rest followed in clear.
_SECRET_QUERY = re.compile(r"(?i)([?&;](?:key|watch|link)=)[^&;\s'\"]*")
_SECRET_PATH = re.compile(r"(/api/pair/|/api/avatar/|/api/emotion/|/avatar/link/)[^/?\s'\"]+")
# Whitespace before the colon is what makes such a header malformed ("Invalid header token").
_SECRET_HEADER = re.compile(
    r"(?i)\b(authorization|holotrack-(?:link-key|watch-token|resume))\s*:.*"
)


def without_secrets(text: str) -> str:
    """`text`, a request's words as a client sent them, with every secret cut out: a line
    a client got wrong would otherwise name its access key or its link."""
    text = _SECRET_QUERY.sub(r"\1-", text)
    text = _SECRET_PATH.sub(r"\1-", text)
    return _SECRET_HEADER.sub(r"\1: -", text)
