"""The router process: builds the app from a graph and serves it on uvicorn until told to stop.

On SIGTERM or SIGINT the router turns not-ready (`/readyz` answers 503), keeps serving for the drain
period so that load balancers can take it out, then stops taking connections and finishes the requests
it has. A second signal stops it at once.
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from collections.abc import Mapping
from types import FrameType
from typing import Any

import uvicorn
import uvloop

from modelplane.graph.app import RouterApp, RouterState
from modelplane.graph.headers import HeaderPropagator, compile_header_patterns
from modelplane.graph.http_client import HttpClient
from modelplane.graph.metrics import RouterMetrics
from modelplane.graph.router import GraphRouter
from modelplane.graph.spec import GraphSpec, parse_graph_spec
from modelplane.graph.validation import validate_graph_spec

DEFAULT_DRAIN_SECONDS = 30.0  # KServe's drainSleepDuration

log = logging.getLogger("modelplane.router")


class InvalidGraph(ValueError):
    """The graph cannot run; the message lists every problem on one line."""


def build_app(spec: Mapping[str, Any], propagate_headers: str | None) -> tuple[RouterApp, GraphSpec]:
    """Validate the graph, compile it, and wire the app; raises `InvalidGraph`."""
    errors = validate_graph_spec(spec)
    if errors:
        raise InvalidGraph("; ".join(errors))
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
    return app, graph


def serve(app: RouterApp, graph: GraphSpec, host: str, port: int, drain_seconds: float) -> None:
    """Serve until a signal; prints the address it listens on once bound."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # connections made once the address is printed wait in the backlog
    bound_host, bound_port = sock.getsockname()[:2]
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=graph.router_timeouts.server_idle,  # type: ignore[arg-type]  # a float works
        timeout_graceful_shutdown=graph.router_timeouts.server_write + 1,  # type: ignore[arg-type]
    )
    server = _DrainingServer(config, app.state, drain_seconds)
    print(f"modelplane router listening on http://{bound_host}:{bound_port}", flush=True)
    uvloop.run(server.serve(sockets=[sock]))


class _DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, state: RouterState, drain_seconds: float) -> None:
        super().__init__(config)
        self._state = state
        self._drain_seconds = drain_seconds
        self._drain_until: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_until is None:
            self._state.ready = False
            self._drain_until = time.monotonic() + self._drain_seconds
            print(f"modelplane router: draining for {self._drain_seconds:g}s, then stopping", file=sys.stderr)
        else:
            self.should_exit = True
            self.force_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self._drain_until is not None and time.monotonic() >= self._drain_until:
            return True
        return await super().on_tick(counter)
