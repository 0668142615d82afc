"""Bytes-level pieces of HTTP/1.1 the proxy writes: heads, chunks, and its own JSON error replies."""

from __future__ import annotations

import orjson

from modelplane.protocol.http1_wire import status_line

# Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus the proxy-only ones.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Tokens that may appear in Connection without naming another header.
CONNECTION_OPTIONS = frozenset({b"close", b"keep-alive", b"upgrade"})


def connection_headers(value: bytes) -> frozenset[bytes]:
    """The header names a Connection header lists (they are hop-by-hop too), lower case."""
    names = {token.strip().lower() for token in value.split(b",")}
    names -= CONNECTION_OPTIONS
    names.discard(b"")
    return frozenset(names)


def error_response(status: int, message: str, request_id: bytes | None, close: bool) -> bytes:
    """A complete response `{"error": message}` from the gateway itself."""
    body = orjson.dumps({"error": message})
    head = [
        status_line(status, b""),
        b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body),
    ]
    if request_id:
        head.append(b"x-request-id: %b\r\n" % request_id)
    if status == 401:
        head.append(b"www-authenticate: Bearer\r\n")
    if close:
        head.append(b"connection: close\r\n")
    head.append(b"\r\n")
    head.append(body)
    return b"".join(head)
