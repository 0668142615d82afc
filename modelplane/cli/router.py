"""`modelplane router`: serve an InferenceGraph (KServe's router, `--graph-json`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from modelplane.cli.main import CommandError
from modelplane.graph.headers import PROPAGATE_HEADERS_ENV
from modelplane.graph.server import DEFAULT_DRAIN_SECONDS, InvalidGraph, build_app, serve
from modelplane.graph.spec import GraphSpecError, load_graph_file, load_graph_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "router",
        help="serve an InferenceGraph",
        description="Run the InferenceGraph router: every request except GET /readyz and GET /metrics runs "
        f"the graph from its root node. Headers to pass on to the steps: env {PROPAGATE_HEADERS_ENV} "
        "(comma-separated regular expressions).",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--graph-json", metavar="JSON", help="the InferenceGraph spec as JSON")
    source.add_argument(
        "--graph-file",
        metavar="FILE",
        type=Path,
        help="a file holding the spec (JSON or YAML), or a whole InferenceGraph resource",
    )
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    parser.add_argument(
        "--port", type=int, default=8080, help="port to listen on (default 8080); 0 picks a free one"
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=DEFAULT_DRAIN_SECONDS,
        help="after SIGTERM, how long to answer not-ready before stopping (default: %(default)g)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        if args.graph_file is not None:
            spec = load_graph_file(_read(args.graph_file))
        else:
            spec = load_graph_json(args.graph_json)
        app = build_app(spec, os.environ.get(PROPAGATE_HEADERS_ENV))
    except (GraphSpecError, InvalidGraph) as exc:
        raise CommandError(f"invalid graph: {exc}") from None
    try:
        serve(app, args.host, args.port, args.drain_seconds)
    except OSError as exc:
        raise CommandError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    return 0


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
