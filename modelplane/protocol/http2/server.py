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
from modelplane.protocol.http2.hpack import Decoder, Headers, HpackError
from modelplane.protocol.http_server import Shutdown

log = logging.getLogger("modelplane.server")

_HTTP1_BODY = b"this port speaks HTTP/2 only (gRPC); REST is on the HTTP port\n"
_HTTP1_REFUSAL = (
    b"HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Type: text/plain\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_HTTP1_BODY), _HTTP1_BODY)
)
_OUR_MAX_FRAME_SIZE = 1 << 20
_WINDOW_REFILL = 1 << 30  # received bytes after which the connection window is opened again


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


class _Stream:
    __slots__ = (
        "id",
        "headers",
        "chunks",
        "size",
        "ended_remote",
        "task",
        "send_window",
        "unsent",
        "trailers",
    )

    def __init__(self, stream_id: int, headers: Headers, send_window: int) -> None:
        self.id = stream_id
        self.headers = headers
        self.chunks: list[bytes] = []
        self.size = 0
        self.ended_remote = False
        self.task: asyncio.Task | None = None
        self.send_window = send_window
        self.unsent: memoryview | None = None  # body bytes held back by flow control
        self.trailers: bytes | None = None  # sent once `unsent` is gone


class Http2ServerProtocol(asyncio.Protocol):
    def __init__(self, handler: Handler, connections: set, limits: ServerLimits) -> None:
        self._handler = handler
        self._connections = connections
        self._limits = limits
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._preface_seen = False
        self._decoder = Decoder()
        self._streams: dict[int, _Stream] = {}
        self._blocked: dict[int, _Stream] = {}  # streams whose answer waits for a window
        self._last_stream_id = 0
        self._header_block: tuple[int, int, list[bytes]] | None = None  # (stream, flags, fragments)
        self._send_window = f.DEFAULT_WINDOW
        self._peer_initial_window = f.DEFAULT_WINDOW
        self._peer_max_frame = f.DEFAULT_MAX_FRAME_SIZE
        self._received_unacknowledged = 0
        self._going_away = False
        self._handlers = {
            f.DATA: self._on_data,
            f.HEADERS: self._on_headers,
            f.PRIORITY: _ignore,
            f.RST_STREAM: self._on_rst_stream,
            f.SETTINGS: self._on_settings,
            f.PUSH_PROMISE: _refuse_push,
            f.PING: self._on_ping,
            f.GOAWAY: self._on_goaway,
            f.WINDOW_UPDATE: self._on_window_update,
            f.CONTINUATION: self._on_continuation,
        }

    @property
    def idle(self) -> bool:
        return not self._streams

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        for stream in self._streams.values():
            if stream.task is not None:
                stream.task.cancel()  # nobody is left to read the answer
        self._streams.clear()
        self._blocked.clear()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        try:
            if not self._preface_seen:
                if len(buffer) < len(f.PREFACE):
                    if not f.PREFACE.startswith(buffer):
                        self._refuse_http1()
                        return
                    self._buffer = buffer
                    return
                if not buffer.startswith(f.PREFACE):
                    self._refuse_http1()
                    return
                self._preface_seen = True
                buffer = buffer[len(f.PREFACE) :]
                self._send_preface()
            self._buffer = self._read_frames(buffer)
        except f.ConnectionFault as fault:
            self._fail(fault.code, str(fault))
        except HpackError as exc:
            self._fail(f.COMPRESSION_ERROR, str(exc))

    def _send_preface(self) -> None:
        # Only once the client's preface is in, so an HTTP/1.1 client gets a readable refusal instead.
        ours = {
            f.MAX_CONCURRENT_STREAMS: self._limits.max_concurrent_streams,
            f.INITIAL_WINDOW_SIZE: f.MAX_WINDOW,
            f.MAX_FRAME_SIZE: _OUR_MAX_FRAME_SIZE,
            f.ENABLE_PUSH: 0,
        }
        self._transport.write(f.settings(ours) + f.window_update(0, f.MAX_WINDOW - f.DEFAULT_WINDOW))

    def _read_frames(self, buffer: bytes) -> bytes:
        pos, end = 0, len(buffer)
        unpack = f.HEADER.unpack_from
        handlers = self._handlers
        while end - pos >= 9:
            length_high, length_low, kind, flags, stream_id = unpack(buffer, pos)
            length = length_high << 16 | length_low
            if length > _OUR_MAX_FRAME_SIZE:
                raise f.ConnectionFault(f.FRAME_SIZE_ERROR, f"a frame of {length} bytes")
            if end - pos - 9 < length:
                break
            payload = buffer[pos + 9 : pos + 9 + length]
            pos += 9 + length
            if self._header_block is not None and kind != f.CONTINUATION:
                raise f.ConnectionFault(f.PROTOCOL_ERROR, "a header block was interrupted")
            handler = handlers.get(kind)
            if handler is not None:  # unknown frame types are ignored (RFC 9113 §4.1)
                handler(flags, stream_id & 0x7FFFFFFF, payload)
            if self._transport.is_closing():
                return b""
        return buffer[pos:]

    # frames from the client

    def _on_headers(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id == 0:
            raise f.ConnectionFault(f.PROTOCOL_ERROR, "HEADERS on stream 0")
        payload = f.strip_padding(flags, payload)
        if flags & f.PRIORITY_FLAG:
            payload = payload[5:]
        if flags & f.END_HEADERS:
            self._on_header_block(stream_id, flags, payload)
        else:
            self._header_block = (stream_id, flags, [payload])

    def _on_continuation(self, flags: int, stream_id: int, payload: bytes) -> None:
        if self._header_block is None or self._header_block[0] != stream_id:
            raise f.ConnectionFault(f.PROTOCOL_ERROR, "CONTINUATION without HEADERS")
        self._header_block[2].append(payload)
        if flags & f.END_HEADERS:
            _, first_flags, fragments = self._header_block
            self._header_block = None
            self._on_header_block(stream_id, first_flags, b"".join(fragments))

    def _on_header_block(self, stream_id: int, flags: int, block: bytes) -> None:
        headers = self._decoder.decode(block)  # always, to keep the decoder's table in step
        stream = self._streams.get(stream_id)
        if stream is not None:  # trailers: they end the request
            if stream.ended_remote:
                return  # the stream was already whole; a late block changes nothing
            if not flags & f.END_STREAM:
                raise f.ConnectionFault(
                    f.PROTOCOL_ERROR, "a second header block that does not end the stream"
                )
            self._end_request(stream)
            return
        if stream_id <= self._last_stream_id or not stream_id & 1:
            if stream_id <= self._last_stream_id:
                return  # a stream already closed (e.g. reset by us): nothing to answer
            raise f.ConnectionFault(f.PROTOCOL_ERROR, f"stream {stream_id} cannot be opened by a client")
        self._last_stream_id = stream_id
        if self._going_away:
            self._transport.write(f.rst_stream(stream_id, f.REFUSED_STREAM))
            return
        if len(self._streams) >= self._limits.max_concurrent_streams:
            self._transport.write(f.rst_stream(stream_id, f.REFUSED_STREAM))
            return
        stream = _Stream(stream_id, headers, self._peer_initial_window)
        self._streams[stream_id] = stream
        if flags & f.END_STREAM:
            self._end_request(stream)

    def _on_data(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id == 0:
            raise f.ConnectionFault(f.PROTOCOL_ERROR, "DATA on stream 0")
        self._received_unacknowledged += len(payload)
        if self._received_unacknowledged >= _WINDOW_REFILL:
            self._transport.write(f.window_update(0, self._received_unacknowledged))
            self._received_unacknowledged = 0
        stream = self._streams.get(stream_id)
        if stream is None or stream.ended_remote or stream.task is not None:
            if stream_id > self._last_stream_id:
                raise f.ConnectionFault(f.PROTOCOL_ERROR, f"DATA on idle stream {stream_id}")
            return  # a stream answered early or reset: its remaining data is dropped
        body = f.strip_padding(flags, payload)
        stream.size += len(body)
        if stream.size > self._limits.max_body_size:
            self._respond(stream, self._limits.too_large_response(self._limits.max_body_size))
            return
        if body:
            stream.chunks.append(body)
        if flags & f.END_STREAM:
            self._end_request(stream)

    def _on_rst_stream(self, flags: int, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise f.ConnectionFault(f.FRAME_SIZE_ERROR, "RST_STREAM must be 4 bytes")
        stream = self._streams.pop(stream_id, None)
        self._blocked.pop(stream_id, None)
        if stream is not None and stream.task is not None:
            stream.task.cancel()
        self._close_if_done()

    def _on_settings(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id:
            raise f.ConnectionFault(f.PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & f.ACK:
            if payload:
                raise f.ConnectionFault(f.FRAME_SIZE_ERROR, "a SETTINGS acknowledgement with a payload")
            return
        for key, value in f.parse_settings(payload):
            if key == f.INITIAL_WINDOW_SIZE:
                if value > f.MAX_WINDOW:
                    raise f.ConnectionFault(f.FLOW_CONTROL_ERROR, "initial window size above 2^31-1")
                delta = value - self._peer_initial_window
                self._peer_initial_window = value
                for stream in self._streams.values():
                    stream.send_window += delta
            elif key == f.MAX_FRAME_SIZE:
                if not f.DEFAULT_MAX_FRAME_SIZE <= value <= (1 << 24) - 1:
                    raise f.ConnectionFault(f.PROTOCOL_ERROR, f"max frame size {value} is out of range")
                self._peer_max_frame = value
        self._transport.write(f.frame(f.SETTINGS, f.ACK, 0))
        self._send_blocked()

    def _on_ping(self, flags: int, stream_id: int, payload: bytes) -> None:
        if len(payload) != 8 or stream_id:
            raise f.ConnectionFault(f.FRAME_SIZE_ERROR, "a PING must be 8 bytes on stream 0")
        if not flags & f.ACK:
            self._transport.write(f.frame(f.PING, f.ACK, 0, payload))

    def _on_goaway(self, flags: int, stream_id: int, payload: bytes) -> None:
        self._going_away = True  # the client opens no more streams; those under way are answered
        self._close_if_done()

    def _on_window_update(self, flags: int, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise f.ConnectionFault(f.FRAME_SIZE_ERROR, "WINDOW_UPDATE must be 4 bytes")
        increment = f.u32(payload) & 0x7FFFFFFF
        if stream_id == 0:
            if increment == 0:
                raise f.ConnectionFault(f.PROTOCOL_ERROR, "a WINDOW_UPDATE of 0")
            self._send_window += increment
            if self._send_window > f.MAX_WINDOW:
                raise f.ConnectionFault(f.FLOW_CONTROL_ERROR, "the connection window went above 2^31-1")
        else:
            stream = self._streams.get(stream_id)
            if stream is None:
                return
            if increment == 0 or stream.send_window + increment > f.MAX_WINDOW:
                self._reset(stream, f.PROTOCOL_ERROR if increment == 0 else f.FLOW_CONTROL_ERROR)
                return
            stream.send_window += increment
        self._send_blocked()

    # answering

    def _end_request(self, stream: _Stream) -> None:
        stream.ended_remote = True
        chunks = stream.chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        stream.chunks = []
        request = Request(stream.id, stream.headers, body)
        stream.task = self._loop.create_task(self._answer(stream, request))

    async def _answer(self, stream: _Stream, request: Request) -> None:
        try:
            response = await self._handler(request)
        except Exception as exc:  # noqa: BLE001 - the handler's fault becomes an error answer
            log.exception("the request handler failed")
            response = self._limits.failure_response(exc)
        if self._streams.get(stream.id) is stream and not self._transport.is_closing():
            self._respond(stream, response)

    def _respond(self, stream: _Stream, response: Response) -> None:
        body, trailers = response.body, response.trailers
        out = [
            f.header_frames(stream.id, response.headers, not body and trailers is None, self._peer_max_frame)
        ]
        stream.trailers = trailers
        if body:
            stream.unsent = memoryview(body)
            self._send_data(stream, out)
        else:
            self._finish(stream, out)
        self._transport.write(b"".join(out))
        self._close_if_done()

    def _send_data(self, stream: _Stream, out: list[bytes]) -> None:
        """Append the DATA frames the windows allow; the stream waits in `_blocked` for the rest."""
        unsent = stream.unsent
        max_frame = self._peer_max_frame
        while unsent:
            allowed = min(len(unsent), stream.send_window, self._send_window, max_frame)
            if allowed <= 0:
                stream.unsent = unsent
                self._blocked[stream.id] = stream
                return
            chunk, unsent = unsent[:allowed], unsent[allowed:]
            stream.send_window -= allowed
            self._send_window -= allowed
            last = not unsent and stream.trailers is None
            out.append(f.frame(f.DATA, f.END_STREAM if last else 0, stream.id, chunk.tobytes()))
        stream.unsent = None
        self._blocked.pop(stream.id, None)
        self._finish(stream, out)

    def _finish(self, stream: _Stream, out: list[bytes]) -> None:
        if stream.trailers is not None:
            out.append(f.header_frames(stream.id, stream.trailers, True, self._peer_max_frame))
        if not stream.ended_remote:
            out.append(f.rst_stream(stream.id, f.NO_ERROR))  # answered early: the rest is not needed
        self._streams.pop(stream.id, None)

    def _send_blocked(self) -> None:
        if not self._blocked or self._send_window <= 0:
            return
        out: list[bytes] = []
        for stream in list(self._blocked.values()):
            if stream.send_window > 0 and self._send_window > 0:
                self._send_data(stream, out)
        if out:
            self._transport.write(b"".join(out))
            self._close_if_done()

    def _reset(self, stream: _Stream, code: int) -> None:
        self._streams.pop(stream.id, None)
        self._blocked.pop(stream.id, None)
        if stream.task is not None:
            stream.task.cancel()
        self._transport.write(f.rst_stream(stream.id, code))

    # ending

    def go_away(self) -> None:
        """Stop taking new streams; the connection closes once those under way are answered."""
        if not self._going_away and not self._transport.is_closing():
            self._transport.write(f.goaway(self._last_stream_id, f.NO_ERROR))
        self._going_away = True
        self._close_if_done()

    def abort(self) -> None:
        self._transport.abort()

    def _close_if_done(self) -> None:
        if self._going_away and not self._streams:
            self._transport.close()

    def _fail(self, code: int, message: str) -> None:
        log.info("closing an HTTP/2 connection: %s", message)
        self._transport.write(f.goaway(self._last_stream_id, code, message))
        self._transport.close()

    def _refuse_http1(self) -> None:
        self._transport.write(_HTTP1_REFUSAL)
        self._transport.close()


def _ignore(flags: int, stream_id: int, payload: bytes) -> None:
    pass


def _refuse_push(flags: int, stream_id: int, payload: bytes) -> None:
    raise f.ConnectionFault(f.PROTOCOL_ERROR, "a client cannot push")


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
        deadline = loop.time() + shutdown.grace_seconds
        while any(not c.idle for c in connections) and loop.time() < deadline and not shutdown.at_once:
            await asyncio.sleep(0.05)
        for connection in list(connections):
            connection.abort()
