"""Which clients go together for the limits that one household must not escape by
changing addresses: an IPv6 client is counted by its /64 (live/guard.counted_as), and a
home or an office is handed a /56 or a /48 of them (RFC 6177), 256 or 65,536 /64s to
pick from. Its /56 is its site: a home's whole share, where a /48 would put up to 256
homes of one provider together."""

from __future__ import annotations

import ipaddress

SITE_PREFIX = 56


def site_of(client: str) -> str | None:
    """The /56 of an IPv6 client as counted_as names it (its /64); None for any other."""
    try:
        network = ipaddress.ip_network(client)
    except ValueError:
        return None
    if network.version != 6 or network.prefixlen < SITE_PREFIX:
        return None
    return str(network.supernet(new_prefix=SITE_PREFIX))
