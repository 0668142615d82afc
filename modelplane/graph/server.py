"""The router process: builds the app from a graph and serves it until told to stop.

On SIGTERM or SIGINT the router turns not-ready (`/readyz` answers 503), keeps serving for the drain
period so that load balancers can take it out, then stops taking connections and finishes the requests
it has (for up to serverWrite). A second signal stops it at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import socket
import sys
from collections.abc import Mapping
from typing import Any

import uvloop

from modelplane.api.kinds import INFERENCE_GRAPH
from modelplane.graph.app import RouterApp, RouterState, error_response
from modelplane.graph.graph_warnings import graph_warnings
from modelplane.graph.headers import HeaderPropagator, compile_header_patterns
from modelplane.graph.metrics import RouterMetrics
from modelplane.graph.router import GraphRouter
from modelplane.graph.spec import parse_graph_spec
from modelplane.graph.validation import refusals
from modelplane.protocol import http_server
from modelplane.protocol.http_client import HttpClient
from modelplane.protocol.http_server import ServerLimits, Shutdown
from modelplane.protocol.listening import listening_socket, url_host
from modelplane.telemetry import tracing

DEFAULT_DRAIN_SECONDS = 30.0  # KServe's drainSleepDuration
HEADER_TIMEOUT = 10.0  # seconds for a request head (at most serverRead)

log = logging.getLogger("modelplane.router")


class InvalidGraph(ValueError):
    """The graph cannot run; the message lists every problem on one line."""


def build_app(spec: Mapping[str, Any], propagate_headers: str | None) -> RouterApp:
    """Validate the graph as `apply` does, compile it, and wire the app; raises `InvalidGraph`."""
    errors = refusals(spec)
    if errors:
        raise InvalidGraph("; ".join(errors))
    for warning in graph_warnings({"kind": INFERENCE_GRAPH.kind, "spec": spec}):
        log.warning("Warning: %s", warning)  # what `apply` warns of, for a router started by hand
    graph = parse_graph_spec(spec)
    patterns, pattern_errors = compile_header_patterns(propagate_headers)
    for message in pattern_errors:
        log.warning(message)
    client = HttpClient()
    metrics = RouterMetrics()
    app = RouterApp(
        router=GraphRouter(graph, client, metrics),
        client=client,
        propagator=HeaderPropagator(patterns),
        metrics=metrics,
        timeouts=graph.router_timeouts,
        state=RouterState(),
    )
    return app


def serve(app: RouterApp, host: str, port: int, drain_seconds: float) -> None:
    """Serve until a signal; prints the address it listens on once bound."""
    sock = listening_socket(host, port, 2048)  # connections made once the address is printed wait
    bound_host, bound_port = sock.getsockname()[:2]
    print(f"modelplane router listening on http://{url_host(bound_host)}:{bound_port}", flush=True)
    uvloop.run(_serve(app, sock, drain_seconds))


async def _serve(app: RouterApp, sock: socket.socket, drain_seconds: float) -> None:
    tracing.configure("modelplane-router")  # OTEL_SERVICE_NAME, which the platform sets, wins
    timeouts = app.timeouts
    limits = ServerLimits(
        read_timeout=timeouts.server_read,
        idle_timeout=math.inf if timeouts.server_idle is None else timeouts.server_idle,
        read_timeout_response=lambda: error_response(
            408, f"the request did not arrive within the serverRead timeout of {timeouts.server_read:g}s"
        ),
        # A head slower than this is slowloris, not a large request: Go's ReadHeaderTimeout, which
        # KServe's router leaves at serverRead (and so unlimited with it).
        header_timeout=min(HEADER_TIMEOUT, timeouts.server_read or HEADER_TIMEOUT),
        error_response=error_response,
    )
    # As Go's Server.Shutdown, wait for the requests in flight; they may take serverWrite.
    shutdown = Shutdown(
        grace_seconds=math.inf if timeouts.server_write is None else timeouts.server_write + 1
    )
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if not app.state.ready:  # a second signal
            shutdown.request(at_once=True)
            return
        app.state.ready = False
        print(
            f"modelplane router: draining for {drain_seconds:g}s, then stopping", file=sys.stderr, flush=True
        )
        loop.call_later(drain_seconds, shutdown.request)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        await http_server.serve(app.handle, sock, limits, shutdown)
    finally:
        app.close()
        await asyncio.to_thread(tracing.shutdown)
