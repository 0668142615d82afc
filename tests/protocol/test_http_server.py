"""The router's HTTP server, spoken to over raw sockets: framing, keep-alive, timeouts."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from tests.graph.conftest import Router, graph, sequence


def connect(router) -> socket.socket:
    url = urlsplit(router.url)
    sock = socket.create_connection((url.hostname, url.port), timeout=30)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything until the router closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def read_head(stream) -> bytes:
    """The status line and headers of a response, from `sock.makefile("rb")`."""
    lines = []
    while (line := stream.readline()) not in (b"\r\n", b""):
        lines.append(line)
    return b"".join(lines)


def read_response(stream) -> tuple[bytes, bytes]:
    """One Content-Length framed response: (head, body)."""
    head = read_head(stream)
    length = int(
        next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")).split(b":")[
            1
        ]
    )
    return head, stream.read(length)


def post(body: bytes, extra: bytes = b"") -> bytes:
    return b"POST / HTTP/1.1\r\nHost: r\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


@pytest.fixture(scope="module")
def echo_router(stub):
    """One router for the module: each test opens its own connections."""
    spec = graph(sequence({"serviceUrl": stub.at("/echo")}))
    spec["routerTimeouts"] = {"serverRead": 1, "serverIdle": 1}
    router = Router(spec)
    yield router
    router.stop()


def test_pipelined_requests_are_answered_in_order(echo_router):
    head_request = b'HEAD / HTTP/1.1\r\nHost: r\r\nContent-Length: 7\r\n\r\n{"n":3}'
    with connect(echo_router) as sock, sock.makefile("rb") as stream:
        sock.sendall(post(b'{"n":1}') + post(b'{"n":2}') + head_request + post(b'{"n":4}'))
        first, second = read_response(stream), read_response(stream)
        assert first[0].startswith(b"HTTP/1.1 200 OK\r\n") and json.loads(first[1]) == {"n": 1}
        assert json.loads(second[1]) == {"n": 2}
        assert b"Content-Length: 7" in read_head(
            stream
        )  # HEAD: the length of the body it would have sent, and no body
        assert json.loads(read_response(stream)[1]) == {"n": 4}


@pytest.mark.parametrize("expectation", [b"100-continue", b"100-Continue"])  # case-insensitive (RFC 9110)
def test_expect_100_continue_is_answered(echo_router, expectation):
    with connect(echo_router) as sock, sock.makefile("rb") as stream:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: r\r\nContent-Length: 2\r\nExpect: " + expectation + b"\r\n\r\n"
        )
        assert stream.readline() + stream.readline() == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"{}")
        assert read_response(stream)[1] == b"{}"


def test_a_request_that_does_not_arrive_within_server_read_gets_408(echo_router):
    with connect(echo_router) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: r\r\nContent-Length: 10\r\n\r\n{")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"Connection: close" in answer
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body == {
        "error": "Failed to process request",
        "cause": "the request did not arrive within the serverRead timeout of 1s",
    }


def test_an_idle_connection_is_closed_after_server_idle(echo_router):
    with connect(echo_router) as sock, sock.makefile("rb") as stream:
        sock.sendall(post(b"{}"))
        read_response(stream)
        assert stream.read() == b""  # closed by the router, with nothing more said


def test_a_malformed_request_gets_400_and_a_closed_connection(echo_router):
    with connect(echo_router) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        assert read_all(sock).startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_http_1_0_is_answered_and_closed(echo_router):
    with connect(echo_router) as sock:
        sock.sendall(b"POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"\r\n\r\n{}")


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
        b"Content-Length: 2\r\nContent-Length: 3\r\n",
        b"Transfer-Encoding: identity, chunked\r\n",
    ],
)
def test_a_request_framed_two_ways_gets_400_and_a_closed_connection(echo_router, framing):
    with connect(echo_router) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: r\r\n" + framing + b"\r\n2\r\n{}\r\n0\r\n\r\n")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "Failed to process request"


def test_a_head_above_the_limit_gets_431_as_it_arrives(echo_router):
    with connect(echo_router) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: r\r\nX-Large: " + b"a" * 70_000 + b"\r\n\r\n")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert "65536 bytes" in json.loads(answer.split(b"\r\n\r\n", 1)[1])["cause"]
