"""A TLS port's answer to a client that speaks plain HTTP to it (`http://` where `https://` was meant): a
400 that says to use `https://` and the URL, as nginx and Go's servers answer, rather than a connection
closed without a word ("Empty reply from server").

The port listens without TLS and each connection's first bytes decide, once: an HTTP/1 request line
gets the 400; anything else (a TLS record) goes to the event loop's own TLS protocol, which from then
on reads the connection as it would under `create_server(ssl=...)`.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import re
import ssl
from collections.abc import Callable

import uvloop
import uvloop.loop

from modelplane.protocol.http1_wire import origin_form, status_line
from modelplane.protocol.lingering import LingeringClose
from modelplane.protocol.listening import url_host

# A request line, whole or cut short by the end of the first read; a TLS record starts with a byte
# below 0x20. HTTP/2's cleartext preface (`PRI * HTTP/2.0`) is left to TLS: its client reads no HTTP/1.
_REQUEST_LINE = re.compile(rb"(?!PRI )[A-Z]+(?: |$)(?:([\x21-\x7e]+) HTTP/1\.[01]\r?\n)?")
# Seconds a closing TLS connection waits for its client's close_notify. The event loop's own 30 would
# hold a stopping server that long for each idle client that reads nothing (a connection in a pool).
SHUTDOWN_TIMEOUT = 2.0
_HOST = re.compile(rb"\r?\nhost:[ \t]*([\x21-\x7e]+)[ \t]*\r?\n", re.IGNORECASE)


def plain_text(message: str) -> tuple[bytes, bytes]:
    return b"text/plain; charset=utf-8", message.encode() + b"\n"


class TLSOrPlainHTTP(asyncio.Protocol):
    """A new connection of a TLS port until its first bytes arrive: the protocol a TLS port's
    `create_server` (without `ssl`) makes, to serve `app_factory`'s protocols over TLS with `context`.
    `handshake_timeout` holds the first bytes and the handshake together; `render` writes the 400's
    message as its content type and body."""

    __slots__ = (
        "_app_factory",
        "_context",
        "_timeout",
        "_deadline",
        "_timer",
        "_transport",
        "_closing",
        "_render",
        "_keeps_session",
    )

    def __init__(
        self,
        app_factory: Callable[[], asyncio.BaseProtocol],
        context: ssl.SSLContext,
        handshake_timeout: float,
        render: Callable[[str], tuple[bytes, bytes]] = plain_text,
        *,
        keeps_session: bool = False,
    ) -> None:
        """`keeps_session`: TLS by the standard library's protocol, whose session can be reached (to keep
        a connection across a restart in place), rather than the event loop's faster own."""
        self._keeps_session = keeps_session
        self._app_factory = app_factory
        self._context = context
        self._timeout = handshake_timeout
        self._render = render
        self._closing: LingeringClose | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + self._timeout
        self._timer = loop.call_later(self._timeout, transport.abort)

    def data_received(self, data: bytes) -> None:
        if self._closing is not None:
            self._closing.drop(data)
            return
        self._timer.cancel()
        request = _REQUEST_LINE.match(data)
        if request is None:
            self._start_tls(data)
        else:
            self._transport.write(self._plain_http_answer(request.group(1), data))
            self._closing = LingeringClose(self._transport)

    def eof_received(self) -> None:
        return None  # closes

    def connection_lost(self, exc: Exception | None) -> None:
        self._timer.cancel()

    def _start_tls(self, first: bytes) -> None:
        """Hands the connection to the loop's TLS protocol, with the bytes read so far."""
        loop = asyncio.get_running_loop()
        own = isinstance(loop, uvloop.Loop) and not self._keeps_session
        tls_protocol = (uvloop.loop.SSLProtocol if own else asyncio.sslproto.SSLProtocol)(
            loop,
            self._app_factory(),
            self._context,
            None,
            server_side=True,
            ssl_handshake_timeout=max(self._deadline - loop.time(), 0.001),
            ssl_shutdown_timeout=SHUTDOWN_TIMEOUT,
        )
        transport = self._transport
        transport.pause_reading()  # the transport reads for a buffered protocol from now on
        transport.set_protocol(tls_protocol)
        tls_protocol.connection_made(transport)
        view = memoryview(first)
        while view and not transport.is_closing():
            buffer = tls_protocol.get_buffer(len(view))
            size = min(len(buffer), len(view))
            buffer[:size] = view[:size]
            tls_protocol.buffer_updated(size)
            view = view[size:]
        transport.resume_reading()

    def _plain_http_answer(self, target: bytes | None, head: bytes) -> bytes:
        path, authority = origin_form(target) if target else (b"/", None)
        if path[:1] != b"/":  # `*`, or a CONNECT's authority
            path = b"/"
        url = b"https://%b%b" % (authority or self._authority(head), path)
        content_type, body = self._render(
            f"The plain HTTP request was sent to an HTTPS port: use {url.decode('ascii')}"
        )
        return status_line(400) + (
            b"content-type: %b\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%b"
            % (content_type, len(body), body)
        )

    def _authority(self, head: bytes) -> bytes:
        """The host and port the client connected to: its Host when that names this port (the URL it
        was given), else this end's address (a Host of a service's name, given apart from the URL)."""
        host, port = self._transport.get_extra_info("sockname")[:2]
        found = _HOST.search(head)
        if found is not None and found.group(1).endswith(b":%d" % port):
            return found.group(1)
        return f"{url_host(host)}:{port}".encode()
