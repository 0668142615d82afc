"""Bearer-token authentication of the control-plane API (`modelplane up --auth-token-file FILE`).

Every request but the health checks must carry `Authorization: Bearer <token>`; anything else is a
401, as a Kubernetes API server answers it. The token is compared in constant time and never logged.
"""

from __future__ import annotations

from pathlib import Path

from modelplane.local.api.errors import Unauthorized
from modelplane.protocol.bearer import bearer_matches

HEALTH_PATHS = ("/healthz", "/livez", "/readyz")


class TokenFileError(Exception):
    """A token file that cannot be used."""


def read_token_file(path: str | Path) -> str:
    """The token in a file: its content without surrounding whitespace; refused if empty or short."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenFileError(
            f"cannot read the token file {path}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    if len(token) < 16:
        raise TokenFileError(f"the token in {path} is shorter than 16 characters; use a long random one")
    if any(char.isspace() for char in token):
        raise TokenFileError(f"the token in {path} holds whitespace; use one line of letters and digits")
    return token


class BearerToken:
    def __init__(self, token: str):
        self._token = token.encode()

    def check(self, path: str, headers: dict[str, str]) -> None:
        if path.rstrip("/") in HEALTH_PATHS:
            return
        given = headers.get("authorization", "").encode("latin-1", "replace")
        if not bearer_matches(given, self._token):
            raise Unauthorized("Unauthorized: this API needs Authorization: Bearer <token>")
