"""An HTTP/1.1 client connection that sends a batch of requests in one write and reads their answers in
order (pipelining, RFC 9112 9.3.2): one round trip, one write and few reads for many small requests,
where a request at a time would pay a round trip and a wake-up of both ends each (the payload logger's
events).

The requests are given whole (`Target.head`, headers, body: see `message`); only the status of each
answer is kept, with the start of its body.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl

import httptools

from modelplane.protocol.http_client import Endpoint, Target, TransportError

_KEPT_BODY = 200  # bytes of each answer's body kept, to say why a request was refused
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux


def message(target: Target, headers: bytes, body: bytes) -> bytes:
    """A POST of `body` to `target`, with the header lines `headers` (each ending in CRLF)."""
    return b"%sContent-Length: %d\r\n%s\r\n%s" % (target.head, len(body), headers, body)


class BatchBroken(TransportError):
    """The connection failed before every request of the batch was answered; `answers` are those that were."""

    def __init__(self, reason: str, answers: list[tuple[int, bytes]]) -> None:
        super().__init__(reason)
        self.answers = answers


class PipelinedConnection(asyncio.Protocol):
    """One keep-alive connection; carries one batch at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.keep_alive = True  # False once the server said it closes
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[list[tuple[int, bytes]]] | None = None
        self._expected = 0
        self._answers: list[tuple[int, bytes]] = []
        self._status = 0
        self._body = b""
        self._socket = None

    @classmethod
    async def open(cls, endpoint: Endpoint, tls: ssl.SSLContext | None) -> PipelinedConnection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                cls, endpoint.host, endpoint.port, ssl=tls, server_hostname=endpoint.host if tls else None
            )
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise TransportError(f"cannot connect to {endpoint.host}:{endpoint.port}: {reason}") from None
        return connection

    @property
    def usable(self) -> bool:
        return self.keep_alive and not self.closed and not self.transport.is_closing()

    def send(self, messages: list[bytes]) -> asyncio.Future[list[tuple[int, bytes]]]:
        """Writes the requests; the future gives (status, start of the body) of each, in order, or
        raises BatchBroken with the answers that came."""
        self._answers = []
        self._expected = len(messages)
        self._waiter = asyncio.get_running_loop().create_future()
        if self.transport.is_closing():
            self._fail("the connection closed before the requests were sent")
        else:
            self.transport.write(b"".join(messages))
        return self._waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._socket = transport.get_extra_info("socket") if _QUICKACK is not None else None

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():  # bytes nobody asked for
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"malformed HTTP response: {exc}")
            self.close()
            return
        if self._waiter is not None and self._socket is not None:
            # More answers are due: acknowledge these now rather than after the delayed-ACK timer. A
            # server that holds small writes until its last one is acknowledged (Nagle's algorithm)
            # would otherwise send each further answer of the batch some 40 ms late.
            with contextlib.suppress(OSError):
                self._socket.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._status >= 200 and len(self._answers) == self._expected - 1:
            self.keep_alive = False  # the last answer's body ran to the end of the connection
            self.on_message_complete()
        self._fail("the connection closed before every request was answered")

    # httptools callbacks

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if len(self._body) < _KEPT_BODY:
            self._body += body[: _KEPT_BODY - len(self._body)]

    def on_message_complete(self) -> None:
        status, body = self._status, self._body
        self._status, self._body = 0, b""
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            return
        self._answers.append((status, body))
        if not self._parser.should_keep_alive():
            self.keep_alive = False
        if len(self._answers) == self._expected:
            waiter, self._waiter = self._waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result(self._answers)
        elif not self.keep_alive:
            self._fail("the receiver closed the connection part-way through a batch")
            self.close()

    def _fail(self, reason: str) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(BatchBroken(reason, self._answers))
