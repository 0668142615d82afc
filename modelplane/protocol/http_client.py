"""A small HTTP/1.1 client: POST only, pooled keep-alive connections (the graph router's calls to its
steps, a transformer's to its predictor, the payload logger's events and the tracer's spans).

Each hop through the router pays for this client, so it does as little as it can: the request line and
Host header of each target are built once, the response is parsed by httptools, and idle connections are
kept per host and reused. (bench/graph_router.py compares it with httpx and aiohttp.)
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

_HOST_RE = re.compile(r"^([A-Za-z0-9._-]+|[0-9A-Fa-f:.]+)$")  # a name, an IPv4 or an IPv6 address
_SMALL_BODY = 64 * 1024  # below this, head and body go out in one write
_MAX_IDLE_PER_HOST = 256


class TransportError(Exception):
    """The step could not be reached, or did not answer with a whole HTTP response."""


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


def parse_target(url: str) -> Target:
    """Prepare a POST target; raises ValueError when the URL cannot be called."""
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
    host_header = parts.netloc.rsplit("@", 1)[-1]
    head = f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\n".encode("latin-1")
    return Target(url=url, endpoint=Endpoint(host, port, tls), head=head)


class _Connection(asyncio.Protocol):
    """One keep-alive connection; carries one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._waiter: asyncio.Future[ClientResponse] | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._chunks: list[bytes] = []
        self._headers: list[tuple[bytes, bytes]] = []
        self._status = 0
        self._received = False
        self._framed = False  # the response says where its body ends
        self._keep_alive = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._received = True
        if self._parser is None:  # bytes nobody asked for: the connection cannot be trusted
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(TransportError(f"malformed HTTP response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is None or self._waiter.done():
            return
        if self._status and not self._framed:  # a body delimited by the end of the connection
            self._finish()
        else:
            self._fail(TransportError("the connection closed before a whole response arrived"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        self._headers.append((lowered, value))
        if lowered == b"content-length" or lowered == b"transfer-encoding":
            self._framed = True

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self._status < 200:  # an interim answer (100 Continue): the real one follows
            self._status, self._chunks, self._headers, self._framed = 0, [], [], False
            return
        self._keep_alive = self._parser.should_keep_alive()
        self._finish()

    # the client's side
    @property
    def received_any(self) -> bool:
        return self._received

    @property
    def reusable(self) -> bool:
        return self._keep_alive and not self.closed

    def send(self, head: bytes, body: bytes) -> asyncio.Future[ClientResponse]:
        self._parser = httptools.HttpResponseParser(self)
        self._chunks = []
        self._headers = []
        self._status = 0
        self._received = False
        self._framed = False
        self._keep_alive = False
        self._waiter = asyncio.get_running_loop().create_future()
        if len(body) < _SMALL_BODY:
            self.transport.write(head + body)
        else:
            self.transport.writelines((head, body))
        return self._waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _finish(self) -> None:
        chunks = self._chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._parser = None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(ClientResponse(self._status, body, tuple(self._headers)))

    def _fail(self, exc: Exception) -> None:
        self._parser = None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)


class HttpClient:
    """POSTs bodies to targets over pooled keep-alive connections."""

    def __init__(self) -> None:
        self._idle: dict[Endpoint, list[_Connection]] = {}
        self._ssl: ssl.SSLContext | None = None

    async def post(self, target: Target, body: bytes, headers: bytes = b"") -> ClientResponse:
        """Send `body` with the pre-rendered header block `headers` (lines ending in CRLF)."""
        head = b"%sContent-Length: %d\r\n%s\r\n" % (target.head, len(body), headers)
        conn, reused = await self._acquire(target.endpoint)
        try:
            try:
                response = await conn.send(head, body)
            except TransportError:
                # A pooled connection the server had already closed: nothing was processed, try a new one.
                if not (reused and not conn.received_any):
                    raise
                conn.close()
                conn = await self._connect(target.endpoint)
                response = await conn.send(head, body)
        except BaseException:
            conn.close()  # cancelled or broken mid-exchange: its state is unknown
            raise
        self._release(target.endpoint, conn)
        return response

    def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    async def _acquire(self, endpoint: Endpoint) -> tuple[_Connection, bool]:
        idle = self._idle.get(endpoint)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn, True
        return await self._connect(endpoint), False

    def _release(self, endpoint: Endpoint, conn: _Connection) -> None:
        if not conn.reusable:
            conn.close()
            return
        idle = self._idle.setdefault(endpoint, [])
        if len(idle) < _MAX_IDLE_PER_HOST:
            idle.append(conn)
        else:
            conn.close()

    async def _connect(self, endpoint: Endpoint) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = None
        if endpoint.tls:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            tls = self._ssl
        try:
            _, conn = await loop.create_connection(
                _Connection,
                endpoint.host,
                endpoint.port,
                ssl=tls,
                server_hostname=endpoint.host if tls else None,
            )
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise TransportError(f"cannot connect to {endpoint.host}:{endpoint.port}: {reason}") from None
        return conn
