"""`modelplane agent`: the model agent of a multi-model server, in its pod (KServe's `agent
--enable-puller`; see modelplane/agent/sidecar.py)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from modelplane.cli.main import CommandError

DESCRIPTION = (
    "Keep the model server at --server holding the models --config-dir/models.json lists (KServe's list of "
    "TrainedModels), each fetched into --model-dir/<name> and loaded through the server's repository API. "
    "With --prefetch, fetch them and exit (before the server starts)."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    from modelplane.agent.sidecar import POLL_INTERVAL

    parser = subparsers.add_parser(
        "agent",
        help="load the TrainedModels a models.json lists into the model server next to it",
        description=DESCRIPTION,
    )
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=Path("/mnt/configs"),
        help="the folder of models.json, the mounted ConfigMap (default: %(default)s)",
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=Path("/mnt/models"),
        help="the model server's model folder (default: %(default)s)",
    )
    parser.add_argument(
        "--server",
        default="http://127.0.0.1:8080",
        help="the model server's REST address (default: %(default)s)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=POLL_INTERVAL,
        help="seconds between looks at models.json (default: %(default)g)",
    )
    parser.add_argument(
        "--prefetch",
        action="store_true",
        help="fetch the listed models into --model-dir and exit, loading nothing (before the server starts)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from modelplane.agent.sidecar import prefetch

    if not args.config_dir.is_dir():
        raise CommandError(f"--config-dir {args.config_dir} is not a folder")
    if not args.model_dir.is_dir():
        raise CommandError(f"--model-dir {args.model_dir} is not a folder")
    if not args.server.startswith(("http://", "https://")):
        raise CommandError(f"--server {args.server} is not an http:// or https:// address")
    if not args.poll_interval > 0:
        raise CommandError("--poll-interval must be more than 0")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request
    if args.prefetch:
        asyncio.run(prefetch(args.config_dir, args.model_dir))
        return 0
    asyncio.run(_until_signalled(args))
    return 0


async def _until_signalled(args: argparse.Namespace) -> None:
    from modelplane.agent.sidecar import run_agent

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await run_agent(args.config_dir, args.model_dir, args.server, stopping, poll_interval=args.poll_interval)
