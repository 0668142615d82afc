"""What every benchmark script needs besides its own measurement: progress lines and free ports."""

from __future__ import annotations

import datetime
import socket
import sys


def log(message: str) -> None:
    """A progress line on stderr, with the time of day."""
    print(f"[{datetime.datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A port the OS picks on loopback (released again for the server to bind)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
