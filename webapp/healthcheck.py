"""`python -m webapp.healthcheck`: exit 0 when the server on this machine answers /healthz.

The image's HEALTHCHECK runs it in the server's own environment, so it reads the same
settings (`HOLOTRACK_*`, and any flags given to it) and asks where that server listens:
over HTTPS when it serves HTTPS, else over plain HTTP. A fixed http:// URL marked every
server started with a certificate unhealthy for ever.
"""

from __future__ import annotations

import ssl
import sys
import urllib.request
from collections.abc import Sequence

from webapp.config import Config, load_config

TIMEOUT = 4.0
# Addresses that mean "every interface", and the loopback the server is reached on there:
# asyncio listens on "::" for IPv6 alone (IPV6_V6ONLY), so 127.0.0.1 was refused.
LOOPBACK = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def health_url(config: Config) -> str:
    if config.local_http_port:
        return f"http://127.0.0.1:{config.local_http_port}/healthz"
    host = LOOPBACK.get(config.host, config.host)
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if config.tls_cert or config.self_signed else "http"
    return f"{scheme}://{host}:{config.port}/healthz"


def main(argv: Sequence[str] | None = None) -> int:
    # Files unread: a keys file or an avatar replaced by a bad one since the start is the
    # server's to refuse (a reload keeps the keys in force); read, it exited 2, and the
    # container was marked unhealthy and replaced by one that would not start.
    config = load_config(
        argv,
        read_files=False,
        prog="python -m webapp.healthcheck",
        description="Exit 0 when the server these settings describe answers /healthz on this "
        "machine, else 1. It reads the server's own flags and environment twins.",
    )
    url = health_url(config)
    # The certificate names the machine for phones; this asks whether the server is up,
    # not whether a client would trust it.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    # No proxy: the server is on this machine, and a container's HTTP_PROXY (set for its
    # outgoing traffic) sent the check to the proxy, which marked a healthy server unhealthy.
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    try:
        with opener.open(url, timeout=TIMEOUT) as reply:
            status = int(reply.status)
    except OSError as exc:  # refused, timed out, or an HTTP error status (HTTPError)
        print(f"{url}: {exc}", file=sys.stderr)
        return 1
    return 0 if status == 200 else 1


if __name__ == "__main__":
    raise SystemExit(main())
