"""Where the embedded control plane keeps its state and where its API listens.

`MODELPLANE_HOME` (default `~/.modelplane`) holds the store; `MODELPLANE_API` (default
`http://127.0.0.1:8180`) is the URL clients use, unless given `--server`; `MODELPLANE_TOKEN` the bearer token
they send, unless given `--token`.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_API_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8180


def modelplane_home() -> Path:
    return Path(os.environ.get("MODELPLANE_HOME") or Path.home() / ".modelplane")


def api_url(server: str | None = None) -> str:
    """The control-plane URL: `server` if given, else `MODELPLANE_API`, else the default."""
    url = server or os.environ.get("MODELPLANE_API") or f"http://{DEFAULT_API_HOST}:{DEFAULT_API_PORT}"
    if "://" not in url:
        url = f"http://{url}"
    return url.rstrip("/")


def api_token(token: str | None = None) -> str | None:
    """The bearer token clients send: `token` if given, else `MODELPLANE_TOKEN`, else none; without the
    whitespace around it, as `modelplane up` reads its token file."""
    return (token or os.environ.get("MODELPLANE_TOKEN") or "").strip() or None


def api_certificate_authority(path: str | None = None) -> str | None:
    """The CA certificate that signed the API's TLS certificate: `path`, else `MODELPLANE_CA`, else the
    system's trusted ones (None)."""
    return path or os.environ.get("MODELPLANE_CA") or None
