"""Listener addresses, for the services and the clients alike (a neutral module)."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """Whether a listener on `host` is reachable from this machine only ("" is every
    interface, so not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
