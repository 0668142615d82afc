"""A restart in place hands the API's connections over between two requests: the client's next request
on the same connection is answered by the next server, not met by a closed connection."""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest
import uvloop

from modelplane.local.api.server import ApiServer, bind, open_store
from modelplane.local.replicas.inherited import adopted_socket, kept_across_exec
from modelplane.local.tls import TLSFiles
from tests.local.certificates import write_certificates

REQUEST = b"GET /api HTTP/1.1\r\nHost: localhost\r\n\r\n"


class Running:
    """An ApiServer serving in a thread of its own, on uvloop as in `modelplane up`."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self.thread = threading.Thread(target=lambda: uvloop.run(server.run()), daemon=True)
        self.thread.start()
        while not server.started:
            time.sleep(0.01)

    def stop(self, *, hand_over: bool = False) -> None:
        self.server.stop(hand_over=hand_over)
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()

    def successor(self, store, listening: int, **options) -> Running:
        """The next server, on the listening socket kept across exec and the connections this one
        handed over (`modelplane up` after a SIGHUP)."""
        handed_over = [adopted_socket(fd) for fd in self.server.handed_over]
        return Running(ApiServer(store, adopted_socket(listening), connections=handed_over, **options))


def answer_on(sock: socket.socket) -> bytes:
    """One whole answer read from `sock` (its body framed by Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection was closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_a_connection_between_requests_is_answered_by_the_next_server(tmp_path):
    store = open_store(tmp_path)
    try:
        first = Running(ApiServer(store, bind("127.0.0.1", 0)))
        listening = kept_across_exec(first.server.sock)
        with socket.create_connection(first.server.sock.getsockname()[:2], timeout=10) as client:
            client.sendall(REQUEST)
            assert answer_on(client).startswith(b"HTTP/1.1 200")
            first.stop(hand_over=True)
            assert len(first.server.handed_over) == 1
            # Sent while no server runs: it waits in the kernel for the next one.
            client.sendall(REQUEST)
            second = first.successor(store, listening)
            try:
                head = answer_on(client)
                assert head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head.lower()
                client.sendall(REQUEST)
                assert answer_on(client).startswith(b"HTTP/1.1 200")
            finally:
                second.stop()
    finally:
        store.close()


def test_a_connection_with_a_request_begun_is_not_handed_over(tmp_path):
    store = open_store(tmp_path)
    try:
        running = Running(ApiServer(store, bind("127.0.0.1", 0)))
        with socket.create_connection(running.server.sock.getsockname()[:2], timeout=10) as client:
            client.sendall(REQUEST[:20])
            time.sleep(0.2)  # read by the server before it stops
            running.stop(hand_over=True)
            assert running.server.handed_over == []
            assert client.recv(65536) == b""  # closed: the next server could not finish reading it
    finally:
        store.close()


def test_a_plain_stop_hands_nothing_over(tmp_path):
    store = open_store(tmp_path)
    try:
        running = Running(ApiServer(store, bind("127.0.0.1", 0)))
        with socket.create_connection(running.server.sock.getsockname()[:2], timeout=10) as client:
            client.sendall(REQUEST)
            assert answer_on(client).startswith(b"HTTP/1.1 200")
            running.stop()
            assert running.server.handed_over == []
            assert client.recv(65536) == b""
    finally:
        store.close()


def test_a_tls_connection_goes_on_with_its_session_and_new_ones_get_the_new_certificate(tmp_path):
    """A TLS connection's session lives in the stopping server: a relay keeps it, and the next server
    answers on the same connection, which keeps the certificate it negotiated. A new connection gets the
    next server's certificate."""
    first_files, second_files = tmp_path / "first", tmp_path / "second"
    first_files.mkdir()
    second_files.mkdir()
    first_ca, first_cert, first_key = write_certificates(first_files)
    second_ca, second_cert, second_key = write_certificates(second_files)
    store = open_store(tmp_path)
    try:
        first = Running(ApiServer(store, bind("127.0.0.1", 0), tls=TLSFiles(first_cert, first_key)))
        listening = kept_across_exec(first.server.sock)
        address = first.server.sock.getsockname()[:2]
        trusting_first = ssl.create_default_context(cafile=str(first_ca))
        with trusting_first.wrap_socket(
            socket.create_connection(address, timeout=10), server_hostname="localhost"
        ) as client:
            client.sendall(REQUEST)
            assert answer_on(client).startswith(b"HTTP/1.1 200")
            negotiated = client.getpeercert(binary_form=True)
            first.stop(hand_over=True)
            assert len(first.server.handed_over) == 1
            client.sendall(REQUEST)  # waits in the relay for the next server
            second = first.successor(store, listening, tls=TLSFiles(second_cert, second_key))
            try:
                head = answer_on(client)
                assert head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head.lower()
                client.sendall(REQUEST)
                assert answer_on(client).startswith(b"HTTP/1.1 200")
                assert client.getpeercert(binary_form=True) == negotiated

                trusting_second = ssl.create_default_context(cafile=str(second_ca))
                with trusting_second.wrap_socket(
                    socket.create_connection(address, timeout=10), server_hostname="localhost"
                ) as new:
                    new.sendall(REQUEST)
                    assert answer_on(new).startswith(b"HTTP/1.1 200")
                with pytest.raises(ssl.SSLCertVerificationError):
                    trusting_first.wrap_socket(
                        socket.create_connection(address, timeout=10), server_hostname="localhost"
                    )
            finally:
                second.stop()
    finally:
        store.close()
