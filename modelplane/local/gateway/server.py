"""The gateway: one port in front of every InferenceService and InferenceGraph of `modelplane up`.

It routes by Host (`<name>.<namespace>.<domain>`, component hosts, `latest-`/`prev-` tag hosts),
splits traffic between revisions by weight, counts the requests in flight per revision for the
autoscaler, and holds requests while a revision scales up from zero (the activator).

The reconciler feeds it a `RouteTable` with `update_routes`, from any thread. `modelplane up` runs
it on its own uvloop thread with `GatewayThread`; inside an existing loop, use `Gateway` directly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import uvloop

from modelplane.local.gateway.auth import GatewayToken
from modelplane.local.gateway.config import GatewayConfig
from modelplane.local.gateway.context import GatewayContext
from modelplane.local.gateway.deadlines import Deadlines
from modelplane.local.gateway.dispatch import Dispatcher
from modelplane.local.gateway.grpc.proxy import H2ClientConnection
from modelplane.local.gateway.grpc.upstream import H2UpstreamPool
from modelplane.local.gateway.http1.proxy import ClientConnection
from modelplane.local.gateway.http1.upstream import UpstreamPool
from modelplane.local.gateway.metrics import GatewayMetrics
from modelplane.local.gateway.observe import GatewayObserver
from modelplane.local.gateway.revisions import RevisionStats
from modelplane.local.gateway.routes import RouteTable
from modelplane.protocol.loopback import is_loopback
from modelplane.protocol.sweeps import visit_in_slices
from modelplane.protocol.tls_or_plain import TLSOrPlainHTTP
from modelplane.telemetry.payload_delivery import PayloadDelivery

__all__ = ["Gateway", "GatewayConfig", "GatewaySockets", "GatewayThread"]

DemandCallback = Callable[[str], None]
# Seconds an idle client connection is kept open when the gateway stops, for a request its client may
# have sent as it stopped: answered with `Connection: close` rather than cut.
STOP_LINGER = 0.5


@dataclass(frozen=True)
class GatewaySockets:
    """Listening sockets the gateway serves on: the public port, and with a token or TLS the
    loopback port that takes neither (`Gateway.internal_port`)."""

    public: socket.socket
    internal: socket.socket | None = None


class Gateway:
    """The gateway server on the running event loop.

    `on_demand(revision)` is called for every request that arrives for a revision with no replica,
    so the autoscaler can scale it up from zero. It runs on the gateway's loop: it must be quick and
    idempotent (it may call `update_routes` itself).

    `routes` is the table it starts with (`RouteTable(starting=True)` while the platform loads the
    routes of its stored services).
    """

    def __init__(
        self,
        config: GatewayConfig | None = None,
        on_demand: DemandCallback | None = None,
        routes: RouteTable | None = None,
    ) -> None:
        self.config = config or GatewayConfig()
        self.metrics = GatewayMetrics()
        # The payload logger of the routes with a `logger`: delivers on the gateway's loop, between requests.
        self.payload_log = PayloadDelivery(self.config.payload_log)
        self._dispatcher = Dispatcher(
            on_demand,
            GatewayObserver(self.metrics, self.payload_log.submit),
            self.config.response_timeout,
            list_hosts=is_loopback(self.config.host),
        )
        if routes is not None:
            self._dispatcher.update(routes)
        self._pool = UpstreamPool(self.config.connect_timeout, self.config.upstream_idle_timeout)
        self._deadlines = Deadlines()
        self._h2_pool = H2UpstreamPool(self.config.connect_timeout, self.config.grpc_upstream_idle_timeout)
        self._connections: set[ClientConnection | H2ClientConnection] = set()
        # Client connections without a request under way, longest idle first.
        self._idle: dict[ClientConnection | H2ClientConnection, None] = {}
        self._server: asyncio.Server | None = None
        self._internal: asyncio.Server | None = None  # the replicas' own port (GatewayConfig)
        self._public_context: GatewayContext | None = None
        self._tls: ssl.SSLContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client_sweep: asyncio.Task | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the one the OS chose when the config says 0)."""
        return self._server.sockets[0].getsockname()[1]

    @property
    def scheme(self) -> str:
        return self.config.scheme

    @property
    def url(self) -> str:
        return self.config.url(self.port)

    @property
    def internal_port(self) -> int:
        """Where the platform's replicas reach the gateway: its port, or with a token or TLS, a loopback
        port of its own that takes neither."""
        server = self._internal or self._server
        return server.sockets[0].getsockname()[1]

    async def start(self, sockets: GatewaySockets | None = None) -> None:
        """Listens on the config's host and port, or on `sockets` already listening (which the
        gateway's worker processes share)."""
        self._loop = asyncio.get_running_loop()
        config = self.config
        tls = config.tls.server_context(alpn=("h2", "http/1.1")) if config.tls is not None else None
        self._tls = tls
        self._public_context = self._context(config)
        where = {"sock": sockets.public} if sockets else {"host": config.host, "port": config.port}
        new_connection = functools.partial(self._new_connection, self._public_context)
        if tls is not None:
            # A handshake is held to the time a request head has (slow ones are closed).
            new_connection = functools.partial(TLSOrPlainHTTP, new_connection, tls, config.header_timeout)
        self._server = await self._loop.create_server(
            new_connection, **where, **({} if sockets else {"reuse_address": True}), backlog=1024
        )
        if config.auth_token is not None or tls is not None:
            internal = replace(config, auth_token=None, tls=None)
            where = {"sock": sockets.internal} if sockets else {"host": "127.0.0.1", "port": 0}
            self._internal = await self._loop.create_server(
                functools.partial(self._new_connection, self._context(internal)), **where, backlog=1024
            )
        self.payload_log.start()
        self._client_sweep = self._loop.create_task(self._sweep_clients())

    def renew_credentials(self, config: GatewayConfig) -> None:
        """Takes the token and the certificate of `config`, which a restart of the platform in place has
        read again from their files: requests from now on need the new token, and connections from
        now on get the new certificate (TLS reads it at each handshake from the context it reloads)."""
        self.config = replace(self.config, auth_token=config.auth_token, tls=config.tls)
        if self._public_context is not None:
            self._public_context.config = self.config
            self._public_context.token = GatewayToken(config.auth_token) if config.auth_token else None
        if self._tls is not None and config.tls is not None:
            config.tls.load_into(self._tls)

    async def stop(self) -> None:
        """Stops accepting, lets the responses in progress finish (up to `drain_timeout`), closes."""
        if self._server is None:
            return
        self._server.close()
        if self._internal is not None:
            self._internal.close()
        if self._client_sweep is not None:
            self._client_sweep.cancel()
        for connection in list(self._connections):
            connection.close_when_idle(linger=STOP_LINGER)
        self._dispatcher.turn_away_waiting("the platform is stopping: no replica of the revision will start")
        deadline = self._loop.time() + self.config.drain_timeout
        while self._connections and self._loop.time() < deadline:
            await asyncio.sleep(0.05)
        for connection in list(self._connections):
            connection.abort()
        self._pool.close()
        self._h2_pool.close()
        self._deadlines.close()
        await self._server.wait_closed()
        if self._internal is not None:
            await self._internal.wait_closed()
        self._server = self._internal = None
        await self.payload_log.stop()  # the events of the last requests, then stop

    def update_routes(self, table: RouteTable) -> None:
        """Replaces the routing table at once; returns when it is in effect. Callable from any thread.

        Requests waiting for a revision's replicas go on as soon as the table gives it some.
        """
        loop = self._loop
        if loop is None or loop.is_closed() or _running_loop() is loop:
            self._dispatcher.update(table)
            return
        applied: concurrent.futures.Future[None] = concurrent.futures.Future()

        def apply() -> None:
            try:
                self._dispatcher.update(table)
            except BaseException as exc:  # handed back to the calling thread
                applied.set_exception(exc)
            else:
                applied.set_result(None)

        loop.call_soon_threadsafe(apply)
        applied.result()

    def revision_stats(self) -> dict[str, RevisionStats]:
        """In-flight, queued and total requests per revision. Callable from any thread."""
        return self._dispatcher.stats()

    def collect(self) -> Iterator:
        """The gateway's metrics, as prometheus_client metric families (a registry's collector).
        Callable from any thread."""
        return self.metrics.collect(self._dispatcher.revision_states, self.payload_log.stats)

    async def _sweep_clients(self) -> None:
        """Closes client connections idle for longer than `client_idle_timeout`, and answers 408 to
        request heads that took longer than `header_timeout` (a slice of connections at a time)."""
        config = self.config
        interval = min(max(min(config.client_idle_timeout, config.header_timeout) / 4, 0.05), 5.0)
        while True:
            await asyncio.sleep(interval)
            now = self._loop.time()
            self._h2_pool.close_idle(now)
            await visit_in_slices(list(self._connections), self._time_out_client, now)

    def _time_out_client(self, connection: ClientConnection | H2ClientConnection, now: float) -> None:
        config = self.config
        if connection.idle_since is not None and connection.idle_since < now - config.client_idle_timeout:
            connection.close_when_idle()
        elif connection.head_since is not None and connection.head_since < now - config.header_timeout:
            connection.head_timed_out(config.header_timeout)

    def _context(self, config: GatewayConfig) -> GatewayContext:
        """What the connections a listener with `config` accepts share with each other."""
        return GatewayContext(
            self._dispatcher, config, self._deadlines, self._pool, self._h2_pool, idle=self._idle
        )

    def _new_connection(self, context: GatewayContext) -> ClientConnection:
        if len(self._idle) >= self.config.max_idle_connections:
            oldest = next(iter(self._idle))
            del self._idle[oldest]
            oldest.evict()
        return ClientConnection(
            context,
            self._connections.discard,
            functools.partial(self._take_http2, context),
            on_open=self._connections.add,
        )

    def _take_http2(self, context: GatewayContext, transport: asyncio.Transport, data: bytes) -> None:
        """A client connection opened with the HTTP/2 preface: the gRPC proxy takes it over."""
        connection = H2ClientConnection(context, self._connections.discard)
        self._connections.add(connection)
        transport.set_protocol(connection)
        connection.connection_made(transport)
        connection.data_received(data)


class GatewayThread:
    """A `Gateway` on its own uvloop event loop in a daemon thread, as `modelplane up` runs it."""

    def __init__(
        self,
        config: GatewayConfig | None = None,
        on_demand: DemandCallback | None = None,
        routes: RouteTable | None = None,
    ) -> None:
        self.gateway = Gateway(config, on_demand, routes)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    def start(self) -> Gateway:
        """Starts the thread and returns once the gateway listens (raises if it cannot bind)."""
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="modelplane-gateway", daemon=True
        )
        self._thread.start()
        started.result()
        return self.gateway

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join()
        self._thread = None

    def _run(self, started: concurrent.futures.Future[None]) -> None:
        loop = uvloop.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(started))
        finally:
            loop.close()

    async def _serve(self, started: concurrent.futures.Future[None]) -> None:
        self._stopped = asyncio.Event()
        try:
            await self.gateway.start()
        except BaseException as exc:
            started.set_exception(exc)
            return
        started.set_result(None)
        await self._stopped.wait()
        await self.gateway.stop()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
