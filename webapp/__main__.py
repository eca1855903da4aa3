"""`python -m webapp`: read the settings, start the server."""

from __future__ import annotations

import logging

from aiohttp import web
from pythonjsonlogger.json import JsonFormatter

from webapp.app import create_app
from webapp.config import Config, load_config

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(config: Config) -> None:
    handler = logging.StreamHandler()
    if config.log_format == "json":
        handler.setFormatter(
            JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s", timestamp=True)
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=logging.DEBUG if config.verbose else logging.INFO, handlers=[handler])
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def main() -> None:
    config = load_config()
    setup_logging(config)
    web.run_app(
        create_app(config),
        host=config.host,
        port=config.port,
        shutdown_timeout=3.0,
        print=lambda text: logging.getLogger("webapp").info("%s", text.strip()),
    )


if __name__ == "__main__":
    main()
