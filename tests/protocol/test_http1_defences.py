"""The REST port under attack, in raw bytes: smuggling, huge heads, slow clients, pipelining without
reading, too many idle connections, and headers a model sets. Each is answered as docs/security.md
says, and then a normal request is served correctly."""

from __future__ import annotations

import contextlib
import select
import socket
import threading

import httpx
import orjson
import pytest

from tests.protocol.http1_raw import ResponseReader, exchange
from tests.server.processes import start_models_server

PREDICT = b"POST /v1/models/echo:predict HTTP/1.1\r\nHost: x\r\n"
BODY = b'{"instances":[[1,2]]}'


@pytest.fixture(scope="module")
def short_timeouts_server():
    server = start_models_server("--header-timeout", "1", "--body-timeout", "1")
    yield server
    server.stop()


def served(server) -> None:
    response = httpx.post(f"{server.url}/v1/models/echo:predict", json={"instances": [[1, 2]]}, timeout=10)
    assert response.json() == {"predictions": [[1, 2]]}
    assert server.process.poll() is None


SMUGGLING = {
    "Content-Length and Transfer-Encoding": b"Content-Length: 21\r\nTransfer-Encoding: chunked\r\n",
    "Transfer-Encoding and Content-Length": b"Transfer-Encoding: chunked\r\nContent-Length: 21\r\n",
    "two different Content-Lengths": b"Content-Length: 21\r\nContent-Length: 5\r\n",
    "a Content-Length list": b"Content-Length: 21, 5\r\n",
    "an unknown coding": b"Transfer-Encoding: xchunked\r\n",
    "chunked after identity": b"Transfer-Encoding: identity, chunked\r\n",
    "chunked before identity": b"Transfer-Encoding: chunked, identity\r\n",
    "Transfer-Encoding twice": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    "a space before the colon": b"Transfer-Encoding : chunked\r\n",
    "a vertical tab": b"Transfer-Encoding:\x0bchunked\r\n",
    "a folded line": b"Transfer-Encoding:\r\n chunked\r\n",
    "a negative length": b"Content-Length: -21\r\n",
}


@pytest.mark.parametrize("framing", SMUGGLING)
def test_a_request_framed_two_ways_is_refused_and_the_connection_closed(test_models_server, framing):
    request = PREDICT + SMUGGLING[framing] + b"\r\n" + BODY
    response = exchange(test_models_server.http_port, request)
    assert response.status == 400
    assert orjson.loads(response.body)["error"]
    assert response.closed
    served(test_models_server)


def test_transfer_encoding_on_http_1_0_is_refused(test_models_server):
    request = b"POST /v1/models/echo:predict HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n15\r\n" + BODY
    response = exchange(test_models_server.http_port, request + b"\r\n0\r\n\r\n")
    assert response.status == 400
    assert "HTTP/1.0" in orjson.loads(response.body)["error"]
    served(test_models_server)


def test_chunked_requests_are_served(test_models_server):
    request = PREDICT + b"Transfer-Encoding: chunked\r\n\r\n15\r\n" + BODY + b"\r\n0\r\n\r\n"
    response = exchange(
        test_models_server.http_port, request + b"GET /v2/health/live HTTP/1.1\r\nConnection: close\r\n\r\n"
    )
    assert (response.status, orjson.loads(response.body)) == (200, {"predictions": [[1, 2]]})


def test_a_huge_header_is_refused_after_the_first_bytes(test_models_server):
    """A 100 MB header: the server answers 431 once the head passes 64 KiB, without reading on."""
    sent = 0
    with socket.create_connection(("127.0.0.1", test_models_server.http_port), timeout=30) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nX-Huge: ")
            chunk = b"a" * 65536
            while sent < 100_000_000:
                sock.sendall(chunk)
                sent += len(chunk)
        reader = ResponseReader(sock)
        response = reader.until(1)[0]
    assert response.status == 431
    assert "65536 bytes" in orjson.loads(response.body)["error"]
    assert sent < 20_000_000  # refused as the bytes arrived: the rest was never read
    served(test_models_server)


def test_too_many_headers_are_refused(test_models_server):
    headers = b"".join(b"X-%d: a\r\n" % i for i in range(101))
    response = exchange(test_models_server.http_port, b"GET /v2/health/live HTTP/1.1\r\n" + headers + b"\r\n")
    assert response.status == 431
    assert "100" in orjson.loads(response.body)["error"]
    served(test_models_server)


def test_a_slow_head_is_timed_out_and_no_one_waits_for_it(short_timeouts_server):
    """Slowloris: a head sent a header at a time never completes; other clients are served meanwhile."""
    with socket.create_connection(("127.0.0.1", short_timeouts_server.http_port), timeout=30) as sock:
        sock.sendall(PREDICT)
        served(short_timeouts_server)  # while the slow head is still arriving
        reader = ResponseReader(sock)
        with contextlib.suppress(OSError):
            for number in range(300):
                sock.sendall(b"X-%d: a\r\n" % number)
                sock.settimeout(0.1)
                with contextlib.suppress(TimeoutError):
                    if not reader.read() or reader.complete:
                        break
        sock.settimeout(30)
        response = reader.until(1)[0]
    assert response.status == 408
    assert "did not arrive within 1s" in orjson.loads(response.body)["error"]
    served(short_timeouts_server)


def test_a_body_that_stops_arriving_is_timed_out(short_timeouts_server):
    request = PREDICT + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n" + BODY
    response = exchange(short_timeouts_server.http_port, request)
    assert response.status == 408
    assert "stopped arriving" in orjson.loads(response.body)["error"]
    assert response.closed
    served(short_timeouts_server)


def test_a_connection_that_never_sends_a_request_is_closed(short_timeouts_server):
    with socket.create_connection(("127.0.0.1", short_timeouts_server.http_port), timeout=30) as sock:
        assert sock.recv(100) == b""


def test_past_the_idle_connection_limit_the_longest_idle_closes():
    server = start_models_server("--max-idle-connections", "3")
    try:
        address = ("127.0.0.1", server.http_port)
        with contextlib.ExitStack() as stack:
            first = stack.enter_context(socket.create_connection(address, timeout=30))
            first.sendall(b"GET /v2/health/live HTTP/1.1\r\n")  # a head still arriving counts as idle
            others = [stack.enter_context(socket.create_connection(address, timeout=30)) for _ in range(3)]
            assert first.recv(100) == b""  # the fourth idle connection closed the oldest
            for sock in others:
                sock.sendall(b"GET /v2/health/live HTTP/1.1\r\n\r\n")
                assert ResponseReader(sock).until(1)[0].status == 200
        served(server)
    finally:
        server.stop()


def test_a_client_that_pipelines_and_does_not_read_stops_being_read(test_models_server):
    """Its requests wait in its own socket buffers, not as answers queued in the server's memory."""
    count = 200_000
    requests = memoryview(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n" * count)  # 8 MB
    with socket.create_connection(("127.0.0.1", test_models_server.http_port), timeout=60) as sock:
        sock.setblocking(False)
        sent = 0
        while sent < len(requests):
            if not select.select([], [sock], [], 5)[1]:
                break  # the server stopped reading: the socket buffers are full
            with contextlib.suppress(BlockingIOError):
                sent += sock.send(requests[sent:])
        assert sent < len(requests)
        sock.settimeout(60)
        sender = threading.Thread(target=sock.sendall, args=(requests[sent:],))
        sender.start()
        responses = ResponseReader(sock).until(count)
        sender.join()
    assert len(responses) == count
    assert all(response.status == 200 for response in responses)
    served(test_models_server)


@pytest.mark.parametrize(
    "value",
    ["a\r\nSet-Cookie: session=stolen", "a\nb", "a\x00b", "ünïcode ☃"],
    ids=["CRLF", "LF", "NUL", "non-Latin-1"],
)
def test_a_header_a_model_sets_is_checked_before_it_is_written(test_models_server, value):
    """No response splitting: a header value with CR or LF is the model's bug, answered 500."""
    response = httpx.post(
        f"{test_models_server.url}/v1/models/headers:predict",
        json={"instances": [["x-note", value]]},
        timeout=10,
    )
    assert response.status_code == 500
    assert "response header" in response.json()["error"]
    assert "set-cookie" not in response.headers
    served(test_models_server)


@pytest.mark.parametrize("name", ["content-length", "Transfer-Encoding", "connection", "bad name"])
def test_a_model_cannot_set_the_framing_headers(test_models_server, name):
    response = httpx.post(
        f"{test_models_server.url}/v1/models/headers:predict", json={"instances": [[name, "0"]]}, timeout=10
    )
    assert response.status_code == 500
    assert name in response.json()["error"]


def test_headers_a_model_sets_well_are_sent(test_models_server):
    response = httpx.post(
        f"{test_models_server.url}/v1/models/headers:predict",
        json={"instances": [["X-Note", "a value, with\ttabs and \u00fc"]]},
        timeout=10,
    )
    assert response.status_code == 200
    assert (b"x-note", b"a value, with\ttabs and \xfc") in response.headers.raw
