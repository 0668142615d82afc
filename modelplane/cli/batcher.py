"""`modelplane batcher`: KServe's batcher sidecar (its agent with `--enable-batcher`) in front of a model
server that does not batch itself (see modelplane/agent/batcher_proxy.py)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from modelplane.cli.main import CommandError

DESCRIPTION = (
    "Take requests on --port and pass them on to the model server at --upstream; V1 predict requests "
    '(POST /v1/models/<name>:predict with {"instances": [...]}) that arrive within --max-latency of each '
    "other are stacked into one request of at most --max-batch-size instances, and each gets its own "
    "predictions back."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    from modelplane.api.constants import AGENT_PORT
    from modelplane.server.request_batching import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_LATENCY_MS

    parser = subparsers.add_parser(
        "batcher",
        help="batch the V1 predict requests of a model server that does not batch, in front of it",
        description=DESCRIPTION,
    )
    parser.add_argument("--host", default="0.0.0.0", help="the address to listen on (default: %(default)s)")
    parser.add_argument(
        "--port",
        type=int,
        default=AGENT_PORT,
        help="the port to listen on (default: %(default)s, KServe's agent's)",
    )
    parser.add_argument(
        "--upstream",
        default="127.0.0.1:8080",
        help="the model server's address, host:port (default: %(default)s)",
    )
    parser.add_argument(
        "--max-batch-size",
        "--max-batchsize",
        type=int,
        default=DEFAULT_MAX_BATCH_SIZE,
        help="the most instances in one request to the model server (default: %(default)s)",
    )
    parser.add_argument(
        "--max-latency",
        type=float,
        default=DEFAULT_MAX_LATENCY_MS,
        help="milliseconds a request waits for others (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds a request to the model server may take before its requests fail with 504 "
        "(default: no limit)",
    )
    parser.add_argument(
        "--wait-for-upstream",
        action="store_true",
        help="listen only once the model server takes connections at --upstream (in a Knative pod, whose "
        "readiness is that of the one port it serves)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        help="a port to serve the batcher's metrics on, with the model server's (read from it at "
        "--upstream-metrics-port when scraped) in one exposition (default: none)",
    )
    parser.add_argument(
        "--metrics-path",
        default="/metrics",
        help="where the metrics are served, and where the model server serves its own (default: %(default)s)",
    )
    parser.add_argument(
        "--upstream-metrics-port",
        type=int,
        help="the model server's metrics port, on --upstream's host (default: --upstream's port)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from modelplane.server.request_batching import BatchSettings

    for flag, port, lowest in (
        ("--port", args.port, 0),
        ("--metrics-port", args.metrics_port, 0),
        ("--upstream-metrics-port", args.upstream_metrics_port, 1),
    ):
        if port is not None and not lowest <= port <= 65535:
            raise CommandError(f"{flag} {port} is not a port")
    if not args.metrics_path.startswith("/"):
        raise CommandError(f"--metrics-path {args.metrics_path} must begin with /")
    host, _, port = args.upstream.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise CommandError(f"--upstream {args.upstream} is not host:port")
    if args.max_batch_size < 1:
        raise CommandError(f"--max-batch-size must be at least 1, got {args.max_batch_size}")
    if not 0 <= args.max_latency < float("inf"):
        raise CommandError(
            f"--max-latency must be a number of milliseconds, at least 0, got {args.max_latency:g}"
        )
    if args.timeout is not None and not 0 < args.timeout < float("inf"):
        raise CommandError(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    settings = BatchSettings(args.max_batch_size, args.max_latency / 1000, args.timeout)
    import uvloop

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line for each request it passes on
    uvloop.run(_until_signalled(args, settings))
    return 0


async def _until_signalled(args: argparse.Namespace, settings) -> None:
    from modelplane.agent.batcher_proxy import MetricsEndpoint, serve_batcher

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    metrics = None
    if args.metrics_port is not None:
        upstream_metrics_port = args.upstream_metrics_port or int(args.upstream.rpartition(":")[2])
        metrics = MetricsEndpoint(args.metrics_port, args.metrics_path, upstream_metrics_port)
    await serve_batcher(
        args.upstream,
        args.host,
        args.port,
        settings,
        stopping,
        wait_for_upstream=args.wait_for_upstream,
        metrics=metrics,
    )
