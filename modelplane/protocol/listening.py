"""Listening sockets on IPv4 or IPv6 addresses, and the host part of the URLs that name them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

logger = logging.getLogger(__name__)
POLL_SECONDS = 0.2  # between tries to reach a server that is not listening yet


def bare_host(host: str) -> str:
    """`host` without the brackets of an IPv6 literal (`[::1]` is `::1`)."""
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def url_host(host: str) -> str:
    """`host` as a URL writes it: an IPv6 literal in brackets."""
    host = bare_host(host)
    return f"[{host}]" if ":" in host else host


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A TCP socket listening on `host` (a name, an IPv4 or an IPv6 address) and `port` (0: any)."""
    host = bare_host(host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


async def wait_until_listening(host: str, port: int, what: str, stopping: asyncio.Event) -> bool:
    """Waits until `what` (a server, for the log) takes connections on `host`:`port`; False if
    `stopping` is set first."""
    logged = False
    while not stopping.is_set():
        try:
            _, writer = await asyncio.open_connection(bare_host(host), port)
        except OSError:
            if not logged:
                logger.info("waiting for %s at %s:%d", what, url_host(host), port)
                logged = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), POLL_SECONDS)
            continue
        writer.close()
        return True
    return False
