"""The heads the proxy writes: the request head for the replica, the response head for the client.

Pure functions over httptools' raw header pairs. Hop-by-hop headers stay behind, the gateway's own
headers (`x-request-id`, `x-forwarded-for`, framing, `connection`) are added.
"""

from __future__ import annotations

from typing import NamedTuple

from modelplane.local.gateway.http1.messages import HOP_BY_HOP, connection_headers
from modelplane.protocol.http1_wire import status_line
from modelplane.protocol.random_ids import random_uuid_bytes


class RequestHead(NamedTuple):
    """A client's request head, rewritten for the replica, and what the proxy needs to know of it."""

    head: bytes
    host: bytes
    request_id: bytes
    generated_request_id: bool
    chunked: bool
    expect_continue: bool


# Request headers the proxy looks at; any other header is copied as it is.
_COPIED_NOTED = frozenset({b"host", b"x-request-id"})
_REQUEST_NOTED = HOP_BY_HOP | _COPIED_NOTED | {b"expect", b"x-forwarded-for"}


def request_head(
    method: bytes, url: bytes, headers: list[tuple[bytes, bytes]], peer_ip: bytes
) -> RequestHead:
    head = [method, b" ", url, b" HTTP/1.1\r\n"]
    host = request_id = forwarded_for = b""
    chunked = expect_continue = False
    named_by_connection: frozenset[bytes] = frozenset()
    for name, value in headers:
        lower = name.lower()
        if lower in _REQUEST_NOTED:
            if lower == b"host":
                host = value
            elif lower == b"x-request-id":
                request_id = value
            else:
                if lower == b"connection":
                    named_by_connection = connection_headers(value)
                elif lower == b"transfer-encoding":
                    chunked = b"chunked" in value.lower()
                elif lower == b"expect":
                    expect_continue = value.lower() == b"100-continue"
                elif lower == b"x-forwarded-for":
                    forwarded_for = value
                continue  # not copied: hop-by-hop, Expect (answered here), x-forwarded-for (rewritten)
        head += (name, b": ", value, b"\r\n")
    if named_by_connection:
        # Rare: Connection names other headers, which are hop-by-hop too. Copy again without them.
        head = [method, b" ", url, b" HTTP/1.1\r\n"]
        for name, value in headers:
            lower = name.lower()
            if lower in _COPIED_NOTED or not (lower in _REQUEST_NOTED or lower in named_by_connection):
                head += (name, b": ", value, b"\r\n")
    generated = not request_id
    if generated:
        request_id = random_uuid_bytes()
        head += (b"x-request-id: ", request_id, b"\r\n")
    head += (b"x-forwarded-for: ", forwarded_for + b", " + peer_ip if forwarded_for else peer_ip, b"\r\n")
    if chunked:
        head.append(b"transfer-encoding: chunked\r\n")
    head.append(b"\r\n")
    return RequestHead(b"".join(head), host, request_id, generated, chunked, expect_continue)


def response_head(
    status: int,
    reason: bytes,
    headers: list[tuple[bytes, bytes]],
    *,
    request_id: bytes | None,
    chunked: bool,
    close: bool,
    keep_alive_header: bool,
) -> bytes:
    """The replica's response head for the client.

    `request_id` is added unless the replica sent one; `chunked` when the proxy re-frames a body of
    unknown length; `close` or `keep_alive_header` say what happens to the client connection.
    """
    head = [status_line(status, reason)]
    named_by_connection: frozenset[bytes] = frozenset()
    for name, value in headers:
        lower = name.lower()
        if lower in HOP_BY_HOP:
            if lower == b"connection":
                named_by_connection = connection_headers(value)
            continue
        if lower == b"x-request-id":
            request_id = None
        head += (name, b": ", value, b"\r\n")
    if named_by_connection:
        # Rare: Connection names other headers, which are hop-by-hop too. Copy again without them.
        head = [status_line(status, reason)]
        for name, value in headers:
            lower = name.lower()
            if lower not in HOP_BY_HOP and lower not in named_by_connection:
                head += (name, b": ", value, b"\r\n")
    if request_id:
        head += (b"x-request-id: ", request_id, b"\r\n")
    if chunked:
        head.append(b"transfer-encoding: chunked\r\n")
    if close:
        head.append(b"connection: close\r\n")
    elif keep_alive_header:
        head.append(b"connection: keep-alive\r\n")
    head.append(b"\r\n")
    return b"".join(head)
