"""HTTP/2 connections from the gateway to the replicas' gRPC ports, and the pool that shares them.

One `H2Upstream` carries many streams at once (HTTP/2 multiplexing), each bound to the `StreamSink`
(a proxied gRPC call, gateway/grpc/proxy.py) that opened it. The pool keeps the connections per gRPC address
and opens another one only when the open ones have no room for a new stream.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from modelplane.local.gateway.grpc.endpoint import H2Endpoint, Headers
from modelplane.local.gateway.routes import split_address
from modelplane.protocol.http2.frames import REFUSED_STREAM

# A connection stops taking new streams well before HTTP/2's stream ids (2^31) run out.
_LAST_STREAM_ID = 2**30


class StreamSink(Protocol):
    """What a proxied call receives from its upstream stream."""

    def upstream_headers(self, headers: Headers, end_stream: bool) -> None: ...

    def upstream_data(self, data: bytes, flow_length: int, end_stream: bool) -> None: ...

    def upstream_trailers(self, headers: Headers) -> None: ...

    def upstream_reset(self, error_code: int) -> None: ...

    def upstream_lost(self, reason: str) -> None: ...

    def upstream_refused(self) -> None: ...

    def upstream_window_opened(self) -> None: ...


class H2Upstream(H2Endpoint):
    """One HTTP/2 (prior knowledge, cleartext) connection to a replica's gRPC port."""

    def __init__(self, pool: H2UpstreamPool, address: str) -> None:
        super().__init__(client_side=True)
        self.pool = pool
        self.address = address
        self.sinks: dict[int, StreamSink] = {}
        self._answering: set[int] = set()  # streams whose response headers have arrived
        self.closing = False  # no new streams: the replica said GOAWAY, or the ids are used up
        self.idle_since = 0.0

    # -- used by the proxy ---------------------------------------------------------------------

    def has_room(self) -> bool:
        if self.closing or self.closed:
            return False
        return len(self.sinks) < self.peer_max_concurrent_streams

    def open_stream(self, sink: StreamSink, headers: Headers, end_stream: bool) -> int:
        stream_id = self.new_stream_id()
        if stream_id >= _LAST_STREAM_ID:
            self.closing = True
        self.send_headers(stream_id, headers, end_stream=end_stream)
        self.sinks[stream_id] = sink
        return stream_id

    def forget(self, stream_id: int, reset: bool, error_code: int = 8) -> None:
        """The call is over for the proxy; `reset` cancels the stream if it is still open."""
        self.sinks.pop(stream_id, None)
        self._answering.discard(stream_id)
        if reset:
            self.reset(stream_id, error_code)
        if not self.sinks:
            self.idle_since = self._loop.time()
            if self.closing:
                self.close()

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.send_goaway()
            self.flush()
            self.transport.close()

    def abort(self) -> None:
        if not self.closed and self.transport is not None:
            self.transport.abort()

    # -- the replica's frames ------------------------------------------------------------------

    def on_headers(self, stream_id: int, headers: Headers, end_stream: bool, new_stream: bool) -> None:
        sink = self.sinks.get(stream_id)
        if sink is None:
            return
        if stream_id in self._answering:
            sink.upstream_trailers(headers)
        else:
            self._answering.add(stream_id)
            sink.upstream_headers(headers, end_stream)

    def on_data(self, stream_id: int, data: bytes, flow_length: int, end_stream: bool) -> None:
        sink = self.sinks.get(stream_id)
        if sink is None:
            self.acknowledge(stream_id, flow_length)
            return
        sink.upstream_data(data, flow_length, end_stream)

    def on_reset(self, stream_id: int, error_code: int) -> None:
        sink = self.sinks.pop(stream_id, None)
        self._answering.discard(stream_id)
        if sink is None:
            return
        if error_code == REFUSED_STREAM:
            sink.upstream_refused()
        else:
            sink.upstream_reset(error_code)

    def on_window_opened(self, stream_id: int) -> None:
        if stream_id:
            sink = self.sinks.get(stream_id)
            if sink is not None:
                sink.upstream_window_opened()
            return
        for sink in list(self.sinks.values()):
            sink.upstream_window_opened()

    def on_goaway(self, last_stream_id: int, error_code: int) -> None:
        """The replica takes no new streams; those past `last_stream_id` were not processed."""
        self.closing = True
        self.pool.discard(self)
        for stream_id in [s for s in self.sinks if s > last_stream_id]:
            self.sinks.pop(stream_id).upstream_refused()
        if not self.sinks:
            self.close()

    def on_protocol_error(self, message: str) -> None:
        self._lost(f"the replica broke the HTTP/2 protocol: {message}")

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.pool.discard(self)
        self._lost("the replica closed the connection" + (f" ({exc})" if exc else ""))

    def _lost(self, reason: str) -> None:
        sinks, self.sinks = self.sinks, {}
        for sink in sinks.values():
            sink.upstream_lost(reason)


class H2UpstreamPool:
    """HTTP/2 connections per replica gRPC address; a connection idle for `idle_timeout` is closed."""

    def __init__(self, connect_timeout: float, idle_timeout: float) -> None:
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self._connections: dict[str, list[H2Upstream]] = {}
        self._connecting: dict[str, asyncio.Future[H2Upstream]] = {}

    def ready_connection(self, address: str) -> H2Upstream | None:
        """An open connection to `address` with room for one more stream, if there is one."""
        for connection in self._connections.get(address, ()):
            if connection.has_room():
                return connection
        return None

    async def connect(self, address: str) -> H2Upstream:
        """A connection with room for a stream: an open one, or a new one (raises OSError).

        A call that finds another opening a connection to `address` waits for that attempt to end,
        however it ends: it fails with the attempt's error, or looks again (the connection may have
        room for it; or the attempt was given up with the call that made it, cancelled by its client,
        and it opens one of its own)."""
        while True:
            connection = self.ready_connection(address)
            if connection is not None:
                return connection
            pending = self._connecting.get(address)
            if pending is None:
                break
            await asyncio.wait((pending,))  # the attempt is not this call's to cancel
            if pending.result() is not None:
                raise pending.result()
        loop = asyncio.get_running_loop()
        pending = self._connecting[address] = loop.create_future()
        failure: OSError | None = None
        host, port = split_address(address)
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(lambda: H2Upstream(self, address), host, port),
                self.connect_timeout,
            )
            self._connections.setdefault(address, []).append(connection)
            return connection
        except TimeoutError as exc:
            failure = OSError(f"no connection within {self.connect_timeout:g}s")
            raise failure from exc
        except OSError as exc:
            failure = exc
            raise
        finally:
            if self._connecting.get(address) is pending:
                del self._connecting[address]
            pending.set_result(failure)  # the calls waiting for this attempt fail with it, or look again

    def discard(self, connection: H2Upstream) -> None:
        connections = self._connections.get(connection.address)
        if connections and connection in connections:
            connections.remove(connection)
            if not connections:
                del self._connections[connection.address]

    def close_idle(self, now: float) -> None:
        oldest_kept = now - self.idle_timeout
        for connections in list(self._connections.values()):
            for connection in list(connections):
                if not connection.sinks and connection.idle_since < oldest_kept:
                    self.discard(connection)
                    connection.close()

    def close(self) -> None:
        for connections in list(self._connections.values()):
            for connection in list(connections):
                connection.abort()
        self._connections.clear()
