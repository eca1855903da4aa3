"""How log lines look, the server's and its workers' alike: JSON lines for a log collector,
or text for a terminal (--log-format)."""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def formatter(kind: str) -> logging.Formatter:
    if kind == "json":
        return JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s", timestamp=True)
    return logging.Formatter(TEXT_FORMAT)
