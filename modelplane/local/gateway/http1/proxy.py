"""The gateway's HTTP/1.1 reverse proxy, at the asyncio protocol level.

`ClientConnection` parses the requests of one client connection with httptools; each request
becomes an `Exchange` (gateway/http1/exchange.py), which streams the request body up and the response body
down as the bytes arrive, with back-pressure both ways. Requests on one connection are answered in
order: pipelined ones wait their turn.

A request is checked as the model server checks it (modelplane/protocol/http1_guard.py) before
anything of it goes to a replica: its head counted as it arrives (431), its body framed one way only
(400), so a replica behind the gateway never reads a request the gateway read differently.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import httptools

from modelplane.local.gateway.http1.exchange import (
    PAUSED_FOR_BODY,
    PAUSED_FOR_PIPELINE,
    PAUSED_FOR_UPSTREAM,
    Exchange,
)
from modelplane.local.gateway.http1.messages import error_response
from modelplane.protocol.http1_guard import HeadCounter, RequestRefused, check_framing, header_count_refusal
from modelplane.protocol.http2.frames import opens_with_preface
from modelplane.protocol.lingering import LingeringClose

if TYPE_CHECKING:
    from modelplane.local.gateway.context import GatewayContext


class ClientConnection(asyncio.Protocol):
    """One client connection: parses its requests and answers them in order.

    A connection that opens with the HTTP/2 preface is handed to `on_http2(transport, data)` (the
    gRPC proxy) and is no longer this object's.
    """

    def __init__(
        self,
        context: GatewayContext,
        on_close: Callable[[ClientConnection], None],
        on_http2: Callable[[asyncio.Transport, bytes], None] | None = None,
        on_open: Callable[[ClientConnection], None] | None = None,
    ) -> None:
        self.context = context
        self.transport: asyncio.Transport | None = None
        self.peer_ip = b""
        self.closed = False
        self.closing = False
        # When the connection last became idle (loop time); None while a request is under way.
        # The gateway closes connections idle for longer than `client_idle_timeout`.
        self.idle_since: float | None = None
        # When the request head now arriving began (the connection's opening for the first one); None
        # while none is arriving. The gateway answers 408 to heads slower than `header_timeout`.
        self.head_since: float | None = None
        # The gateway's connections without a request under way (a head still arriving counts).
        self._idle = context.idle
        self._head = HeadCounter(context.config.max_header_bytes)
        self._header_count = 0
        self._transfer_encoding: bytes | None = None
        self._on_close = on_close
        # Told once the connection is made: over TLS, only after the handshake (a failed one is never
        # made, nor lost).
        self._on_open = on_open
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._parsing: Exchange | None = None
        self._active: Exchange | None = None
        self._waiting: deque[Exchange] = deque()
        self._pauses = 0
        self._ignore_input = False
        self._lingering: LingeringClose | None = None  # closing after a refusal
        # The refusal of a request that came after those being answered, sent once they are.
        self._refusal: RequestRefused | None = None
        self._on_http2 = on_http2
        # The first bytes, while they may still be the start of the HTTP/2 preface; None after.
        self._preface: bytes | None = b"" if on_http2 is not None else None

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)

    def write_all(self, pieces: list[bytes]) -> None:
        if not self.closed:
            self.transport.writelines(pieces)

    def pause_reading(self, reason: int) -> None:
        if not self._pauses and not self.closed:
            self.transport.pause_reading()
        self._pauses |= reason

    def resume_reading(self, reason: int) -> None:
        if not self._pauses & reason:
            return
        self._pauses &= ~reason
        if not self._pauses and not self.closed:
            self.transport.resume_reading()

    def close_when_idle(self, linger: float = 0.0) -> None:
        """Stops taking requests; closes now if idle, else after the current response. With `linger`
        (the gateway stopping), an idle connection first gets that many seconds for a request a
        client may have had on its way, answered with `Connection: close`, rather than cut."""
        self.closing = True
        if self.idle_since is None or self.closed:
            return
        if linger:
            self._loop.call_later(linger, self._close_if_idle)
        else:
            self.transport.close()

    def _close_if_idle(self) -> None:
        if self.idle_since is not None and not self.closed:
            self.transport.close()

    def evict(self) -> None:
        """Closes a connection with no request under way, even one whose next head is arriving."""
        if self._active is None and not self.closed:
            self.closing = True
            self.transport.close()

    def head_timed_out(self, timeout: float) -> None:
        if self._active is not None or self.closed:
            return  # a response is under way: the client waits for us, not we for it
        self._ignore_input = True
        if self._parsing is not None:  # a request began: it is answered (a silent connection just closes)
            message = f"the request head did not arrive within {timeout:g}s"
            self.write(error_response(408, message, None, close=True))
        self.transport.close()

    def abort(self) -> None:
        """Cuts the connection (a response cannot be completed); nothing more is written or started."""
        if not self.closed:
            self.closed = True
            self.transport.abort()

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer_ip = str(peer[0]).encode()
        self.idle_since = self.head_since = self._loop.time()
        self._idle[self] = None
        if self._on_open is not None:
            self._on_open(self)

    def data_received(self, data: bytes) -> None:
        if self._preface is not None:
            data = self._check_preface(data)
            if not data:
                return
        if self._ignore_input:
            if self._lingering is not None:
                self._lingering.drop(data)
            return
        if self._head.count is not None and not self._head.add(data):
            self._refuse(self._head.refusal())
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Upgrades (websocket, h2c) are not proxied: the request is served as plain HTTP/1.1
            # with the upgrade headers dropped, and the connection closes after it.
            self._ignore_input = True
            for exchange in (self._parsing, self._active, *self._waiting):
                if exchange is not None:
                    exchange.keep_alive = False
        except httptools.HttpParserError as exc:
            if not isinstance(exc.__context__, _LastRequest):
                self._malformed(exc)
        # Started only now, so that a request that came in one read goes upstream in one write.
        active = self._active
        if active is not None and not active.started and not self.closed:
            active.start()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._idle.pop(self, None)
        if self._active is not None:
            self._active.cancel()
        self._waiting.clear()
        self._on_close(self)

    def pause_writing(self) -> None:
        if self._active is not None:
            self._active.client_pause_writing()

    def resume_writing(self) -> None:
        if self._active is not None:
            self._active.client_resume_writing()

    # -- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.idle_since = None
        if self.head_since is None:
            self.head_since = self._loop.time()
        self._parsing = Exchange(self.context, self)
        self._header_count = 0
        self._transfer_encoding = None

    def on_url(self, url: bytes) -> None:
        self._parsing.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._parsing.headers.append((name, value))
        self._header_count += 1
        if self._header_count > self.context.config.max_header_count:
            raise header_count_refusal(self.context.config.max_header_count)
        if len(name) == 17 and name.lower() == b"transfer-encoding":
            self._transfer_encoding = value

    def on_headers_complete(self) -> None:
        exchange = self._parsing
        parser = self._parser
        self._head.stop()
        self.head_since = None
        check_framing(parser.get_http_version(), self._transfer_encoding)
        self._idle.pop(self, None)
        exchange.prepare(
            parser.get_method(),
            parser.should_keep_alive() and not self.closing,
            parser.get_http_version() == "1.0",
        )
        if self._active is None:
            self._active = exchange
        else:
            self._waiting.append(exchange)
            self.pause_reading(PAUSED_FOR_PIPELINE)

    def on_body(self, body: bytes) -> None:
        self._parsing.request_body(body)

    def on_message_complete(self) -> None:
        exchange, self._parsing = self._parsing, None
        self._head.start()
        exchange.request_done()
        if not exchange.keep_alive:  # `Connection: close`: no request after this one is read (RFC 9112, 9.6)
            self._ignore_input = True
            raise _LastRequest

    # -- sequencing ----------------------------------------------------------------------------

    def exchange_finished(self, exchange: Exchange) -> None:
        self._active = None
        if self.closed:
            return
        if self._refusal is not None and not self._waiting:
            self._refuse(self._refusal)
            return
        if not exchange.keep_alive or self.closing:
            self.transport.close()
            return
        self.resume_reading(PAUSED_FOR_BODY | PAUSED_FOR_UPSTREAM)
        if self._waiting:
            # Started on the next loop turn: this may run inside the upstream connection's
            # callbacks, and the next request may want that very connection.
            self._active = self._waiting.popleft()
            self._loop.call_soon(self._start_waiting, self._active)
        elif self._parsing is None:
            self.idle_since = self._loop.time()
            self._idle[self] = None

    def _start_waiting(self, exchange: Exchange) -> None:
        if self.closed or exchange.started:
            return
        exchange.start()
        if not self._waiting:
            self.resume_reading(PAUSED_FOR_PIPELINE)

    def _check_preface(self, data: bytes) -> bytes:
        """The bytes to parse as HTTP/1.1, or b"" when the connection turned out to be HTTP/2 or may
        still do so."""
        seen = self._preface + data
        http2 = opens_with_preface(seen)
        self._preface = seen if http2 is None else None
        if http2 is False:
            return seen
        if http2:
            self._ignore_input = True
            self.closed = True  # nothing more is written or read through this object
            self._idle.pop(self, None)
            self._on_close(self)
            self._on_http2(self.transport, seen)
        return b""

    def _malformed(self, exc: Exception) -> None:
        refusal = exc.__context__  # raised in a parser callback, it arrives as the error's context
        if not isinstance(refusal, RequestRefused):
            refusal = RequestRefused(400, f"malformed HTTP request: {exc}")
        self._refuse(refusal)

    def _refuse(self, refusal: RequestRefused) -> None:
        """Answers a request that cannot be taken and closes: at once, or after the answers to the
        requests that came before it; a request that failed in its body while it is being forwarded
        cuts the connection instead."""
        self._ignore_input = True
        active = self._active
        if active is not None and not active.started and not active.request_complete:
            active.refused(refusal.status, refusal.message)  # nothing of it went on: this answers it
            self._active = None
        if self._active is None:
            self.write(error_response(refusal.status, refusal.message, None, close=True))
            self.closed = True  # nothing more is written
            self._lingering = LingeringClose(self.transport)
        elif all(exchange.request_complete for exchange in (self._active, *self._waiting)):
            self._refusal = refusal
            self.resume_reading(PAUSED_FOR_PIPELINE)  # what still comes is dropped
        else:
            self.abort()


class _LastRequest(Exception):  # noqa: N818 (a signal, not an error)
    """Raised from a parser callback to stop parsing after the last request the connection takes."""
