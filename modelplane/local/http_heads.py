"""The heads the proxy writes: the request head for the replica, the response head for the client.

Pure functions over httptools' raw header pairs. Hop-by-hop headers stay behind, the gateway's own
headers (`x-request-id`, `x-forwarded-for`, framing, `connection`) are added.
"""

from __future__ import annotations

from typing import NamedTuple

from modelplane.local.http_messages import HOP_BY_HOP, connection_headers, new_request_id, status_line


class RequestHead(NamedTuple):
    """A client's request head, rewritten for the replica, and what the proxy needs to know of it."""

    head: bytes
    host: bytes
    request_id: bytes
    generated_request_id: bool
    chunked: bool
    expect_continue: bool


def request_head(
    method: bytes, url: bytes, headers: list[tuple[bytes, bytes]], peer_ip: bytes
) -> RequestHead:
    lowered = [(name.lower(), name, value) for name, value in headers]
    drop = HOP_BY_HOP
    host = request_id = forwarded_for = b""
    chunked = expect_continue = False
    for lower, _, value in lowered:
        if lower == b"host":
            host = value
        elif lower == b"x-request-id":
            request_id = value
        elif lower == b"connection":
            drop = drop | connection_headers(value)
        elif lower == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif lower == b"expect":
            expect_continue = value.lower() == b"100-continue"
        elif lower == b"x-forwarded-for":
            forwarded_for = value
    head = [method, b" ", url, b" HTTP/1.1\r\n"]
    for lower, name, value in lowered:
        # Expect is answered by the gateway itself; x-forwarded-for is rewritten below.
        if lower in drop or lower == b"expect" or lower == b"x-forwarded-for":
            continue
        head.append(b"%b: %b\r\n" % (name, value))
    generated = not request_id
    if generated:
        request_id = new_request_id()
        head.append(b"x-request-id: %b\r\n" % request_id)
    forwarded_for = b"%b, %b" % (forwarded_for, peer_ip) if forwarded_for else peer_ip
    head.append(b"x-forwarded-for: %b\r\n" % forwarded_for)
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
    drop = HOP_BY_HOP
    for name, value in headers:
        lower = name.lower()
        if lower == b"connection":
            drop = drop | connection_headers(value)
        elif lower == b"x-request-id":
            request_id = None
    head = [status_line(status, reason)]
    for name, value in headers:
        if name.lower() not in drop:
            head.append(b"%b: %b\r\n" % (name, value))
    if request_id:
        head.append(b"x-request-id: %b\r\n" % request_id)
    if chunked:
        head.append(b"transfer-encoding: chunked\r\n")
    if close:
        head.append(b"connection: close\r\n")
    elif keep_alive_header:
        head.append(b"connection: keep-alive\r\n")
    head.append(b"\r\n")
    return b"".join(head)
