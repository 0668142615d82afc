"""A TLS port answers plain HTTP with a 400 that names the https:// URL (not a connection closed without a
word), and serves TLS, ALPN included, as before: on uvloop and on asyncio's own loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading

import httpx
import pytest
import uvloop

from modelplane.local.tls import TLSFiles
from modelplane.protocol.tls_or_plain import TLSOrPlainHTTP
from tests.local.certificates import write_certificates

LOOPS = {"uvloop": uvloop.new_event_loop, "asyncio": asyncio.new_event_loop}


class Hello(asyncio.Protocol):
    """Answers one request with the ALPN protocol TLS chose, and closes."""

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if b"\r\n\r\n" in data:
            alpn = self.transport.get_extra_info("ssl_object").selected_alpn_protocol() or "none"
            body = f"hello over TLS, ALPN {alpn}".encode()
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b" % (len(body), body))
            self.transport.close()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return write_certificates(tmp_path_factory.mktemp("tls"))


@contextlib.contextmanager
def tls_port(new_loop, certificates):
    _, cert, key = certificates
    context = TLSFiles(cert, key).server_context(alpn=("h2", "http/1.1"))
    loop = new_loop()
    server = loop.run_until_complete(
        loop.create_server(lambda: TLSOrPlainHTTP(Hello, context, 10.0), "127.0.0.1", 0)
    )
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()


def plain(port: int, request: bytes) -> bytes:
    """What the port answers `request`, to the end of the connection (which must end without a reset)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def over_tls(port: int, ca, alpn: list[str]) -> bytes:
    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(alpn)
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as sock,
    ):
        sock.sendall(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
        return sock.makefile("rb").read()


def expected(url: str) -> bytes:
    body = f"The plain HTTP request was sent to an HTTPS port: use {url}\n".encode()
    return (
        b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%b" % (len(body), body)
    )


@pytest.mark.parametrize("loop", LOOPS)
def test_plain_http_gets_a_400_naming_the_https_url_and_tls_works_as_before(loop, certificates):
    ca = certificates[0]
    with tls_port(LOOPS[loop], certificates) as port:
        # The Host names this port: it is the URL the client was given.
        request = b"GET /v1/models/iris?x=1 HTTP/1.1\r\nHost: localhost:%d\r\n\r\n" % port
        assert plain(port, request) == expected(f"https://localhost:{port}/v1/models/iris?x=1")
        # A Host of a service's name (curl -H "Host: ..."): the URL is the address connected to.
        request = b"POST /v1/models/iris:predict HTTP/1.1\r\nHost: iris.default.example.com\r\n"
        body = b"x" * (3 << 20)  # a body the port never reads: the answer still arrives, not a reset
        request += b"content-length: %d\r\n\r\n%b" % (len(body), body)
        assert plain(port, request) == expected(f"https://127.0.0.1:{port}/v1/models/iris:predict")
        # An absolute-form target names its host; a request line cut short still gets the answer.
        request = b"GET http://localhost:%d/v2/health/ready HTTP/1.1\r\n\r\n" % port
        assert plain(port, request) == expected(f"https://localhost:{port}/v2/health/ready")
        assert plain(port, b"OPTIONS") == expected(f"https://127.0.0.1:{port}/")

        answer = httpx.get(f"http://localhost:{port}/v1/models")
        assert (answer.status_code, answer.text) == (
            400,
            f"The plain HTTP request was sent to an HTTPS port: use https://localhost:{port}/v1/models\n",
        )
        # What is no HTTP/1 request goes to TLS, which refuses it as before: HTTP/2 in cleartext too.
        assert plain(port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == b""
        assert plain(port, b"\x80garbage") == b""
        # TLS after all this, with ALPN.
        assert over_tls(port, ca, ["h2", "http/1.1"]).endswith(b"hello over TLS, ALPN h2")
        assert over_tls(port, ca, ["http/1.1"]).endswith(b"hello over TLS, ALPN http/1.1")
        assert over_tls(port, ca, []).endswith(b"hello over TLS, ALPN none")
