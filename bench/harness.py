"""What every benchmark script needs besides its own measurement: progress lines, free ports, and the
commit of the modelplane it measures."""

from __future__ import annotations

import datetime
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    """A progress line on stderr, with the time of day."""
    print(f"[{datetime.datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A port the OS picks on loopback (released again for the server to bind)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def modelplane_commit() -> str:
    """The commit of the checkout modelplane runs from, '+dirty' with local edits under modelplane/."""
    git = ["git", "-C", str(REPO)]
    rev = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "modelplane"], capture_output=True, text=True
    )
    return (rev or "?") + ("+dirty" if dirty.stdout.strip() else "")
