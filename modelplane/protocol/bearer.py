"""Checking `Authorization: Bearer <token>` (RFC 6750), for the control-plane API and the gateway.

The scheme's name is case-insensitive (RFC 9110, 11.1), as Kubernetes' API server reads it; the token
is compared in constant time.
"""

from __future__ import annotations

import hmac


def bearer_matches(header: bytes, token: bytes) -> bool:
    """Whether an `Authorization` header's value is the Bearer credentials `token`."""
    scheme, _, given = header.partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(b" "), token)
