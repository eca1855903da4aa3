"""`python -m webapp`: read the settings, start the server."""

from __future__ import annotations

import logging

from aiohttp import web

from webapp.app import create_app
from webapp.config import load_config


def main() -> None:
    config = load_config()
    logging.basicConfig(
        level=logging.DEBUG if config.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    web.run_app(
        create_app(config),
        host=config.host,
        port=config.port,
        shutdown_timeout=3.0,
        print=lambda text: logging.getLogger("webapp").info("%s", text.strip()),
    )


if __name__ == "__main__":
    main()
