"""Bytes-level pieces of HTTP/1.1 the proxy writes: heads, chunks, and its own JSON error replies."""

from __future__ import annotations

import contextlib
from http import HTTPStatus
from random import getrandbits

import orjson

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

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"


def connection_headers(value: bytes) -> frozenset[bytes]:
    """The header names a Connection header lists (they are hop-by-hop too), lower case."""
    names = {token.strip().lower() for token in value.split(b",")}
    names -= CONNECTION_OPTIONS
    names.discard(b"")
    return frozenset(names)


def chunk(data: bytes) -> bytes:
    """`data` framed as one chunk of a chunked body."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def new_request_id() -> bytes:
    """A random (version 4) UUID for `x-request-id`; a tracing id, so `random` is random enough."""
    value = getrandbits(128)
    value = (value & ~(0xF000 << 64)) | (0x4000 << 64)  # version 4
    value = (value & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
    digits = b"%032x" % value
    return b"-".join((digits[:8], digits[8:12], digits[12:16], digits[16:20], digits[20:]))


_status_lines: dict[tuple[int, bytes], bytes] = {}


def status_line(status: int, reason: bytes) -> bytes:
    key = (status, reason)
    line = _status_lines.get(key)
    if line is None:
        if not reason:
            with contextlib.suppress(ValueError):
                reason = HTTPStatus(status).phrase.encode()
        line = b"HTTP/1.1 %d %b\r\n" % (status, reason)
        if len(_status_lines) < 512:  # replicas choose the reason phrases: keep the cache small
            _status_lines[key] = line
    return line


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
