"""Raw HTTP/1.1 on a socket, for sending what no client library would and seeing exactly the answer."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import httptools


@dataclass
class RawResponse:
    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    closed: bool = False  # the server closed the connection after it

    def header(self, name: bytes) -> bytes | None:
        return next((value for key, value in self.headers if key.lower() == name), None)


class _Collector:
    def __init__(self) -> None:
        self.responses: list[RawResponse] = [RawResponse()]
        self.parser: httptools.HttpResponseParser | None = None

    def on_headers_complete(self) -> None:
        self.responses[-1].status = self.parser.get_status_code()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.responses[-1].headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.responses[-1].body += body

    def on_message_complete(self) -> None:
        self.responses.append(RawResponse())


class ResponseReader:
    """Reads responses off a socket as they come, pipelined ones included."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._collector = _Collector()
        self._parser = self._collector.parser = httptools.HttpResponseParser(self._collector)
        self.eof = False

    @property
    def complete(self) -> list[RawResponse]:
        return self._collector.responses[:-1]

    def read(self) -> bool:
        """Reads once; False at the end of the connection."""
        try:
            data = self.sock.recv(1 << 20)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self._parser.feed_data(data)
        return True

    def until(self, count: int) -> list[RawResponse]:
        while len(self.complete) < count and self.read():
            pass
        return self.complete


def exchange(port: int, data: bytes, timeout: float = 30) -> RawResponse:
    """Sends `data`, reads one response, and whether the server then closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        reader = ResponseReader(sock)
        responses = reader.until(1)
        assert responses, "the server closed the connection without an answer"
        response = responses[0]
        while reader.read():
            pass
        response.closed = reader.eof
        return response
