"""Responses that carry no body by HTTP's rules (204, 304, any answer to HEAD) from a replica that
writes one anyway: its stray bytes must not be read as the answer to the next request."""

from __future__ import annotations

import contextlib
import socket
import threading

import httpx
import pytest

from modelplane.local.gateway.routes import Backend, Route, RouteTable
from modelplane.local.gateway.server import GatewayConfig, GatewayThread

HOST = "stray.default.localhost"


@contextlib.contextmanager
def stray_bytes_replica(bodiless_head: bytes, stray: bytes):
    """A replica that answers `/bodiless` with `bodiless_head`, and writes `stray` on that connection
    only when the next request comes on it: the worst moment, after the gateway sent that request.
    Any other request gets `200 ok`."""
    listener = socket.create_server(("127.0.0.1", 0))
    connections: list[socket.socket] = []

    def serve(connection: socket.socket) -> None:
        owes_stray = False
        pending = b""
        with contextlib.suppress(OSError):
            while data := connection.recv(65536):
                pending += data
                while b"\r\n\r\n" in pending:
                    head, _, pending = pending.partition(b"\r\n\r\n")
                    if owes_stray:
                        connection.sendall(stray)
                        owes_stray = False
                    if head.split(b" ")[1] == b"/bodiless":
                        connection.sendall(bodiless_head)
                        owes_stray = True
                    else:
                        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = listener.accept()
                connections.append(connection)
                threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        for connection in connections:
            connection.close()


@pytest.mark.parametrize(
    ("method", "bodiless_head", "stray"),
    [
        ("GET", b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", b"GARBAGE"),
        ("GET", b"HTTP/1.1 204 No Content\r\n\r\n", b"GARBAGE"),
        ("GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n", b"GARBAGE"),
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", b"GARBAGE"),
    ],
    ids=["204", "204-no-length", "304", "HEAD"],
)
def test_the_request_after_a_bodiless_response_is_not_answered_by_its_stray_bytes(
    method, bodiless_head, stray
):
    thread = GatewayThread(GatewayConfig(port=0))
    with stray_bytes_replica(bodiless_head, stray) as replica:
        gateway = thread.start()
        try:
            gateway.update_routes(RouteTable({HOST: Route((Backend("stray-1", (replica,)),))}))
            with httpx.Client(base_url=gateway.url, headers={"host": HOST}, timeout=30) as client:
                bodiless = client.request(method, "/bodiless")
                assert bodiless.content == b""
                for _ in range(3):
                    after = client.post("/v1/models/stray:predict", content=b"{}")
                    assert (after.status_code, after.content) == (200, b"ok")
        finally:
            thread.stop()
