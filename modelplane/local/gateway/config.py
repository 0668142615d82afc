"""Settings of the gateway, with the defaults `modelplane up` uses."""

from __future__ import annotations

from dataclasses import dataclass, field

from modelplane.local.tls import TLSFiles
from modelplane.protocol.http2.limits import Http2Limits
from modelplane.protocol.listening import url_host
from modelplane.telemetry.payload_delivery import DeliverySettings


@dataclass(frozen=True)
class GatewayConfig:
    """Where the gateway listens and how long it waits.

    - `queue_timeout`: how long a request may wait in the gateway for a replica slot, either while
      its revision scales up from zero or while every replica is at `container_concurrency`.
    - `max_queued`: how many requests may wait per revision; more get a 503 at once.
    - `response_timeout`: how long to wait for a replica's response headers when the backend sets
      no `timeout_seconds` (KServe's default component timeout is 300s).
    - `upstream_idle_timeout`: idle keep-alive connections to replicas are closed after this; keep
      it below the replicas' own keep-alive timeout (uvicorn's default is 5s).
    - `grpc_upstream_idle_timeout`: the same for the HTTP/2 connections to replicas' gRPC ports
      (HTTP/2 closes gracefully, so they may stay open longer).
    - `client_idle_timeout`: a client connection with nothing under way for this long is closed.
    - `header_timeout`: an HTTP/1.1 request's line and headers must arrive within this, counted from
      their first byte (from the connection's opening for its first request); then 408 and the
      connection closes.
    - `max_header_bytes`, `max_header_count`: an HTTP/1.1 request head above either is a 431.
    - `max_idle_connections`: client connections with no request under way (a head still arriving
      counts); past it, a new connection closes the one idle the longest.
    - `http2`: the limits of the clients' HTTP/2 (gRPC) connections.
    - `payload_log`: the queues, retries and file rotation of payload logging.
    - `auth_token`: when set, every request must carry `Authorization: Bearer <auth_token>`.
    - `tls`: when set, the port serves TLS from this certificate and key (HTTP/2 by ALPN).

    With `auth_token` or `tls`, the gateway also listens on a loopback port of its own with neither
    (`Gateway.internal_port`): the replicas reach each other there (a transformer its predictor, a
    graph's router the services), without the token and without trusting the certificate.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    queue_timeout: float = 60.0
    max_queued: int = 1000
    response_timeout: float = 300.0
    connect_timeout: float = 5.0
    upstream_idle_timeout: float = 4.0
    grpc_upstream_idle_timeout: float = 30.0
    client_idle_timeout: float = 75.0
    drain_timeout: float = 10.0
    header_timeout: float = 10.0
    max_header_bytes: int = 64 * 1024
    max_header_count: int = 100
    max_idle_connections: int = 1024
    http2: Http2Limits = field(default_factory=Http2Limits)
    payload_log: DeliverySettings = field(default_factory=DeliverySettings)
    auth_token: str | None = field(default=None, repr=False)
    tls: TLSFiles | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    def url(self, port: int) -> str:
        """The gateway's URL once it listens on `port`."""
        return f"{self.scheme}://{url_host(self.host)}:{port}"
