"""A browser origin as written in --allowed-origins and as a browser sends it, compared as
one: scheme and host in lower case, the scheme's default port left out."""

from __future__ import annotations

from urllib.parse import urlsplit

from yarl import URL

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_key(text: str) -> str | None:
    """`scheme://host[:port]` as browsers serialise it, or None for what is no origin (a
    bare host name, a path, a port that is not a number)."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:  # "http://[x", "https://host:99999"
        return None
    if not parts.scheme or not parts.hostname or parts.path not in {"", "/"}:
        return None
    # A browser sends its own host, never a pattern: https://*.example.org matched none.
    if "*" in parts.hostname:
        return None
    if parts.query or parts.fragment or parts.username is not None:
        return None
    scheme = parts.scheme.lower()
    try:
        # A browser sends an internationalised host in its ASCII form (xn--...): the same
        # site listed as the address bar shows it, https://bücher.example, refused it.
        # yarl's is the browsers' encoding (UTS 46, IDNA 2008); Python's "idna" codec is
        # IDNA 2003's, which made https://faß.de fass.de, where browsers send xn--fa-hia.de.
        hostname = URL.build(host=parts.hostname).raw_host
    except ValueError:  # a character no host may have
        return None
    if not hostname:
        return None
    host = f"[{hostname}]" if ":" in hostname else hostname
    if port is None or port == DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def allowed_origins(setting: str) -> tuple[set[str], list[str]]:
    """The origins --allowed-origins lists, and the entries of it that are no origin."""
    allowed: set[str] = set()
    wrong: list[str] = []
    for entry in setting.split(","):
        if not entry.strip():
            continue
        key = origin_key(entry)
        if key is None:
            wrong.append(entry.strip())
        else:
            allowed.add(key)
    return allowed, wrong
