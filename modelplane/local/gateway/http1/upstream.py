"""Keep-alive HTTP/1.1 connections from the gateway to replicas, and the pool that reuses them.

An `UpstreamConnection` carries one exchange at a time: the proxy writes the request bytes with
`write`, and the connection parses the response with httptools and hands its parts to the
exchange's `ResponseSink` as they arrive, so nothing is buffered whole.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

import httptools

from modelplane.local.gateway.revisions import UpstreamReplica

# Responses that end with their head (and so does any answer to HEAD). A replica that writes a body
# after one anyway would have it read as the answer to the next request on the connection, whenever
# those bytes come: the connection is not reused after such a response.
NO_BODY_STATUSES = frozenset({204, 304})


class ResponseSink(Protocol):
    """What an exchange receives from its upstream connection."""

    def upstream_head(
        self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]], content_length: int | None
    ) -> None: ...

    def upstream_body(self, data: bytes) -> None: ...

    def upstream_done(self, reusable: bool) -> None: ...

    def upstream_failed(self, reason: str) -> None: ...

    def upstream_flush(self) -> None: ...

    def upstream_pause_writing(self) -> None: ...

    def upstream_resume_writing(self) -> None: ...


class UpstreamConnection(asyncio.Protocol):
    """One TCP connection to a replica; parses the responses that come back on it."""

    def __init__(self, pool: UpstreamPool, replica: UpstreamReplica) -> None:
        self.pool = pool
        self.address = replica.address
        self.transport: asyncio.Transport | None = None
        self.sink: ResponseSink | None = None
        self.received_any = False
        self.idle_since = 0.0
        self.idle_for = 0.0  # how long it had been idle in the pool when it was taken for a request
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._reason = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._content_length: int | None = None
        self._chunked = False
        self._head_only = False
        self._until_eof = False
        self._reading_paused = False

    # -- used by the proxy ---------------------------------------------------------------------

    def start(self, sink: ResponseSink, head_only: bool) -> None:
        """Binds the next response on this connection to `sink`; `head_only` for HEAD requests."""
        self.sink = sink
        self.received_any = False
        self._head_only = head_only
        self._reason = b""
        self._headers = []
        self._content_length = None
        self._chunked = False
        self._until_eof = False

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def pause_reading(self) -> None:
        if not self._reading_paused and not self.closed:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused and not self.closed:
            self._reading_paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        """Drops the connection at once (the response is abandoned or the replica misbehaved)."""
        self.sink = None
        if not self.closed:
            self.closed = True
            self.transport.abort()

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.sink is None:
            # Bytes nobody asked for (the replica answered twice, or after we gave up): not reusable.
            self.close()
            self.pool.forget(self)
            return
        self.received_any = True
        sink = self.sink
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            failed = self.sink is not None
            self.close()
            if failed:
                sink.upstream_failed(f"sent an invalid HTTP response ({exc})")
            return
        if self.sink is sink:
            sink.upstream_flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        sink, self.sink = self.sink, None
        self.pool.forget(self)
        if sink is None:
            return
        if self._until_eof:
            sink.upstream_done(reusable=False)
        else:
            sink.upstream_failed("closed the connection" if exc is None else f"reset the connection ({exc})")

    def pause_writing(self) -> None:
        if self.sink is not None:
            self.sink.upstream_pause_writing()

    def resume_writing(self) -> None:
        if self.sink is not None:
            self.sink.upstream_resume_writing()

    # -- httptools callbacks -------------------------------------------------------------------

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        # Only two names matter here; checking the length first spares lower-casing the others.
        size = len(name)
        if size == 14 and name.lower() == b"content-length":
            self._content_length = int(value)
        elif size == 17 and name.lower() == b"transfer-encoding" and b"chunked" in value.lower():
            self._chunked = True

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            # An interim response (we never send Expect upstream, but a replica may volunteer one).
            self._reason = b""
            self._headers = []
            return
        sink = self.sink
        if sink is None:
            return
        sink.upstream_head(status, self._reason, self._headers, self._content_length)
        if self._head_only:
            # httptools cannot be told the request was HEAD: the response ends with its head here.
            self._finish(keep_alive=False)
        elif self._content_length is None and not self._chunked and status not in NO_BODY_STATUSES:
            self._until_eof = True

    def on_body(self, body: bytes) -> None:
        if self.sink is not None:
            self.sink.upstream_body(body)

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        if self.sink is not None and status >= 200:
            self._finish(self._parser.should_keep_alive() and status not in NO_BODY_STATUSES)

    def _finish(self, keep_alive: bool) -> None:
        sink, self.sink = self.sink, None
        sink.upstream_done(reusable=keep_alive and not self._until_eof)


class UpstreamPool:
    """Idle keep-alive connections per replica address, newest first."""

    def __init__(self, connect_timeout: float, idle_timeout: float, max_idle_per_replica: int = 64) -> None:
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.max_idle_per_replica = max_idle_per_replica
        self._idle: dict[str, list[UpstreamConnection]] = {}
        self._sweeper: asyncio.TimerHandle | None = None

    def idle_connection(self, replica: UpstreamReplica) -> UpstreamConnection | None:
        """The most recently used idle connection to `replica`, if there is one."""
        idle = self._idle.get(replica.address)
        while idle:
            connection = idle.pop()
            if not connection.closed:
                connection.idle_for = time.monotonic() - connection.idle_since
                return connection
        return None

    async def connect(self, replica: UpstreamReplica) -> tuple[UpstreamConnection, bool]:
        """A connection to `replica` and whether it was reused; raises OSError when it cannot connect."""
        connection = self.idle_connection(replica)
        if connection is not None:
            return connection, True
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(lambda: UpstreamConnection(self, replica), replica.host, replica.port),
                self.connect_timeout,
            )
        except TimeoutError:
            raise OSError(f"no connection within {self.connect_timeout:g}s") from None
        return connection, False

    def release(self, connection: UpstreamConnection) -> None:
        """Keeps a connection whose response ended cleanly for the next request to its replica."""
        connection.resume_reading()
        idle = self._idle.setdefault(connection.address, [])
        if connection.closed or len(idle) >= self.max_idle_per_replica:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)
        if self._sweeper is None:
            self._schedule_sweep()

    def forget(self, connection: UpstreamConnection) -> None:
        idle = self._idle.get(connection.address)
        if idle and connection in idle:
            idle.remove(connection)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()

    def _schedule_sweep(self) -> None:
        loop = asyncio.get_running_loop()
        self._sweeper = loop.call_later(max(self.idle_timeout / 2, 0.05), self._sweep)

    def _sweep(self) -> None:
        """Closes connections idle for longer than the replicas are likely to keep them open."""
        self._sweeper = None
        oldest_kept = time.monotonic() - self.idle_timeout
        for address, idle in list(self._idle.items()):
            stale = [connection for connection in idle if connection.idle_since < oldest_kept]
            for connection in stale:
                idle.remove(connection)
                connection.close()
            if not idle:
                del self._idle[address]
        if self._idle:
            self._schedule_sweep()
