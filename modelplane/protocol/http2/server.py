"""A small HTTP/2 server (cleartext, prior knowledge) on asyncio, for gRPC's unary calls.

Each stream is one request, answered from its whole body: headers, data and, for gRPC, trailers, written
with one call when the peer's flow-control windows let them through. It keeps to what such calls need:
no server push and no priorities; the streams of a connection run concurrently, as many as
`max_concurrent_streams`.

The receive windows are opened to the maximum once, so a client never waits for a WINDOW_UPDATE; the
body-size limit is what bounds the memory a stream may hold (a body that declares itself larger, in
gRPC's length prefix, is refused before any more of it is kept), and the body timeout how long it may
hold it. The send side follows the peer's windows and frame size exactly, so large answers flow to slow
readers without being lost or overrunning them.

One sweep a second (or more often, for short timeouts) closes connections idle for `idle_timeout`
(one whose preface never arrived whole is idle too) and answers requests whose body has not moved for
`body_timeout`. It looks at what changed since the sweep before, so a call costs no clock reading.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from modelplane.protocol.http2 import frames as f
from modelplane.protocol.http2 import hpack
from modelplane.protocol.http2.connection import Http2Connection
from modelplane.protocol.http2.hpack import Headers
from modelplane.protocol.http2.limits import DEFAULT_LIMITS, Http2Limits
from modelplane.protocol.http_server import Shutdown, drain

log = logging.getLogger("modelplane.server")

_HTTP1_BODY = b"this port speaks HTTP/2 only (gRPC); REST is on the HTTP port\n"
_HTTP1_REFUSAL = (
    b"HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Type: text/plain\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_HTTP1_BODY), _HTTP1_BODY)
)


@dataclass
class H2Request:
    stream_id: int
    headers: Headers
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        return hpack.find_header(self.headers, name)


@dataclass
class H2Response:
    headers: bytes  # an HPACK block (`hpack.encode`), :status first
    body: bytes = b""
    trailers: bytes | None = None  # an HPACK block sent after the body, ending the stream


Handler = Callable[[H2Request], Awaitable[H2Response]]


def _request_timeout(seconds: float) -> H2Response:
    return H2Response(hpack.encode([(b":status", b"408"), (b"content-length", b"0")]))


@dataclass
class ServerLimits:
    """What a connection may hold and for how long; `http2` has the protocol's own limits."""

    max_body_size: int
    # The answer to a request (its headers) whose body of this many bytes (as declared, or received so
    # far) is above the limit.
    too_large_response: Callable[[int, Headers], H2Response]
    failure_response: Callable[[Exception], H2Response]  # the answer when the handler raises
    # The answer to a request whose body stopped arriving (given the timeout).
    stalled_response: Callable[[float], H2Response] = _request_timeout
    http2: Http2Limits = DEFAULT_LIMITS
    idle_timeout: float = 65.0  # a connection without streams for this long is closed (GOAWAY)
    body_timeout: float = 60.0  # a request body that does not move for this long is answered and reset
    # The answer to a request that its headers settle, sent at once without its body (None: read it).
    headers_response: Callable[[Headers], H2Response | None] | None = None
    # The size a body declares in its first bytes (gRPC's length prefix), None until they have come:
    # a body declaring more than `max_body_size` is refused then, and none of the rest is read.
    declared_body_size: Callable[[bytes], int | None] | None = None


class _AnsweredFromHeaders:
    """The `task` of a call answered from its headers alone: nothing is to run when its body ends."""

    def cancel(self) -> None:
        pass


_ANSWERED_FROM_HEADERS = _AnsweredFromHeaders()


class _Call:
    __slots__ = (
        "headers",
        "chunks",
        "size",
        "size_declared",
        "task",
        "unsent",
        "trailers",
        "seen_size",
        "still_since",
    )

    def __init__(self, headers: Headers, size_declared: bool) -> None:
        self.headers = headers
        self.chunks: list[bytes] = []
        self.size = 0
        self.size_declared = size_declared  # the body's declared size has been checked (or has none)
        self.task: asyncio.Task | _AnsweredFromHeaders | None = None
        self.unsent: memoryview | None = None  # answer bytes held back by flow control
        self.trailers: bytes | None = None  # sent once `unsent` is gone
        self.seen_size = -1  # `size` at the last sweep
        self.still_since = 0.0  # when the sweep first saw `size` where it is


def _cancel(call: _Call) -> None:
    """Cancels the task answering `call`, if one is, and lets go of it: the cancelled task keeps its
    frames, which hold the call and its request, a cycle only the cycle collector would free."""
    if call.task is not None:
        call.task.cancel()
        call.task = None


class Http2ServerProtocol(Http2Connection):
    def __init__(self, handler: Handler, connections: set, limits: ServerLimits) -> None:
        super().__init__(client_side=False, limits=limits.http2)
        self._handler = handler
        self._connections = connections
        self._limits = limits
        self._calls: dict[int, _Call] = {}
        self._blocked: dict[int, _Call] = {}  # calls whose answer waits for a window
        self._going_away = False
        self._calls_started = 0
        self._idle_seen: tuple[int, float] | None = None  # calls started, and when, at the first idle sweep

    @property
    def idle(self) -> bool:
        return not self._calls

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._connections.discard(self)
        for call in self._calls.values():
            _cancel(call)  # nobody is left to read the answer
        self._calls.clear()
        self._blocked.clear()

    def not_http2(self, received: bytes) -> None:
        self.transport.write(_HTTP1_REFUSAL)
        self.transport.close()

    # the client's streams

    def on_headers(self, stream_id: int, headers: Headers, end_stream: bool, new_stream: bool) -> None:
        if new_stream:
            if self._going_away:
                self.reset(stream_id, f.REFUSED_STREAM)
                return
            call = self._calls[stream_id] = _Call(headers, self._limits.declared_body_size is None)
            self._calls_started += 1
            settled = self._limits.headers_response
            response = None if settled is None else settled(headers)
            if response is not None:
                call.task = _ANSWERED_FROM_HEADERS
                self._respond(stream_id, call, response)
                self.flush()
                self._close_if_done()
                return
        else:  # trailers: they end the request
            call = self._calls.get(stream_id)
            if call is None or call.task is not None:
                return
        if end_stream:
            self._start(stream_id, call)

    def on_data(self, stream_id: int, data: bytes, flow_length: int, end_stream: bool) -> None:
        call = self._calls.get(stream_id)
        if call is None or call.task is not None:
            return
        call.size += len(data)
        if call.size > self._limits.max_body_size:
            self._respond(stream_id, call, self._limits.too_large_response(call.size, call.headers))
            return
        if data:
            call.chunks.append(data)
        if not call.size_declared:
            declared = self._limits.declared_body_size(b"".join(call.chunks))
            if declared is not None:
                call.size_declared = True
                if declared > self._limits.max_body_size:
                    self._respond(stream_id, call, self._limits.too_large_response(declared, call.headers))
                    return
        if end_stream:
            self._start(stream_id, call)

    def on_reset(self, stream_id: int, error_code: int) -> None:
        call = self._calls.pop(stream_id, None)
        self._blocked.pop(stream_id, None)
        if call is not None:
            _cancel(call)
        self._close_if_done()

    def on_window_opened(self, stream_id: int) -> None:
        if not self._blocked:
            return
        if stream_id:
            call = self._blocked.get(stream_id)
            if call is not None:
                self._send_rest(stream_id, call)
        else:
            for blocked_id, call in list(self._blocked.items()):
                self._send_rest(blocked_id, call)
        self._close_if_done()

    def on_goaway(self, last_stream_id: int, error_code: int) -> None:
        self._going_away = True  # the client opens no more streams; those under way are answered
        self._close_if_done()

    # answering

    def _start(self, stream_id: int, call: _Call) -> None:
        chunks = call.chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        call.chunks = []
        request = H2Request(stream_id, call.headers, body)
        call.task = self._loop.create_task(self._answer(stream_id, call, request))

    async def _answer(self, stream_id: int, call: _Call, request: H2Request) -> None:
        try:
            response = await self._handler(request)
        except Exception as exc:  # noqa: BLE001 - the handler's fault becomes an error answer
            path = (request.header(b":path") or b"?").decode("latin-1")
            log.exception("the handler of %s failed", path)
            response = self._limits.failure_response(exc)
        if self._calls.get(stream_id) is call and not self.closed:
            self._respond(stream_id, call, response)
            self.flush()  # now, rather than a turn of the loop later
            self._close_if_done()

    def _respond(self, stream_id: int, call: _Call, response: H2Response) -> None:
        body, call.trailers = response.body, response.trailers
        self.send_headers(stream_id, response.headers, end_stream=not body and call.trailers is None)
        if body:
            call.unsent = memoryview(body)
            self._send_rest(stream_id, call)
        else:
            self._finish(stream_id)

    def _send_rest(self, stream_id: int, call: _Call) -> None:
        unsent = call.unsent
        sent = self.send_data(stream_id, unsent, end_stream=call.trailers is None)
        if sent < len(unsent):
            call.unsent = unsent[sent:]
            self._blocked[stream_id] = call
            return
        call.unsent = None
        self._blocked.pop(stream_id, None)
        if call.trailers is not None:
            self.send_headers(stream_id, call.trailers, end_stream=True)
        self._finish(stream_id)

    def _finish(self, stream_id: int) -> None:
        call = self._calls.pop(stream_id, None)
        if stream_id in self.streams:  # answered before the request was whole: the rest is not needed
            if call is not None and call.task is _ANSWERED_FROM_HEADERS:
                # Not reset: a streaming client still sending would report its failed write instead of
                # the answer. What it sends is dropped, and it ends the stream once it has the answer.
                return
            self.reset(stream_id, f.NO_ERROR)

    # ending

    def go_away(self) -> None:
        """Stop taking new streams; the connection closes once those under way are answered."""
        if not self._going_away:
            self.send_goaway()
        self._going_away = True
        self._close_if_done()

    def abort(self) -> None:
        self.transport.abort()

    def sweep(self, now: float) -> None:
        """Closes the connection if it has been idle too long; answers requests whose body stalled."""
        if not self._calls:
            seen = self._idle_seen
            if seen is None or seen[0] != self._calls_started:
                self._idle_seen = (self._calls_started, now)
            elif now - seen[1] >= self._limits.idle_timeout and not self.closed:
                if self._preface_pending:
                    self.transport.close()  # it never spoke HTTP/2: no GOAWAY
                else:
                    self.go_away()
            return
        self._idle_seen = None
        timeout = self._limits.body_timeout
        for stream_id, call in list(self._calls.items()):
            if call.task is not None:
                continue  # the request is whole
            if call.size != call.seen_size:
                call.seen_size, call.still_since = call.size, now
            elif now - call.still_since >= timeout:
                self._respond(stream_id, call, self._limits.stalled_response(timeout))
        self.flush()

    def _close_if_done(self) -> None:
        if self._going_away and not self._calls and not self.closed:
            self.flush()
            self.transport.close()


class Http2Service:
    """A handler's HTTP/2 connections: those its own port takes, and those an HTTP/1.1 port hands over
    when a client opens with the HTTP/2 preface (`take_over`), all swept and drained alike."""

    def __init__(self, handler: Handler, limits: ServerLimits) -> None:
        self.handler = handler
        self.limits = limits
        self.connections: set[Http2ServerProtocol] = set()

    def protocol(self) -> Http2ServerProtocol:
        return Http2ServerProtocol(self.handler, self.connections, self.limits)

    def take_over(self, transport: asyncio.Transport, received: bytes) -> None:
        """Serves a connection another server accepted, from the bytes it has read so far."""
        protocol = self.protocol()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(received)

    async def serve(self, sock: socket.socket, shutdown: Shutdown) -> None:
        """Serve on a listening socket until shutdown is requested, then finish the streams under way."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(self.protocol, sock=sock)
        sweeps = loop.create_task(_sweep(self.connections, self.limits))
        try:
            await shutdown.requested.wait()
        finally:
            sweeps.cancel()
            server.close()
            for connection in list(self.connections):
                connection.go_away()
            await drain(self.connections, shutdown)


async def serve(handler: Handler, sock: socket.socket, limits: ServerLimits, shutdown: Shutdown) -> None:
    """Serve on a listening socket until shutdown is requested, then finish the streams under way."""
    await Http2Service(handler, limits).serve(sock, shutdown)


async def _sweep(connections: set[Http2ServerProtocol], limits: ServerLimits) -> None:
    interval = min(max(min(limits.idle_timeout, limits.body_timeout) / 4, 0.05), 1.0)
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval)
        now = loop.time()
        for connection in list(connections):
            connection.sweep(now)
