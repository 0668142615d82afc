"""The API's connections are held to the limits of modelplane's other servers before anything else is
checked: a huge request head is a 431 costing one read, a head that does not arrive in time a 408."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import httpx
import pytest

from modelplane.local.api import connection
from modelplane.local.api.server import ApiServer, bind, open_store

HEAD_TIMEOUT = 0.5
ISVCS = "/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices"


@pytest.fixture
def api(tmp_path, monkeypatch):
    monkeypatch.setattr(connection, "HEAD_TIMEOUT", HEAD_TIMEOUT)
    store = open_store(tmp_path)
    server = ApiServer(store, bind("127.0.0.1", 0), token="a-token-of-some-length")
    thread = threading.Thread(target=lambda: asyncio.run(server.run()), daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield server.sock.getsockname()[:2]
    finally:
        server.stop()
        thread.join(timeout=30)
        store.close()


def exchange(address, data: bytes, wait: float = 5.0) -> bytes:
    """What the API answers to `data` on a new connection, until it closes it."""
    with socket.create_connection(address, timeout=wait) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def status_of(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_huge_head_is_a_431_before_the_token_is_asked_for(api):
    started = time.monotonic()
    # 2 MB: far over the limit, and under what the server reads and drops before it closes (more
    # would be cut with a reset, which may overtake the answer).
    head = b"GET /api HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"x" * 2_000_000 + b"\r\n\r\n"
    answer = exchange(api, head)
    code, status = status_of(answer)
    assert (code, status["reason"], status["code"]) == (431, "RequestHeaderFieldsTooLarge", 431)
    assert "larger than 65536 bytes" in status["message"]
    assert time.monotonic() - started < 5
    # Without the token, a request of a normal size is a 401.
    assert httpx.get(f"http://{api[0]}:{api[1]}{ISVCS}").status_code == 401


def test_a_head_that_does_not_arrive_in_time_is_a_408_and_an_idle_connection_is_closed(api):
    started = time.monotonic()
    code, status = status_of(exchange(api, b"GET /api HTTP/1.1\r\nHost: local"))
    assert (code, status["reason"]) == (408, "Timeout")
    assert exchange(api, b"") == b""  # a connection that never sends a byte is closed
    assert time.monotonic() - started < 5


def test_a_kept_alive_connection_and_a_long_answer_are_not_cut(api):
    url = f"http://{api[0]}:{api[1]}"
    headers = {"authorization": "Bearer a-token-of-some-length"}
    with httpx.Client(base_url=url, headers=headers) as client:
        for _ in range(3):  # one connection, requests more than the head timeout apart
            assert client.get(ISVCS).status_code == 200
            time.sleep(HEAD_TIMEOUT / 2)
        # A watch answers for longer than the head timeout.
        started = time.monotonic()
        with client.stream("GET", ISVCS, params={"watch": "true", "timeoutSeconds": "2"}) as watch:
            assert watch.status_code == 200
            list(watch.iter_lines())
        assert time.monotonic() - started > 4 * HEAD_TIMEOUT
