"""The gateway as a pod's payload logger: `modelplane logger`, in front of one model server.

On Kubernetes a container that is not `modelplane serve` (KServe's own runtime images, a custom image)
cannot log its payloads itself. KServe puts its agent in the pod for that; modelplane puts this: the
gateway with one route, which takes every request the pod's Service sends to the logger's port
(KServe's agent port, 9081) whatever its host, forwards it to the model server on 127.0.0.1 at its
port, and logs the request and its answer as the gateway logs any route's (the logger's sink, mode,
metadata and annotations; CloudEvents, a file or a bucket). The answer streams through as it comes.
"""

from __future__ import annotations

import asyncio
import os

from modelplane.local.gateway.config import GatewayConfig
from modelplane.local.gateway.routes import ANY_HOST, Backend, Route, RouteTable
from modelplane.local.gateway.server import Gateway
from modelplane.server.payload_logging import REVISION_VARIABLE
from modelplane.telemetry.payload_events import PayloadLogSpec


def logger_routes(log: PayloadLogSpec, component_port: int, revision: str = "") -> RouteTable:
    """Every host to the model server at `component_port` on this machine, logged as `log` says."""
    backend = Backend(revision, (f"127.0.0.1:{component_port}",), payload_log=log)
    return RouteTable({ANY_HOST: Route((backend,))})


async def serve_logger(
    log: PayloadLogSpec, component_port: int, config: GatewayConfig, stopping: asyncio.Event
) -> None:
    """Logs the payloads of the model server at `component_port` until `stopping` is set, then lets
    the requests under way finish and delivers their records."""
    routes = logger_routes(log, component_port, os.environ.get(REVISION_VARIABLE, ""))
    gateway = Gateway(config, routes=routes)
    await gateway.start()
    try:
        await stopping.wait()
    finally:
        await gateway.stop()
