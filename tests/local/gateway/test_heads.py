"""How the gateway rewrites request and response heads (pure functions, no processes)."""

from __future__ import annotations

import uuid

from modelplane.local.gateway.http1.heads import request_head, response_head

CLIENT_HEADERS = [
    (b"Host", b"iris.default.localhost:8080"),
    (b"Connection", b"keep-alive, X-Hop"),
    (b"X-Hop", b"1"),
    (b"Keep-Alive", b"timeout=5"),
    (b"Transfer-Encoding", b"chunked"),
    (b"Expect", b"100-continue"),
    (b"X-Forwarded-For", b"10.0.0.1"),
    (b"Content-Type", b"application/json"),
]


def test_the_request_head_drops_hop_by_hop_headers_and_adds_the_gateways():
    head = request_head(b"POST", b"/v1/models/iris:predict", CLIENT_HEADERS, b"127.0.0.1")
    lines = head.head.split(b"\r\n")
    assert lines[0] == b"POST /v1/models/iris:predict HTTP/1.1"
    assert lines[1:3] == [b"Host: iris.default.localhost:8080", b"Content-Type: application/json"]
    assert lines[3] == b"x-request-id: " + head.request_id
    assert lines[4:] == [b"x-forwarded-for: 10.0.0.1, 127.0.0.1", b"transfer-encoding: chunked", b"", b""]
    assert uuid.UUID(head.request_id.decode()).version == 4
    assert head.generated_request_id and head.chunked and head.expect_continue
    assert head.host == b"iris.default.localhost:8080"


def test_a_request_id_from_the_client_is_kept():
    head = request_head(b"GET", b"/", [(b"host", b"h"), (b"X-Request-ID", b"abc")], b"::1")
    assert (head.request_id, head.generated_request_id) == (b"abc", False)
    assert head.head == b"GET / HTTP/1.1\r\nhost: h\r\nX-Request-ID: abc\r\nx-forwarded-for: ::1\r\n\r\n"


def test_the_response_head_is_reframed_for_the_client():
    upstream = [
        (b"content-type", b"text/plain"),
        (b"Connection", b"close, X-Internal"),
        (b"X-Internal", b"secret"),
        (b"Transfer-Encoding", b"chunked"),
    ]
    head = response_head(
        200, b"OK", upstream, request_id=b"id-1", chunked=True, close=False, keep_alive_header=False
    )
    assert head == (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-request-id: id-1\r\ntransfer-encoding: chunked\r\n\r\n"
    )


def test_the_response_keeps_the_replicas_request_id_and_says_close():
    upstream = [(b"x-request-id", b"from-replica"), (b"content-length", b"0")]
    head = response_head(
        204, b"", upstream, request_id=b"ours", chunked=False, close=True, keep_alive_header=True
    )
    assert head == (
        b"HTTP/1.1 204 No Content\r\nx-request-id: from-replica\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
