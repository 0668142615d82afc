"""The gateway as a pod's payload logger: `modelplane logger`, in front of one model server.

On Kubernetes a container that is not `modelplane serve` (KServe's own runtime images, a custom image)
cannot log its payloads itself. KServe puts its agent in the pod for that; modelplane puts this: the
gateway with one route, which takes every request the pod's Service sends to the logger's port
(KServe's agent port, 9081) whatever its host, forwards it to the model server on 127.0.0.1 at its
port, and logs the request and its answer as the gateway logs any route's (the logger's sink, mode,
metadata and annotations; CloudEvents, a file or a bucket). The answer streams through as it comes.

In a Knative pod the logger is the container whose port the pod serves, so the kubelet's and Knative's
readiness probes of the model server come through it (they are passed on, not logged), and with
`wait_for_component` it listens only once the model server does: a probe of its port alone (Knative's
default, a TCP one) then says the model server is up too.

With a metrics port, the logger serves its own metrics there (the gateway's: requests, latency, payload
events sent and dropped) together with the model server's, read from it when scraped, in one exposition,
as KServe's queue-proxy aggregates its own and the model's: the one port a pod's Prometheus annotations
name then holds both.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass

from modelplane.local.gateway.config import GatewayConfig
from modelplane.local.gateway.routes import ANY_HOST, Backend, Route, RouteTable
from modelplane.local.gateway.server import Gateway
from modelplane.protocol.http_server import Shutdown
from modelplane.protocol.listening import listening_socket, wait_until_listening
from modelplane.server.payload_logging import REVISION_VARIABLE
from modelplane.telemetry.metrics_exposition import serve_with_component
from modelplane.telemetry.payload_events import PayloadLogSpec

logger = logging.getLogger("modelplane.logger")


@dataclass(frozen=True)
class MetricsEndpoint:
    """Where the logger serves the metrics (`port`, `path`), and the port on 127.0.0.1 where the model
    server serves its own at the same path."""

    port: int
    path: str
    component_port: int


def logger_routes(log: PayloadLogSpec, component_port: int, revision: str = "") -> RouteTable:
    """Every host to the model server at `component_port` on this machine, logged as `log` says."""
    backend = Backend(revision, (f"127.0.0.1:{component_port}",), payload_log=log)
    return RouteTable({ANY_HOST: Route((backend,))})


async def serve_logger(
    log: PayloadLogSpec,
    component_port: int,
    config: GatewayConfig,
    stopping: asyncio.Event,
    *,
    wait_for_component: bool = False,
    metrics: MetricsEndpoint | None = None,
) -> None:
    """Logs the payloads of the model server at `component_port` until `stopping` is set, then lets
    the requests under way finish and delivers their records."""
    if wait_for_component and not await wait_until_listening(
        "127.0.0.1", component_port, "the model server", stopping
    ):
        return
    routes = logger_routes(log, component_port, os.environ.get(REVISION_VARIABLE, ""))
    gateway = Gateway(config, routes=routes)
    await gateway.start()
    shutdown = Shutdown(grace_seconds=1.0)
    served = None
    if metrics is not None:
        sock = listening_socket(config.host, metrics.port, 64)
        component_url = f"http://127.0.0.1:{metrics.component_port}{metrics.path}"
        served = asyncio.create_task(
            serve_with_component(gateway, metrics.path, component_url, sock, shutdown)
        )
    try:
        await stopping.wait()
    finally:
        shutdown.request()
        if served is not None:
            await served
        await gateway.stop()
