"""What the client connections of one gateway listener share, made once by the gateway (`server.py`)
and handed to every connection it accepts. The HTTP/1.1 proxy (`http1/`) and the gRPC proxy (`grpc/`)
reach the router, the upstream pools, the deadlines and the config through it, never through each
other or through the connection a request arrived on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from modelplane.local.gateway.auth import GatewayToken
from modelplane.local.gateway.config import GatewayConfig
from modelplane.local.gateway.deadlines import Deadlines
from modelplane.local.gateway.dispatch import Dispatcher
from modelplane.local.gateway.grpc.upstream import H2UpstreamPool
from modelplane.local.gateway.http1.upstream import UpstreamPool


class IdleConnection(Protocol):
    def evict(self) -> None:
        """Closes a connection the gateway has too many idle of."""


@dataclass
class GatewayContext:
    router: Dispatcher  # where each request goes, and who watches it (metrics, payload logging)
    config: GatewayConfig  # this listener's: the replicas' own port takes no token and no TLS
    deadlines: Deadlines  # the response-header deadlines of every request under way
    http1_pool: UpstreamPool  # kept-alive HTTP/1.1 connections to replicas
    h2_pool: H2UpstreamPool  # HTTP/2 connections to replicas' gRPC ports
    # The client connections without a request under way, longest idle first (both listeners'):
    # past `max_idle_connections` the first is closed.
    idle: dict[IdleConnection, None]
    token: GatewayToken | None = field(init=False)  # what a request must carry, when there is one

    def __post_init__(self) -> None:
        self.token = GatewayToken(self.config.auth_token) if self.config.auth_token else None
