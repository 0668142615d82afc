"""The bytes of HTTP/1.1 that every server and proxy of modelplane writes the same way: status lines,
chunks, the interim `100 Continue`, `Warning` headers."""

from __future__ import annotations

import contextlib
from http import HTTPStatus

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"

_status_lines: dict[tuple[int, bytes], bytes] = {}


def status_line(status: int, reason: bytes = b"") -> bytes:
    """`HTTP/1.1 <status> <reason>` and its CRLF; with no reason, the standard phrase (if any)."""
    key = (status, reason)
    line = _status_lines.get(key)
    if line is None:
        if not reason:
            with contextlib.suppress(ValueError):
                reason = HTTPStatus(status).phrase.encode()
        line = b"HTTP/1.1 %d %b\r\n" % (status, reason)
        if len(_status_lines) < 512:  # a proxy's upstreams choose the reason phrases: keep the cache small
            _status_lines[key] = line
    return line


def chunk(data: bytes) -> bytes:
    """`data` framed as one chunk of a chunked body."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def origin_form(target: bytes) -> tuple[bytes, bytes | None]:
    """A request target as its path and query, and the authority it names when it came in absolute
    form (`http://host/path`, which RFC 9112 has servers accept; its host is the request's host)."""
    if target[:1] == b"/" or b"://" not in target[:8]:
        return target, None
    scheme, _, rest = target.partition(b"://")
    if scheme.lower() not in (b"http", b"https"):
        return target, None
    authority, slash, path = rest.partition(b"/")
    query = b""
    if not slash:
        authority, mark, query = authority.partition(b"?")
        query = mark + query
    return b"/" + path + query, authority


def warning_headers(warnings: list[str]) -> list[tuple[bytes, bytes]]:
    """`Warning: 299 - "<text>"` headers (RFC 7234), one per warning, as Kubernetes' API server sends them
    and kubectl prints them."""
    headers = []
    for text in warnings:
        # Texts may hold what a user sent: control and non-ASCII characters travel escaped (`\x1f`).
        quoted = text.encode("unicode_escape").replace(b'"', b'\\"')
        headers.append((b"warning", b'299 - "%b"' % quoted))
    return headers
