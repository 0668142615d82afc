"""Unary gRPC calls over modelplane's own HTTP/2 (gRPC's PROTOCOL-HTTP2 specification, client side).

A `GrpcChannel` holds HTTP/2 connections to one address (cleartext with prior knowledge, or TLS with
ALPN `h2`) and makes each call a stream on one of them: HEADERS naming the method, one length-prefixed
message, and an answer of headers, one message and trailers with `grpc-status`. A connection takes as
many calls at once as the server allows; another is opened when none has room.

What grpcio's client would say of a failed call, the channel says too, as a `GrpcCallError` with the
call's status code: UNAVAILABLE for a server that takes no connection or goes away, DEADLINE_EXCEEDED
for a call past its deadline, and the server's own status otherwise.
"""

from __future__ import annotations

import asyncio
import math
import ssl
import struct
from collections.abc import Iterable

import grpc

from modelplane.protocol.grpc.status import decode_message
from modelplane.protocol.http2 import frames as f
from modelplane.protocol.http2.connection import Http2Connection
from modelplane.protocol.http2.hpack import Headers, encode, find_header

_PREFIX = struct.Struct(">BL")
_CODES = {code.value[0]: code for code in grpc.StatusCode}
# What a reset stream means for its call (gRPC's PROTOCOL-HTTP2, "Errors").
_RESET_CODES = {
    f.REFUSED_STREAM: grpc.StatusCode.UNAVAILABLE,
    f.CANCEL: grpc.StatusCode.CANCELLED,
    f.ENHANCE_YOUR_CALM: grpc.StatusCode.RESOURCE_EXHAUSTED,
    0xC: grpc.StatusCode.PERMISSION_DENIED,  # INADEQUATE_SECURITY
}
# What an answer that is not gRPC's means, by its HTTP status (gRPC's http-grpc-status-mapping).
_HTTP_CODES = {
    400: grpc.StatusCode.INTERNAL,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.UNIMPLEMENTED,
    429: grpc.StatusCode.UNAVAILABLE,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.UNAVAILABLE,
}
# A call the server refused before it began (REFUSED_STREAM, or a stream after its GOAWAY) is made
# again on another connection this many times, whatever the caller's retry policy (as gRPC's
# "transparent retry").
_TRANSPARENT_RETRIES = 2
# A connection stops taking new calls well before HTTP/2's stream ids (2^31) run out.
_LAST_STREAM_ID = 2**30


class GrpcCallError(Exception):
    """A call that ended without an answer: its status code and details. `connected` is false when
    no connection to the server could be made; `refused` is true when the server says it never began
    the call (its stream was refused, or came after the server's GOAWAY)."""

    def __init__(
        self, code: grpc.StatusCode, details: str, connected: bool = True, refused: bool = False
    ) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        self.connected = connected
        self.refused = refused


class _Call:
    __slots__ = ("answer", "unsent", "answered", "chunks")

    def __init__(self, answer: asyncio.Future[bytes]) -> None:
        self.answer = answer
        self.unsent: memoryview | None = None  # the request's bytes the server's window has no room for yet
        self.answered = False  # the answer's headers have come
        self.chunks: list[bytes] = []

    def fail(self, code: grpc.StatusCode, details: str, refused: bool = False) -> None:
        if not self.answer.done():
            self.answer.set_exception(GrpcCallError(code, details, refused=refused))


class _Connection(Http2Connection):
    """One HTTP/2 connection of a channel; each of its streams is a call."""

    def __init__(self, channel: GrpcChannel) -> None:
        super().__init__(client_side=True)
        self.channel = channel
        self.calls: dict[int, _Call] = {}
        self.closing = False  # no new calls: the server said GOAWAY, or the ids are used up
        # Done once the server's first SETTINGS (how many calls it takes at once) have come.
        self.settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def has_room(self) -> bool:
        return not (self.closing or self.closed) and len(self.calls) < self.peer_max_concurrent_streams

    def start(self, call: _Call, headers: bytes, body: bytes) -> int:
        stream_id = self.new_stream_id()
        if stream_id >= _LAST_STREAM_ID:
            self.closing = True
        self.calls[stream_id] = call
        self.send_headers(stream_id, headers)
        sent = self.send_data(stream_id, body, end_stream=True)
        if sent < len(body):
            call.unsent = memoryview(body)[sent:]
        return stream_id

    def cancel(self, stream_id: int) -> None:
        if self.calls.pop(stream_id, None) is not None:
            self.reset(stream_id, f.CANCEL)

    # -- the server's frames ---------------------------------------------------------------------

    def on_headers(self, stream_id: int, headers: Headers, end_stream: bool, new_stream: bool) -> None:
        call = self.calls.get(stream_id)
        if call is None:
            return
        if not call.answered:
            call.answered = True
            status = find_header(headers, b":status")
            if status != b"200":
                code = _HTTP_CODES.get(
                    int(status) if status and status.isdigit() else 0, grpc.StatusCode.UNKNOWN
                )
                self._finish(
                    stream_id, code, f"the server answered HTTP {status.decode('latin-1') if status else '?'}"
                )
                return
            if not end_stream:
                return  # trailers follow the message
        self._end(stream_id, call, headers)

    def on_data(self, stream_id: int, data: bytes, flow_length: int, end_stream: bool) -> None:
        call = self.calls.get(stream_id)
        if call is None:
            return
        call.chunks.append(data)
        if end_stream:
            self._finish(stream_id, grpc.StatusCode.INTERNAL, "the server ended the call without its status")

    def on_reset(self, stream_id: int, error_code: int) -> None:
        call = self.calls.pop(stream_id, None)
        if call is not None:
            code = _RESET_CODES.get(error_code, grpc.StatusCode.INTERNAL)
            call.fail(
                code, f"the server reset the call (HTTP/2 error {error_code})", error_code == f.REFUSED_STREAM
            )
        self._after_call()

    def on_window_opened(self, stream_id: int) -> None:
        if not self.settled.done():
            self.settled.set_result(None)  # the server's SETTINGS, the first frame it sends
        waiting = (
            [stream_id] if stream_id else [s for s, call in self.calls.items() if call.unsent is not None]
        )
        for waiting_id in waiting:
            call = self.calls.get(waiting_id)
            if call is None or call.unsent is None:
                continue
            sent = self.send_data(waiting_id, call.unsent, end_stream=True)
            call.unsent = call.unsent[sent:] if sent < len(call.unsent) else None

    def on_goaway(self, last_stream_id: int, error_code: int) -> None:
        self.closing = True
        self.channel.discard(self)
        for stream_id in [s for s in self.calls if s > last_stream_id]:
            self.calls.pop(stream_id).fail(
                grpc.StatusCode.UNAVAILABLE, "the server is going away", refused=True
            )
        if not self.calls:
            self.close()

    def on_protocol_error(self, message: str) -> None:
        self._lost(f"the server broke the HTTP/2 protocol: {message}")

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.channel.discard(self)
        self._lost("the connection to the server was lost" + (f" ({exc})" if exc else ""))

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.send_goaway()
            self.flush()
            self.transport.close()

    def _end(self, stream_id: int, call: _Call, trailers: Headers) -> None:
        code, details = None, ""
        for name, value in trailers:
            if name == b"grpc-status":
                code = _CODES.get(int(value), grpc.StatusCode.UNKNOWN) if value.isdigit() else None
            elif name == b"grpc-message":
                details = decode_message(value)
        if code is None:
            code, details = grpc.StatusCode.UNKNOWN, "the server sent no grpc-status"
        if code != grpc.StatusCode.OK:
            self._finish(stream_id, code, details)
            return
        self.calls.pop(stream_id, None)
        body = b"".join(call.chunks)
        if len(body) < _PREFIX.size:
            call.fail(grpc.StatusCode.INTERNAL, "the server's answer carries no message")
            return
        compressed, length = _PREFIX.unpack_from(body)
        if compressed or len(body) != _PREFIX.size + length:
            call.fail(grpc.StatusCode.INTERNAL, "the server's answer is not one uncompressed message")
            return
        if not call.answer.done():
            call.answer.set_result(body[_PREFIX.size :])
        self._after_call()

    def _finish(self, stream_id: int, code: grpc.StatusCode, details: str) -> None:
        call = self.calls.pop(stream_id, None)
        if call is not None:
            self.reset(stream_id, f.CANCEL)  # nothing more of it is wanted (a no-op once it is over)
            call.fail(code, details)
        self._after_call()

    def _after_call(self) -> None:
        if self.closing and not self.calls:
            self.close()

    def _lost(self, reason: str) -> None:
        if not self.settled.done():
            self.settled.set_exception(GrpcCallError(grpc.StatusCode.UNAVAILABLE, reason, connected=False))
        calls, self.calls = self.calls, {}
        for call in calls.values():
            call.fail(grpc.StatusCode.UNAVAILABLE, reason)


class GrpcChannel:
    """Unary calls to one gRPC server: `address` is dialled (`host:port`), `authority` names it in
    each call, and `tls` (a client context) makes the connections TLS."""

    def __init__(self, address: str, authority: str, tls: ssl.SSLContext | None = None) -> None:
        self.address = address
        host, _, port = address.rpartition(":")
        self._host, self._port = host.strip("[]"), int(port)
        self._tls = tls
        self._server_hostname = authority.rpartition(":")[0].strip("[]") if tls else None
        self._connections: list[_Connection] = []
        self._connecting: asyncio.Future[None] | None = None
        self._call_headers = [
            (b":method", b"POST"),
            (b":scheme", b"https" if tls else b"http"),
            (b":authority", authority.encode("latin-1")),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
            (b"user-agent", b"modelplane"),
        ]

    async def unary(
        self,
        method: str,
        message: bytes,
        metadata: Iterable[tuple[str, str]] = (),
        timeout: float | None = None,
    ) -> bytes:
        """The answer's message to a call of `method` (`/package.Service/Method`) with `message`, or a
        `GrpcCallError`. `metadata` names are lowercase and values printable ASCII."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        headers = [(b":path", method.encode()), *self._call_headers]
        if deadline is not None:
            headers.append((b"grpc-timeout", grpc_timeout(timeout)))
        headers += [(name.encode("latin-1"), value.encode("latin-1")) for name, value in metadata]
        block, body = encode(headers), _PREFIX.pack(0, len(message)) + message
        try:
            async with asyncio.timeout_at(deadline):
                for attempt in range(_TRANSPARENT_RETRIES + 1):
                    try:
                        return await self._call_once(block, body)
                    except GrpcCallError as error:
                        if not error.refused or attempt == _TRANSPARENT_RETRIES:
                            raise
        except TimeoutError:
            raise GrpcCallError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
        raise AssertionError("the last attempt returns or raises")

    async def _call_once(self, headers: bytes, body: bytes) -> bytes:
        connection = await self._connection()
        call = _Call(asyncio.get_running_loop().create_future())
        stream_id = connection.start(call, headers, body)
        try:
            return await call.answer
        except BaseException:
            connection.cancel(stream_id)
            raise

    def discard(self, connection: _Connection) -> None:
        if connection in self._connections:
            self._connections.remove(connection)

    def close(self) -> None:
        for connection in self._connections:
            connection.close()
        self._connections.clear()

    async def _connection(self) -> _Connection:
        while True:
            for connection in self._connections:
                if connection.has_room():
                    return connection
            if self._connecting is None:
                break
            await asyncio.shield(self._connecting)  # another call is opening one: it may have room
        loop = asyncio.get_running_loop()
        self._connecting = opened = loop.create_future()
        try:
            connection = await self._open()
        finally:
            self._connecting = None
            opened.set_result(None)
        self._connections.append(connection)
        return connection

    async def _open(self) -> _Connection:
        """A new connection, once the server has said how many calls it takes at once (its first
        SETTINGS): until then a connection would seem to take any number."""
        try:
            _, connection = await asyncio.get_running_loop().create_connection(
                lambda: _Connection(self),
                self._host,
                self._port,
                ssl=self._tls,
                server_hostname=self._server_hostname,
            )
        except OSError as exc:
            raise GrpcCallError(
                grpc.StatusCode.UNAVAILABLE, f"failed to connect: {exc.strerror or exc}", connected=False
            ) from None
        try:
            ssl_object = connection.transport.get_extra_info("ssl_object")
            if ssl_object is not None and ssl_object.selected_alpn_protocol() != "h2":
                raise GrpcCallError(
                    grpc.StatusCode.UNAVAILABLE, "the server does not speak HTTP/2 over TLS", connected=False
                )
            await connection.settled
        except BaseException:
            connection.transport.close()
            raise
        return connection


def grpc_timeout(seconds: float) -> bytes:
    """A `grpc-timeout` value: at most eight digits, in the finest unit that fits (rounded up)."""
    for unit, per_second in ((b"m", 1000), (b"S", 1), (b"M", 1 / 60), (b"H", 1 / 3600)):
        value = max(1, math.ceil(seconds * per_second))
        if value < 10**8:
            return b"%d%s" % (value, unit)
    return b"99999999H"


def tls_context() -> ssl.SSLContext:
    """A client TLS context that verifies the server as the system trusts it and offers HTTP/2."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["h2"])
    return context
