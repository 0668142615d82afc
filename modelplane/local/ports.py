"""Choosing a loopback port for a process that has yet to bind it.

A port the kernel hands out for `bind(("127.0.0.1", 0))` comes from the ephemeral range, the same range
outgoing connections take their source ports from: between choosing it and the new process binding it, any
connection on the machine may take it, and the process fails with "address already in use". A port chosen at
random below that range is never taken that way; only a listener could have it, and the bind below checks.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOWEST = 10_000
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def free_loopback_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, outside the range that outgoing connections take theirs from."""
    highest = _first_ephemeral_port() - 1
    for _ in range(100):
        port = random.randint(LOWEST, highest)
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # a machine whose low ports are all taken: the kernel's choice
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _first_ephemeral_port() -> int:
    try:
        first = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default, and below the IANA dynamic range other systems use
    return first if first > LOWEST + 1000 else 32_768
