"""A small HTTP/1.1 server on asyncio and httptools, shared by the model server and the graph router.

Both answer every request from its whole body, so the server does only that: whole request bodies (with a
size limit), each response written with one call (status line, headers and body in one packet when they
fit), keep-alive with an idle timeout, an optional read timeout that covers headers and body, pipelining,
and a graceful stop. A response may also be a stream (Server-Sent Events of a generation, say): its
chunks are written as they come, with chunked transfer encoding, as fast as the client reads them, and a
client that goes away ends the stream. It costs less per request than an ASGI server, whose per-request machinery neither
needs (bench/graph_router.py and bench/model_server.py measure it), and it never splits a small response
into a header packet and a body packet, which would wake the client twice.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus

import httptools

log = logging.getLogger("modelplane.router")

_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
# Above this size a body is written after the head instead of being copied into one buffer with it.
_JOIN_LIMIT = 64 * 1024


@dataclass
class Request:
    method: bytes
    path: bytes  # the request target as sent, query included
    headers: list[tuple[bytes, bytes]]  # names in lower case
    body: bytes


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: bytes | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)  # more headers, after Content-Type
    # A body written chunk by chunk as it is produced, instead of `body`; closed early if the client leaves.
    stream: AsyncIterator[bytes] | None = None


Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class ServerLimits:
    read_timeout: float | None  # headers and body of one request; None: no limit
    idle_timeout: float  # between requests on a kept-alive connection
    read_timeout_response: Callable[[], Response] = field(default=lambda: Response(408))
    max_body_size: int | None = None  # a larger request body is answered 413 and the connection closed
    too_large_response: Callable[[int], Response] = field(default=lambda limit: Response(413))


class ServerState:
    """What all connections share: the open connections, and whether the server is stopping."""

    def __init__(self) -> None:
        self.connections: set[HttpServerProtocol] = set()
        self.stopping = False
        self._date = b""
        self._date_second = -1

    def date_header(self) -> bytes:
        now = int(time.time())
        if now != self._date_second:
            self._date_second = now
            self._date = b"Date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
        return self._date


class HttpServerProtocol(asyncio.Protocol):
    """One client connection; requests are answered one after the other, in order."""

    def __init__(self, handler: Handler, state: ServerState, limits: ServerLimits) -> None:
        self._handler = handler
        self._state = state
        self._limits = limits
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._pending: collections.deque[tuple[Request, bool]] = collections.deque()
        self._task: asyncio.Task | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._receiving = False  # a request has begun to arrive and is not whole yet
        self._url: list[bytes] = []
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._body_size = 0
        self._writable = asyncio.Event()  # cleared while the transport's write buffer is full
        self._writable.set()

    @property
    def idle(self) -> bool:
        return self._task is None and not self._pending

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._state.connections.add(self)
        self._arm(self._limits.idle_timeout)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject()
        except httptools.HttpParserError as exc:
            # An exception raised in a callback arrives wrapped, with the original as its context.
            if isinstance(exc.__context__, _TooLarge):
                self._reject(self._limits.too_large_response(self._limits.max_body_size))
            else:
                self._reject()

    def connection_lost(self, exc: Exception | None) -> None:
        self._state.connections.discard(self)
        self._disarm()
        if self._task is not None:
            self._task.cancel()  # nobody is left to read the answer
        self._pending.clear()
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._receiving = True
        self._url, self._headers, self._body = [], [], []
        self._body_size = 0
        if self.idle:
            if self._limits.read_timeout is None:
                self._disarm()  # the idle timeout no longer applies
            else:
                self._arm(self._limits.read_timeout)

    def on_url(self, url: bytes) -> None:
        self._url.append(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        limit = self._limits.max_body_size
        if limit is not None:
            for name, value in self._headers:
                if name == b"content-length" and value.strip().isdigit() and int(value) > limit:
                    raise _TooLarge
        if self._parser.get_http_version() == "1.1" and (b"expect", b"100-continue") in self._headers:
            self._transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        limit = self._limits.max_body_size
        if limit is not None and self._body_size > limit:
            raise _TooLarge
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._receiving = False
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        request = Request(self._parser.get_method(), b"".join(self._url), self._headers, body)
        self._pending.append((request, self._parser.should_keep_alive()))
        if self._task is None:
            self._disarm()
            self._start_next()

    # answering

    def close_if_idle(self) -> None:
        if self.idle:
            self._transport.close()

    def abort(self) -> None:
        self._transport.abort()

    def _start_next(self) -> None:
        request, keep_alive = self._pending.popleft()
        self._task = self._loop.create_task(self._answer(request, keep_alive))

    async def _answer(self, request: Request, keep_alive: bool) -> None:
        try:
            response = await self._handler(request)
        except Exception:
            log.exception("the request handler failed")
            response = Response(500)
        keep_alive = keep_alive and not self._state.stopping
        if response.stream is None:
            self._write(response, request.method == b"HEAD", keep_alive)
        else:
            keep_alive = await self._write_stream(response, keep_alive)
        self._task = None
        if not keep_alive:
            self._transport.close()
        elif self._pending:
            self._start_next()
        else:
            self._arm(self._limits.idle_timeout)

    def _write(self, response: Response, head_only: bool, keep_alive: bool) -> None:
        status = response.status
        bodiless = status in (204, 304) or status < 200  # statuses that never carry a body or its length
        parts = [
            b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown")),
            self._state.date_header(),
        ]
        if not bodiless:
            parts.append(b"Content-Length: %d\r\n" % len(response.body))
        if response.content_type is not None:
            parts.append(b"Content-Type: %s\r\n" % response.content_type)
        for name, value in response.headers:
            parts.append(b"%s: %s\r\n" % (name, value))
        if not keep_alive:
            parts.append(b"Connection: close\r\n")
        parts.append(b"\r\n")
        body = response.body
        if head_only or bodiless or not body:
            self._transport.write(b"".join(parts))
        elif len(body) > _JOIN_LIMIT:
            self._transport.write(b"".join(parts))
            self._transport.write(body)
        else:
            parts.append(body)
            self._transport.write(b"".join(parts))

    async def _write_stream(self, response: Response, keep_alive: bool) -> bool:
        """Writes a streamed response; returns whether the connection can be kept alive after it."""
        chunked = self._parser.get_http_version() == "1.1"
        keep_alive = keep_alive and chunked  # an HTTP/1.0 client learns the end when the connection closes
        parts = [
            b"HTTP/1.1 %d %s\r\n" % (response.status, _REASONS.get(response.status, b"Unknown")),
            self._state.date_header(),
        ]
        if response.content_type is not None:
            parts.append(b"Content-Type: %s\r\n" % response.content_type)
        for name, value in response.headers:
            parts.append(b"%s: %s\r\n" % (name, value))
        parts.append(b"Transfer-Encoding: chunked\r\n" if chunked else b"")
        parts.append(b"\r\n" if keep_alive else b"Connection: close\r\n\r\n")
        self._transport.write(b"".join(parts))
        stream = response.stream
        try:
            async for chunk in stream:
                if not chunk:
                    continue
                await self._writable.wait()
                if self._transport.is_closing():
                    return False
                self._transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        except Exception:
            log.exception("a streamed response failed part-way")
            return False  # the client sees the stream end without its last chunk
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()
        if chunked:
            self._transport.write(b"0\r\n\r\n")
        return keep_alive

    def _reject(self, response: Response | None = None) -> None:
        """Answer a request that cannot be read (400, or the given response) and close the connection."""
        if self._task is None:
            if response is None:
                self._transport.write(_BAD_REQUEST)
            else:
                self._write(response, False, False)
        self._transport.close()

    # timers: one at a time, the read timeout while a request arrives, the idle timeout between requests

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._timer = self._loop.call_later(seconds, self._on_timeout)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timeout(self) -> None:
        self._timer = None
        if self._task is not None or self._transport.is_closing():
            return
        if self._receiving:  # a request began but did not arrive in time
            self._write(self._limits.read_timeout_response(), False, False)
        self._transport.close()


class _TooLarge(Exception):
    """Raised from a parser callback when the request body exceeds the limit."""


class Shutdown:
    """Asks `serve` to stop: gracefully, or at once."""

    def __init__(self, grace_seconds: float) -> None:
        self.requested = asyncio.Event()
        self.grace_seconds = grace_seconds
        self.at_once = False

    def request(self, *, at_once: bool = False) -> None:
        self.at_once = self.at_once or at_once
        self.requested.set()


async def serve(handler: Handler, sock: socket.socket, limits: ServerLimits, shutdown: Shutdown) -> None:
    """Serve on a listening socket until shutdown is requested, then finish the requests in flight."""
    loop = asyncio.get_running_loop()
    state = ServerState()
    server = await loop.create_server(lambda: HttpServerProtocol(handler, state, limits), sock=sock)
    try:
        await shutdown.requested.wait()
    finally:
        server.close()
        state.stopping = True
        for connection in list(state.connections):
            connection.close_if_idle()
        await drain(state.connections, shutdown)


async def drain(connections: set, shutdown: Shutdown) -> None:
    """Waits (up to the grace period, unless the stop is at once) until every connection is idle, then
    aborts what is left. Each connection has been told to close once idle."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + shutdown.grace_seconds
    while any(not c.idle for c in connections) and loop.time() < deadline and not shutdown.at_once:
        await asyncio.sleep(0.05)
    for connection in list(connections):
        connection.abort()
