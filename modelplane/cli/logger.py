"""`modelplane logger`: the payload logger in front of a model server that does not log itself, in its
pod (KServe's agent with its logger; see modelplane/local/gateway/pod_logger.py)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from typing import TYPE_CHECKING

from modelplane.cli.main import CommandError

if TYPE_CHECKING:
    from modelplane.telemetry.payload_events import PayloadLogSpec

DESCRIPTION = (
    "Take the requests for the model server on this machine at --component-port on --port, pass them on, "
    "and log each request and its answer to --payload-log-url as a component's `logger` says "
    "(the flags modelplane serve takes)."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    from modelplane.api.constants import AGENT_PORT
    from modelplane.server.payload_logging import add_flags

    parser = subparsers.add_parser(
        "logger",
        help="log the payloads of the model server next to it, in front of it",
        description=DESCRIPTION,
    )
    parser.add_argument("--host", default="0.0.0.0", help="the address to listen on (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=AGENT_PORT, help="the port to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--component-port",
        type=int,
        default=8080,
        help="the model server's port on 127.0.0.1, where requests go on (default: %(default)s)",
    )
    parser.add_argument(
        "--response-timeout",
        type=float,
        default=300.0,
        help="seconds a request waits for the model server's answer to begin: the component's `timeout` "
        "(default: %(default)g, KServe's)",
    )
    parser.add_argument(
        "--wait-for-component",
        action="store_true",
        help="listen only once the model server takes connections at --component-port (in a Knative pod, "
        "whose readiness is that of the one port it serves: the logger's)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        help="a port to serve the logger's metrics on, with the model server's (read from it at "
        "--component-metrics-port when scraped) in one exposition (default: none)",
    )
    parser.add_argument(
        "--metrics-path",
        default="/metrics",
        help="where the metrics are served, and where the model server serves its own (default: %(default)s)",
    )
    parser.add_argument(
        "--component-metrics-port",
        type=int,
        help="the model server's metrics port on 127.0.0.1 (default: --component-port)",
    )
    add_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from modelplane.server.payload_logging import spec_from

    if not args.payload_log_url:
        raise CommandError("--payload-log-url is required: where the payload logs go")
    ports = (
        ("--port", args.port, 0),
        ("--component-port", args.component_port, 1),
        ("--metrics-port", args.metrics_port, 0),
        ("--component-metrics-port", args.component_metrics_port, 1),
    )
    for flag, port, lowest in ports:
        if port is not None and not lowest <= port <= 65535:
            raise CommandError(f"{flag} {port} is not a port")
    if not args.metrics_path.startswith("/"):
        raise CommandError(f"--metrics-path {args.metrics_path} must begin with /")
    if not args.response_timeout > 0:
        raise CommandError("--response-timeout must be more than 0")
    try:
        log = spec_from(args)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    import uvloop

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvloop.run(_until_signalled(args, log))
    return 0


async def _until_signalled(args: argparse.Namespace, log: PayloadLogSpec) -> None:
    from modelplane.local.gateway.config import GatewayConfig
    from modelplane.local.gateway.pod_logger import MetricsEndpoint, serve_logger

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    config = GatewayConfig(host=args.host, port=args.port, response_timeout=args.response_timeout)
    metrics = None
    if args.metrics_port is not None:
        component_metrics_port = args.component_metrics_port or args.component_port
        metrics = MetricsEndpoint(args.metrics_port, args.metrics_path, component_metrics_port)
    await serve_logger(
        log,
        args.component_port,
        config,
        stopping,
        wait_for_component=args.wait_for_component,
        metrics=metrics,
    )
