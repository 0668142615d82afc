"""A small HTTP/1.1 server on asyncio and httptools, shared by the model server and the graph router.

Both answer every request from its whole body, so the server does only that: whole request bodies (with a
size limit), each response written with one call (status line, headers and body in one packet when they
fit), keep-alive with an idle timeout, an optional read timeout that covers headers and body, pipelining,
and a graceful stop. A response may also be a stream (Server-Sent Events of a generation, say): its
chunks are written as they come, with chunked transfer encoding, as fast as the client reads them, and a
client that goes away ends the stream. It costs less per request than an ASGI server, whose per-request machinery neither
needs (bench/graph_router.py and bench/model_server.py measure it), and it never splits a small response
into a header packet and a body packet, which would wake the client twice.

What a client may hold (`ServerLimits`, docs/security.md): the request head is counted as its bytes
arrive, before the parser sees them, so a head above `max_header_bytes` costs one read and a 431; a
request framed two ways (Content-Length with Transfer-Encoding, two lengths, a coding other than
chunked) is a 400 and the connection closes, so nothing can be smuggled past a proxy in front. Reading
pauses while a pipelined request waits for the one before it, and while the client does not read its
answers. One sweep a second (more often for short timeouts) closes slow and idle connections, looking
at what changed since the sweep before, so a request costs no timer, and a slice of connections at a
time (`sweeps.py`), so that many expiring together do not hold up the requests; past
`max_idle_connections`, a new connection closes the one idle the longest.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate

import httptools
import orjson

from modelplane.protocol.http1_guard import HeadCounter, RequestRefused, check_framing, header_count_refusal
from modelplane.protocol.http1_wire import CONTINUE, LAST_CHUNK, chunk, origin_form, status_line
from modelplane.protocol.http2.frames import opens_with_preface
from modelplane.protocol.lingering import LingeringClose
from modelplane.protocol.sweeps import visit_in_slices

log = logging.getLogger("modelplane.router")

# Above this size a body is written after the head instead of being copied into one buffer with it.
_JOIN_LIMIT = 64 * 1024
# Why a connection is not being read (bits); reading resumes when none is left.
_PAUSED_FOR_PIPELINE = 1  # a whole request waits for the answer to the one before it
_PAUSED_FOR_WRITING = 2  # the client does not read its answers


@dataclass
class HttpRequest:
    method: bytes
    path: bytes  # the request target as sent, query included
    headers: list[tuple[bytes, bytes]]  # names in lower case
    body: bytes


@dataclass
class HttpResponse:
    status: int
    body: bytes = b""
    content_type: bytes | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)  # more headers, after Content-Type
    # A body written chunk by chunk as it is produced, instead of `body`; closed early if the client leaves.
    stream: AsyncIterator[bytes] | None = None


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]
# Takes over a connection that opened with HTTP/2's preface: its transport and the bytes read so far.
HandOver = Callable[[asyncio.Transport, bytes], None]

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")  # RFC 9110 §5.1
_FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*\Z")  # §5.5: no CR, LF or other controls
# The framing and the connection are the server's to say.
_SERVER_HEADERS = frozenset(
    (b"content-length", b"transfer-encoding", b"connection", b"keep-alive", b"upgrade", b"te", b"trailer")
)


def checked_header(name: str, value: object) -> tuple[bytes, bytes]:
    """A header given by code the server runs (a model), as it is written; raises ValueError for one
    that would break the response open (a CR or LF in it, a name that is not a token) or that frames
    it (Content-Length, Transfer-Encoding, Connection: the server writes those)."""
    try:
        raw_name, raw_value = name.lower().encode("latin-1"), str(value).encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"response header {name!r}: only Latin-1 text can be sent") from None
    if not _TOKEN.match(raw_name):
        raise ValueError(f"response header name {name!r} is not an HTTP token")
    if not _FIELD_VALUE.match(raw_value):
        raise ValueError(f"response header {name!r} has a control character (such as CR or LF) in its value")
    if raw_name in _SERVER_HEADERS:
        raise ValueError(f"response header {name!r} is the server's to set")
    return raw_name, raw_value


def json_error(status: int, message: str) -> HttpResponse:
    """`{"error": message}`, the answer to a request the server itself refuses."""
    return HttpResponse(status, orjson.dumps({"error": message}), b"application/json")


@dataclass
class ServerLimits:
    """What one client connection may take; the refusals are `error_response(status, message)`."""

    read_timeout: float | None  # headers and body of one request; None: no limit
    idle_timeout: float  # between requests on a kept-alive connection
    read_timeout_response: Callable[[], HttpResponse] = field(default=lambda: HttpResponse(408))
    max_body_size: int | None = None  # a larger request body is answered 413 and the connection closed
    # The 413's answer, given the limit, the request (its head: its body is not read) and the body's size
    # (its Content-Length, else the bytes that came before the refusal).
    too_large_response: Callable[[int, HttpRequest, int], HttpResponse] = field(
        default=lambda limit, request, size: HttpResponse(413)
    )
    header_timeout: float = 10.0  # the request line and headers, from their first byte (408)
    body_timeout: float = 60.0  # a request body that does not move for this long (408)
    max_header_bytes: int = 64 * 1024  # request line and headers (431)
    max_header_count: int = 100  # (431)
    max_idle_connections: int = 1024  # connections not being answered; past it the longest idle closes
    error_response: Callable[[int, str], HttpResponse] = json_error


class ServerState:
    """What all connections share: the open connections, those not being answered (longest idle first),
    and whether the server is stopping."""

    def __init__(self) -> None:
        self.connections: set[HttpServerProtocol] = set()
        self.idle: dict[HttpServerProtocol, None] = {}
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

    def __init__(
        self, handler: Handler, state: ServerState, limits: ServerLimits, http2: HandOver | None = None
    ) -> None:
        self._handler = handler
        self._http2 = http2
        # The connection's first bytes while they may still be HTTP/2's preface; None once they are not.
        self._preface: bytes | None = b"" if http2 is not None else None
        self._state = state
        self._limits = limits
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        # Requests to answer, each with whether the connection stays open after it; last, the refusal of
        # a request that came after them, if one did.
        self._pending: collections.deque[tuple[HttpRequest | HttpResponse, bool]] = collections.deque()
        self._read_all = False  # the last request the connection takes has arrived: what follows is dropped
        self._task: asyncio.Task | None = None
        self._receiving = False  # a request has begun to arrive and is not whole yet
        self._url: list[bytes] = []
        self._headers: list[tuple[bytes, bytes]] = []
        self._transfer_encoding: bytes | None = None
        self._body: list[bytes] = []
        self._body_size = 0
        self._head = HeadCounter(limits.max_header_bytes)  # counting while a head is expected
        self._requests_begun = 0
        self._requests_done = 0
        self._paused = 0
        # What the sweep saw last: the request it timed from, and the progress it timed from.
        self._seen_request: tuple[int, float] = (-1, 0.0)
        self._seen_progress: tuple[object, float] = (None, 0.0)
        self._writable = asyncio.Event()  # cleared while the transport's write buffer is full
        self._held: list[bytes] = []  # answers not yet written (`_send`)
        self._held_size = 0
        self._lingering: LingeringClose | None = None  # closing: what arrives is dropped
        self._writable.set()

    @property
    def idle(self) -> bool:
        return self._task is None and not self._pending

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        state = self._state
        state.connections.add(self)
        state.idle[self] = None
        if len(state.idle) > self._limits.max_idle_connections:
            oldest = next(iter(state.idle))
            del state.idle[oldest]
            oldest.close_if_idle()

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None:
            self._lingering.drop(data)
            return
        if self._read_all:
            return
        if self._preface is not None:
            data = self._check_preface(data)
            if not data:
                return
        if self._head.count is not None and not self._head.add(data):
            refusal = self._head.refusal()
            self._reject(refusal.status, refusal.message)
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(400, "protocol upgrades are not supported")
        except httptools.HttpParserError as exc:
            # An exception raised in a callback arrives wrapped, with the original as its context.
            refusal = exc.__context__
            if isinstance(refusal, _LastRequest):
                return
            if isinstance(refusal, _TooLarge):
                head = HttpRequest(self._parser.get_method(), self._target(), self._headers, b"")
                size = refusal.declared or self._body_size
                response = self._limits.too_large_response(self._limits.max_body_size, head, size)
                self._reject_with(response, still_coming=refusal.declared)
            elif isinstance(refusal, RequestRefused):
                self._reject(refusal.status, refusal.message)
            else:
                self._reject(400, f"malformed HTTP request: {exc}")

    def _check_preface(self, data: bytes) -> bytes:
        """The bytes to read as HTTP/1.1; none when the connection has turned out to be HTTP/2 (it is
        handed over) or may still do so."""
        seen = self._preface + data
        http2 = opens_with_preface(seen)
        self._preface = seen if http2 is None else None
        if http2 is False:
            return seen
        if http2:
            self._read_all = True  # nothing more reaches this object
            self._state.connections.discard(self)
            self._state.idle.pop(self, None)
            self._http2(self._transport, seen)
        return b""

    def connection_lost(self, exc: Exception | None) -> None:
        self._state.connections.discard(self)
        self._state.idle.pop(self, None)
        if self._task is not None:
            self._task.cancel()  # nobody is left to read the answer
            # The cancelled task's frames hold its request; the parser's callbacks make this protocol a
            # reference cycle that only the cycle collector frees, which may be many requests later.
            self._task = None
        self._body = []
        self._pending.clear()
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()
        self._pause_reading(_PAUSED_FOR_WRITING)

    def resume_writing(self) -> None:
        self._writable.set()
        self._resume_reading(_PAUSED_FOR_WRITING)

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._receiving = True
        self._requests_begun += 1
        self._url, self._headers, self._body = [], [], []
        self._transfer_encoding = None
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url.append(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        self._headers.append((name, value))
        if len(self._headers) > self._limits.max_header_count:
            raise header_count_refusal(self._limits.max_header_count)
        if name == b"transfer-encoding":
            self._transfer_encoding = value

    def on_headers_complete(self) -> None:
        self._head.stop()
        parser = self._parser
        check_framing(parser.get_http_version(), self._transfer_encoding)
        limit = self._limits.max_body_size
        if limit is not None:
            for name, value in self._headers:
                if name == b"content-length" and value.strip().isdigit() and int(value) > limit:
                    raise _TooLarge(int(value))
        if parser.get_http_version() == "1.1" and any(
            name == b"expect" and value.strip().lower() == b"100-continue" for name, value in self._headers
        ):
            self._flush()
            self._transport.write(CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        limit = self._limits.max_body_size
        if limit is not None and self._body_size > limit:
            self._body = []
            raise _TooLarge(0)
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._receiving = False
        self._head.start()
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body = []  # the request holds it now: a connection keeps no body after handing it over
        request = HttpRequest(self._parser.get_method(), self._target(), self._headers, body)
        keep_alive = self._parser.should_keep_alive()
        self._pending.append((request, keep_alive))
        if self._task is None:
            self._start_next()
        else:
            self._pause_reading(_PAUSED_FOR_PIPELINE)
        if not keep_alive:  # `Connection: close`: no request after this one is read (RFC 9112, 9.6)
            self._read_all = True
            raise _LastRequest

    def _target(self) -> bytes:
        target = b"".join(self._url)
        return target if target[:1] == b"/" else origin_form(target)[0]

    # answering

    def close_if_idle(self) -> None:
        if self.idle:
            self._transport.close()

    def abort(self) -> None:
        self._transport.abort()

    def _start_next(self) -> None:
        self._state.idle.pop(self, None)
        self._task = self._loop.create_task(self._answer_pending())

    async def _answer_pending(self) -> None:
        """Answers the requests waiting, in order. Pipelined requests whose handlers do not wait on
        anything are answered in one step of the loop, and their answers leave in one write."""
        keep_alive = True
        while keep_alive and self._pending:
            request, keep_alive = self._pending.popleft()
            if not self._pending:
                self._resume_reading(_PAUSED_FOR_PIPELINE)
            if isinstance(request, HttpResponse):  # the refusal of a request after those answered
                self._write(request, False, False)
                break
            try:
                response = await self._handler(request)
            except Exception:
                log.exception("the request handler failed")
                response = HttpResponse(500)
            keep_alive = keep_alive and not self._state.stopping
            if response.stream is None:
                self._write(response, request.method == b"HEAD", keep_alive)
            else:
                keep_alive = await self._write_stream(response, keep_alive)
            self._requests_done += 1
        self._task = None
        if not keep_alive:
            self._flush()
            self._lingering = LingeringClose(self._transport)
        elif not self._transport.is_closing():
            self._state.idle[self] = None

    def _write(self, response: HttpResponse, head_only: bool, keep_alive: bool) -> None:
        status = response.status
        bodiless = status in (204, 304) or status < 200  # statuses that never carry a body or its length
        parts = [
            status_line(status),
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
            self._send(b"".join(parts))
        elif len(body) > _JOIN_LIMIT:
            self._flush()
            self._transport.write(b"".join(parts))
            self._transport.write(body)
        else:
            parts.append(body)
            self._send(b"".join(parts))

    def _send(self, data: bytes) -> None:
        """Writes an answer; while more pipelined requests wait to be answered, holds it until the end of
        this step of the loop, so that the answers made in it go out in one write (one packet to the
        client rather than one each)."""
        if self._pending and self._held_size + len(data) <= _JOIN_LIMIT:
            if not self._held:
                self._loop.call_soon(self._flush)
            self._held.append(data)
            self._held_size += len(data)
            return
        if self._held:
            self._held.append(data)
            data = b"".join(self._held)
            self._held.clear()
            self._held_size = 0
        self._transport.write(data)

    def _flush(self) -> None:
        if self._held:
            data = b"".join(self._held)
            self._held.clear()
            self._held_size = 0
            if not self._transport.is_closing():
                self._transport.write(data)

    async def _write_stream(self, response: HttpResponse, keep_alive: bool) -> bool:
        """Writes a streamed response; returns whether the connection can be kept alive after it."""
        chunked = self._parser.get_http_version() == "1.1"
        keep_alive = keep_alive and chunked  # an HTTP/1.0 client learns the end when the connection closes
        parts = [
            status_line(response.status),
            self._state.date_header(),
        ]
        if response.content_type is not None:
            parts.append(b"Content-Type: %s\r\n" % response.content_type)
        for name, value in response.headers:
            parts.append(b"%s: %s\r\n" % (name, value))
        parts.append(b"Transfer-Encoding: chunked\r\n" if chunked else b"")
        parts.append(b"\r\n" if keep_alive else b"Connection: close\r\n\r\n")
        self._flush()
        self._transport.write(b"".join(parts))
        stream = response.stream
        try:
            async for piece in stream:
                if not piece:
                    continue
                await self._writable.wait()
                if self._transport.is_closing():
                    return False
                self._transport.write(chunk(piece) if chunked else piece)
        except Exception:
            log.exception("a streamed response failed part-way")
            return False  # the client sees the stream end without its last chunk
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()
        if chunked:
            self._transport.write(LAST_CHUNK)
        return keep_alive

    def _reject(self, status: int, message: str) -> None:
        self._reject_with(self._limits.error_response(status, message))

    def _reject_with(self, response: HttpResponse, still_coming: int = 0) -> None:
        """Answers a request that cannot be taken, once the requests before it are answered, and closes
        the connection; `still_coming`: the bytes of its body the client declared and will send."""
        self._read_all = True
        if self._task is None:
            self._write(response, False, False)
            self._lingering = LingeringClose(self._transport, still_coming)
        else:
            self._pending.append((response, False))

    # reading

    def _pause_reading(self, reason: int) -> None:
        if not self._paused and not self._transport.is_closing():
            self._transport.pause_reading()
        self._paused |= reason

    def _resume_reading(self, reason: int) -> None:
        if self._paused & reason:
            self._paused &= ~reason
            if not self._paused and not self._transport.is_closing():
                self._transport.resume_reading()

    # timeouts, applied by the server's sweep

    def sweep(self, now: float) -> None:
        if self._task is not None or self._lingering is not None or self._transport.is_closing():
            return  # an answer is under way: the client is waiting for us, not we for it
        limits = self._limits
        if self._receiving:
            request, since = self._seen_request
            if request != self._requests_begun:
                self._seen_request = (self._requests_begun, now)
                since = now
            if self._head.count is not None and now - since >= limits.header_timeout:
                self._time_out(408, f"the request head did not arrive within {limits.header_timeout:g}s")
                return
            if limits.read_timeout is not None and now - since >= limits.read_timeout:
                self._write(limits.read_timeout_response(), False, False)
                self._transport.close()
                return
            if self._head.count is None:
                self._watch_progress(now, (self._requests_begun, self._body_size), limits.body_timeout, True)
        elif self._requests_done:
            self._watch_progress(now, self._requests_done, limits.idle_timeout, False)
        else:  # a new connection's first request is a head like any other
            self._watch_progress(now, 0, limits.header_timeout, False)

    def _watch_progress(self, now: float, progress: object, timeout: float, body: bool) -> None:
        seen, since = self._seen_progress
        if seen != progress:
            self._seen_progress = (progress, now)
        elif now - since >= timeout:
            if body:
                self._time_out(408, f"the request body stopped arriving: nothing came for {timeout:g}s")
            else:
                self._transport.close()

    def _time_out(self, status: int, message: str) -> None:
        self._write(self._limits.error_response(status, message), False, False)
        self._transport.close()


class _TooLarge(Exception):
    """Raised from a parser callback when the request body exceeds the limit; `declared` is the length
    its Content-Length gave (0 when it had none)."""

    def __init__(self, declared: int) -> None:
        super().__init__(declared)
        self.declared = declared


class _LastRequest(Exception):  # noqa: N818 (a signal, not an error)
    """Raised from a parser callback to stop parsing after the last request the connection takes."""


class Shutdown:
    """Asks `serve` to stop: gracefully, or at once."""

    def __init__(self, grace_seconds: float) -> None:
        self.requested = asyncio.Event()
        self.grace_seconds = grace_seconds
        self.at_once = False

    def request(self, *, at_once: bool = False) -> None:
        self.at_once = self.at_once or at_once
        self.requested.set()


async def serve(
    handler: Handler,
    sock: socket.socket,
    limits: ServerLimits,
    shutdown: Shutdown,
    http2: HandOver | None = None,
) -> None:
    """Serve on a listening socket until shutdown is requested, then finish the requests in flight.
    With `http2`, a connection that opens with the HTTP/2 preface is handed to it."""
    loop = asyncio.get_running_loop()
    state = ServerState()
    server = await loop.create_server(lambda: HttpServerProtocol(handler, state, limits, http2), sock=sock)
    sweeps = loop.create_task(_sweep(state, limits))
    try:
        await shutdown.requested.wait()
    finally:
        sweeps.cancel()
        server.close()
        state.stopping = True
        for connection in list(state.connections):
            connection.close_if_idle()
        await drain(state.connections, shutdown)


async def _sweep(state: ServerState, limits: ServerLimits) -> None:
    timeouts = [limits.header_timeout, limits.body_timeout, limits.idle_timeout, limits.read_timeout or 1.0]
    interval = min(max(min(timeouts) / 4, 0.05), 1.0)
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval)
        await visit_in_slices(list(state.connections), HttpServerProtocol.sweep, loop.time())


async def drain(connections: set, shutdown: Shutdown) -> None:
    """Waits (up to the grace period, unless the stop is at once) until every connection is idle, then
    aborts what is left. Each connection has been told to close once idle."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + shutdown.grace_seconds
    while any(not c.idle for c in connections) and loop.time() < deadline and not shutdown.at_once:
        await asyncio.sleep(0.05)
    for connection in list(connections):
        connection.abort()
