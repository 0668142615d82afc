"""A small HTTP/2 server (cleartext, prior knowledge) on asyncio, for gRPC's unary calls.

Each stream is one request, answered from its whole body: headers, data and, for gRPC, trailers, written
with one call when the peer's flow-control windows let them through. It keeps to what such calls need:
no server push and no priorities; the streams of a connection run concurrently, as many as
`max_concurrent_streams`.

The receive windows are opened to the maximum once, so a client never waits for a WINDOW_UPDATE; the
body-size limit is what bounds the memory a stream may hold. The send side follows the peer's windows
and frame size exactly, so large answers flow to slow readers without being lost or overrunning them.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from modelplane.protocol.http2 import frames as f
from modelplane.protocol.http2.connection import Http2Connection
from modelplane.protocol.http2.hpack import Headers
from modelplane.protocol.http_server import Shutdown, drain

log = logging.getLogger("modelplane.server")

_HTTP1_BODY = b"this port speaks HTTP/2 only (gRPC); REST is on the HTTP port\n"
_HTTP1_REFUSAL = (
    b"HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Type: text/plain\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_HTTP1_BODY), _HTTP1_BODY)
)


@dataclass
class Request:
    stream_id: int
    headers: Headers
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass
class Response:
    headers: bytes  # an HPACK block (`hpack.encode`), :status first
    body: bytes = b""
    trailers: bytes | None = None  # an HPACK block sent after the body, ending the stream


Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class ServerLimits:
    max_body_size: int
    too_large_response: Callable[[int], Response]  # the answer to a body above the limit
    failure_response: Callable[[Exception], Response]  # the answer when the handler raises
    max_concurrent_streams: int = 1024


class _Call:
    __slots__ = ("headers", "chunks", "size", "task", "unsent", "trailers")

    def __init__(self, headers: Headers) -> None:
        self.headers = headers
        self.chunks: list[bytes] = []
        self.size = 0
        self.task: asyncio.Task | None = None
        self.unsent: memoryview | None = None  # answer bytes held back by flow control
        self.trailers: bytes | None = None  # sent once `unsent` is gone


class Http2ServerProtocol(Http2Connection):
    def __init__(self, handler: Handler, connections: set, limits: ServerLimits) -> None:
        super().__init__(client_side=False, max_concurrent_streams=limits.max_concurrent_streams)
        self._handler = handler
        self._connections = connections
        self._limits = limits
        self._calls: dict[int, _Call] = {}
        self._blocked: dict[int, _Call] = {}  # calls whose answer waits for a window
        self._going_away = False

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
            if call.task is not None:
                call.task.cancel()  # nobody is left to read the answer
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
            call = self._calls[stream_id] = _Call(headers)
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
            self._respond(stream_id, call, self._limits.too_large_response(self._limits.max_body_size))
            return
        if data:
            call.chunks.append(data)
        if end_stream:
            self._start(stream_id, call)

    def on_reset(self, stream_id: int, error_code: int) -> None:
        call = self._calls.pop(stream_id, None)
        self._blocked.pop(stream_id, None)
        if call is not None and call.task is not None:
            call.task.cancel()
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
        request = Request(stream_id, call.headers, body)
        call.task = self._loop.create_task(self._answer(stream_id, call, request))

    async def _answer(self, stream_id: int, call: _Call, request: Request) -> None:
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

    def _respond(self, stream_id: int, call: _Call, response: Response) -> None:
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
        self._calls.pop(stream_id, None)
        if stream_id in self.streams:  # answered before the request was whole: the rest is not needed
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

    def _close_if_done(self) -> None:
        if self._going_away and not self._calls and not self.closed:
            self.flush()
            self.transport.close()


async def serve(handler: Handler, sock: socket.socket, limits: ServerLimits, shutdown: Shutdown) -> None:
    """Serve on a listening socket until shutdown is requested, then finish the streams under way."""
    loop = asyncio.get_running_loop()
    connections: set[Http2ServerProtocol] = set()
    server = await loop.create_server(lambda: Http2ServerProtocol(handler, connections, limits), sock=sock)
    try:
        await shutdown.requested.wait()
    finally:
        server.close()
        for connection in list(connections):
            connection.go_away()
        await drain(connections, shutdown)
