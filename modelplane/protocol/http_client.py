"""A small HTTP/1.1 client: POSTs (and the GETs a redirect can turn one into) over pooled keep-alive
connections (the graph router's calls to its steps, a transformer's to its predictor, the payload
logger's events and the tracer's spans).

Each hop through the router pays for this client, so it does as little as it can: the request line and
Host header of each target are built once, the response is parsed by httptools, and idle connections are
kept per host and reused. (bench/graph_router.py compares it with httpx and aiohttp.) A connection can
also carry a batch of requests in one write, answered in order (`HttpConnection.send`): the payload
logger sends its events so.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httptools

_REQUEST_TARGET_SAFE = "!$%&'()*+,/:;=?@[]~"  # besides letters, digits and "_.-~"
_HOST_RE = re.compile(r"^([A-Za-z0-9._-]+|[0-9A-Fa-f:.]+)$")  # a name, an IPv4 or an IPv6 address
_SMALL_BODY = 64 * 1024  # below this, head and body go out in one write
_MAX_IDLE_PER_HOST = 256
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux
# The longest answer kept to be recognised when it comes again: a receiver's acknowledgement, not a
# step's answer, which a connection would otherwise hold on to while idle.
_REPEATED_MOST = 1024
# Answers that end with their head. A server that writes a body after one anyway would have those bytes
# read as the answer to the next request sent on the connection, however late they come: `HttpClient`
# does not reuse a connection such an answer came on. (A batch's answers are read in order whatever they
# are: a payload logger's receiver may answer each event 204.)
_NO_BODY_STATUSES = frozenset({204, 304})


class TransportError(Exception):
    """The step could not be reached, or did not answer with a whole HTTP response."""


class ConnectFailed(TransportError):
    """No connection could be opened: nothing of the request was sent."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    tls: bool


@dataclass(frozen=True)
class Target:
    """A URL the router POSTs to, with its request line and Host header ready to send."""

    url: str
    endpoint: Endpoint
    head: bytes  # b"POST /path HTTP/1.1\r\nHost: ...\r\n"
    # b"Authorization: Basic ...\r\n" from the URL's user and password, for those who send it; or b"".
    authorization: bytes = b""


@dataclass(frozen=True)
class ClientResponse:
    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()  # names lowercased

    def header(self, name: bytes) -> bytes | None:
        """The value of the first header of this (lowercase) name, or None."""
        for field_name, value in self.headers:
            if field_name == name:
                return value
        return None


def parse_target(url: str, method: str = "POST") -> Target:
    """Prepare a target; raises ValueError when the URL cannot be called."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"unsupported protocol scheme {parts.scheme!r} in URL {url!r}")
    if not parts.hostname or not _HOST_RE.match(parts.hostname):
        raise ValueError(f"invalid host in URL {url!r}")
    tls = parts.scheme == "https"
    host = parts.hostname
    if host.endswith(".localhost"):
        # `*.localhost` is the loopback (RFC 6761), but the system resolver may not know the name:
        # connect to 127.0.0.1; the Host header still names it (the gateway routes by it).
        host = "127.0.0.1"
    port = port or (443 if tls else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    # A request line holds no space, control or non-ASCII character: Go's client escapes them in the
    # path (`URL.EscapedPath`), and so does this, in the query too; the escapes already there stay.
    path = quote(path, safe=_REQUEST_TARGET_SAFE)
    userinfo, at, host_header = parts.netloc.rpartition("@")
    head = f"{method} {path} HTTP/1.1\r\nHost: {host_header}\r\n".encode("latin-1")
    authorization = b""
    if at:
        # Go's http.Client: the user and password, unescaped, as Basic credentials.
        user, _, password = userinfo.partition(":")
        credentials = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode())
        authorization = b"Authorization: Basic %s\r\n" % credentials
    return Target(url=url, endpoint=Endpoint(host, port, tls), head=head, authorization=authorization)


def without_password(url: str) -> str:
    """The URL with its password, if it has one, written `***` (as Go's errors write it)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo.partition(':')[0]}:***@{host}"))


def message(target: Target, headers: bytes, body: bytes | None) -> tuple[bytes, bytes]:
    """A request of `target` carrying `body` (None: no body, and no Content-Length) with the header
    lines `headers` (each ending in CRLF): its head and its body, for `HttpConnection.send`."""
    if body is None:
        return b"%s%s\r\n" % (target.head, headers), b""
    return b"%sContent-Length: %d\r\n%s\r\n" % (target.head, len(body), headers), body


class BatchBroken(TransportError):
    """The connection failed before every request of a batch was answered; `answers` are those that were."""

    def __init__(self, reason: str, answers: list[ClientResponse]) -> None:
        super().__init__(reason)
        self.answers = answers


class _UnaskedAnswer(Exception):
    """An answer began after every request sent had its answer."""


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection. It carries a batch of requests at a time, written in one go and answered
    in order (pipelining, RFC 9112 9.3.2): one round trip for many small requests, where a request at a
    time would pay a round trip and a wake-up of both ends each (the payload logger's events). Most
    batches are one request."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.keep_alive = True  # False once the server said it closes
        self.answered_at = 0.0  # time.monotonic() when the last answer came
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[list[ClientResponse]] | None = None
        self._expected = 0
        self._answers: list[ClientResponse] = []
        self._body_limit: int | None = None
        self._received = False
        self._socket = None
        self._status = 0
        self._chunks: list[bytes] = []
        self._kept = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._framed = False  # the answer says where its body ends
        self._in_answer = False  # the parser is part-way through an answer
        # The bytes of an answer that came over and over (a receiver's `202 Accepted` to each event of
        # a batch), with what they parse to and the body limit they were parsed with: bytes that are
        # only copies of it are counted, not parsed again.
        self._repeated: tuple[bytes, ClientResponse, int | None] | None = None

    @classmethod
    async def open(cls, endpoint: Endpoint, tls: ssl.SSLContext | None) -> HttpConnection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                cls, endpoint.host, endpoint.port, ssl=tls, server_hostname=endpoint.host if tls else None
            )
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise ConnectFailed(f"cannot connect to {endpoint.host}:{endpoint.port}: {reason}") from None
        return connection

    @property
    def usable(self) -> bool:
        return self.keep_alive and not self.closed and not self.transport.is_closing()

    @property
    def answered(self) -> list[ClientResponse]:
        """The answers to the last batch that have come so far."""
        return self._answers

    @property
    def received_any(self) -> bool:
        """Whether any byte of an answer to the last batch came."""
        return self._received

    def send(
        self, requests: list[tuple[bytes, bytes]], body_limit: int | None = None
    ) -> asyncio.Future[list[ClientResponse]]:
        """Writes the requests (head, body: see `message`); the future gives their answers in order, each
        body cut to `body_limit` bytes if given, or raises BatchBroken with the answers that came."""
        self._answers = []
        self._expected = len(requests)
        self._body_limit = body_limit
        self._received = False
        self._waiter = asyncio.get_running_loop().create_future()
        if self.transport.is_closing():
            self._fail("the connection closed before the requests were sent")
        elif len(requests) == 1 and len(requests[0][1]) < _SMALL_BODY:
            head, body = requests[0]
            self.transport.write(head + body)
        else:
            self.transport.writelines([part for request in requests for part in request])
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
        self._received = True
        if self._waiter is None:  # bytes nobody asked for: the connection cannot be trusted
            self.close()
            return
        if self._in_answer or not self._take_repeats(data):
            self._parse(data)
        if self._waiter is not None and self._socket is not None and self._expected > 1:
            # More answers of a batch are due: acknowledge these now rather than after the delayed-ACK
            # timer. A server that holds small writes until its last one is acknowledged (Nagle's
            # algorithm) would otherwise send each further answer some 40 ms late.
            with contextlib.suppress(OSError):
                self._socket.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)

    def _parse(self, data: bytes) -> None:
        at_answer_start, answered_before = not self._in_answer, len(self._answers)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"malformed HTTP response: {exc}")
            self.close()
            return
        count = len(self._answers) - answered_before
        if at_answer_start and count and not self._in_answer and self.keep_alive and not len(data) % count:
            one = data[: len(data) // count]
            if len(one) > _REPEATED_MOST:
                return
            if count == 1 or data.count(one) == count:  # `count` copies of one answer, end to end
                self._repeated = (one, self._answers[-1], self._body_limit)

    def _take_repeats(self, data: bytes) -> bool:
        """Takes `data` if it is nothing but copies of the answer that came over and over, as many
        answers as it holds copies; False (and nothing taken) otherwise."""
        repeated = self._repeated
        if repeated is None:
            return False
        one, answer, body_limit = repeated
        count, rest = divmod(len(data), len(one))
        answers = self._answers
        if (
            rest
            or body_limit != self._body_limit
            or len(answers) + count > self._expected
            or data.count(one) != count
        ):
            return False
        answers += [answer] * count
        self.answered_at = time.monotonic()
        if len(answers) == self._expected:
            self._resolve()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._status >= 200 and not self._framed and len(self._answers) == self._expected - 1:
            self.keep_alive = False  # the last answer's body ran to the end of the connection
            self.on_message_complete()
        self._fail("the connection closed before a whole response arrived")

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self._waiter is None:  # bytes beyond the last answer, in the same read: stop parsing, close
            raise _UnaskedAnswer
        self._in_answer = True

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        self._headers.append((lowered, value))
        if lowered == b"content-length" or lowered == b"transfer-encoding":
            self._framed = True

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        limit = self._body_limit
        if limit is not None:
            if self._kept >= limit:
                return
            body = body[: limit - self._kept]
            self._kept += len(body)
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        status, chunks, headers = self._status, self._chunks, self._headers
        self._status, self._chunks, self._kept, self._headers, self._framed = 0, [], 0, [], False
        self._in_answer = False
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            return
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._answers.append(ClientResponse(status, body, tuple(headers)))
        self.answered_at = time.monotonic()
        if not self._parser.should_keep_alive():
            self.keep_alive = False
        if len(self._answers) == self._expected:
            self._resolve()
        elif not self.keep_alive:
            self._fail("the server closed the connection part-way through a batch")
            self.close()

    def _resolve(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(self._answers)

    def _fail(self, reason: str) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(BatchBroken(reason, self._answers))


class HttpClient:
    """POSTs bodies to targets over pooled keep-alive connections."""

    def __init__(self) -> None:
        self._idle: dict[Endpoint, list[HttpConnection]] = {}
        self._ssl: ssl.SSLContext | None = None

    async def post(self, target: Target, body: bytes | None, headers: bytes = b"") -> ClientResponse:
        """Send `body` with the pre-rendered header block `headers` (lines ending in CRLF), with the
        target's method (a POST unless the target was made for another; None: no body)."""
        request = message(target, headers, body)
        conn, reused = await self._acquire(target.endpoint)
        try:
            try:
                (response,) = await conn.send([request])
            except TransportError:
                # A pooled connection the server had already closed: nothing was processed, try a new one.
                if not (reused and not conn.received_any):
                    raise
                conn.close()
                conn = await self._connect(target.endpoint)
                (response,) = await conn.send([request])
        except BaseException:
            conn.close()  # cancelled or broken mid-exchange: its state is unknown
            raise
        if response.status in _NO_BODY_STATUSES:
            conn.close()
        else:
            self._release(target.endpoint, conn)
        return response

    def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    async def _acquire(self, endpoint: Endpoint) -> tuple[HttpConnection, bool]:
        idle = self._idle.get(endpoint)
        while idle:
            conn = idle.pop()
            if conn.usable:
                return conn, True
            conn.close()
        return await self._connect(endpoint), False

    def _release(self, endpoint: Endpoint, conn: HttpConnection) -> None:
        if not conn.usable:
            conn.close()
            return
        idle = self._idle.setdefault(endpoint, [])
        if len(idle) < _MAX_IDLE_PER_HOST:
            idle.append(conn)
        else:
            conn.close()

    async def _connect(self, endpoint: Endpoint) -> HttpConnection:
        if endpoint.tls and self._ssl is None:
            self._ssl = ssl.create_default_context()
        return await HttpConnection.open(endpoint, self._ssl if endpoint.tls else None)
