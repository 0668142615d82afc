"""Whether a host names this machine's loopback interface (where only its own processes reach)."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """`host` is `localhost`, a loopback address, or one of them with a port (`[::1]:8080` for IPv6)."""
    if host.startswith("["):  # [::1] or [::1]:8080
        name = host[1:].partition("]")[0]
    elif host.count(":") == 1:  # a name or IPv4 address with a port
        name = host.partition(":")[0]
    else:  # a name, an IPv4 address, or a bare IPv6 one
        name = host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
