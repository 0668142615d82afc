"""Whether a host names this machine's loopback interface (where only its own processes reach)."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """`host` is `localhost`, a loopback address, or one of them with a port (`[::1]:8080` for IPv6)."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") and "]:" in host else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
