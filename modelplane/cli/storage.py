"""`modelplane storage fetch SOURCE [DEST]`: the storage initializer, as a command."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from modelplane.cli.main import CommandError
from modelplane.storage import (
    AccessDeniedError,
    ConfigurationError,
    CredentialStore,
    InvalidURIError,
    MissingExtraError,
    ModelCache,
    NotFoundError,
    StorageError,
    TransferOptions,
    fetch,
)
from modelplane.storage.progress import progress_for

# Errors the user fixes by changing the command, the spec or the credentials.
_USER_ERRORS = (InvalidURIError, ConfigurationError, NotFoundError, AccessDeniedError, MissingExtraError)


def register(subparsers: argparse._SubParsersAction) -> None:
    storage = subparsers.add_parser("storage", help="fetch models from storage")
    commands = storage.add_subparsers(dest="storage_command", metavar="COMMAND", required=True)
    parser = commands.add_parser(
        "fetch",
        help="fetch a model into a folder",
        description="Fetch a model from a storage URI or a storage spec into DEST (or only into the cache).",
    )
    parser.add_argument(
        "source",
        metavar="SOURCE",
        help='a storage URI, or a storage spec as JSON: \'{"key": ..., "path": ...}\'',
    )
    parser.add_argument(
        "dest",
        metavar="DEST",
        nargs="?",
        type=Path,
        help="an empty or new folder (default: print the cached folder)",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="download straight into DEST, bypassing the cache"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="the model cache (default: $MODELPLANE_CACHE_DIR, else <home>/cache/models, "
        "<home> being $MODELPLANE_HOME or ~/.modelplane)",
    )
    parser.add_argument(
        "--credentials-dir",
        type=Path,
        help="storage configs, one JSON file per key (default: $MODELPLANE_STORAGE_CONFIG_DIR, "
        "else <home>/storage-config, <home> being $MODELPLANE_HOME or ~/.modelplane)",
    )
    parser.add_argument(
        "--pvc-dir",
        type=Path,
        help="the folder holding one folder per PVC claim (default: $MODELPLANE_PVC_DIR, "
        "else <home>/pvc, <home> being $MODELPLANE_HOME or ~/.modelplane)",
    )
    parser.add_argument(
        "--keep-existing",
        action="store_true",
        help="if DEST already holds files (a fetch into it completed before), keep them and fetch nothing",
    )
    parser.add_argument(
        "--concurrency", type=int, help="parallel requests (default: $MODELPLANE_STORAGE_CONCURRENCY, else 8)"
    )
    parser.add_argument(
        "--allow", action="append", metavar="PATTERN", help="fetch only matching files (repeatable)"
    )
    parser.add_argument(
        "--ignore", action="append", metavar="PATTERN", help="skip matching files (repeatable)"
    )
    parser.set_defaults(func=run_fetch)


def run_fetch(args: argparse.Namespace) -> int:
    _log_to_stderr()
    if args.no_cache and args.dest is None:
        raise CommandError("--no-cache needs a DEST")
    if args.keep_existing:
        if args.dest is None:
            raise CommandError("--keep-existing needs a DEST")
        if args.dest.is_dir() and any(args.dest.iterdir()):
            # A fetch is atomic, so files in DEST are a whole model: a restarted storage initializer
            # finds the one it fetched before.
            print(args.dest.absolute())  # as a fetch prints it
            return 0
    options = TransferOptions.from_env()
    if args.concurrency:
        options = TransferOptions(
            concurrency=args.concurrency, part_size=options.part_size, retry=options.retry
        )
    try:
        folder = fetch(
            _source(args.source),
            args.dest,
            store=CredentialStore(args.credentials_dir),
            cache=ModelCache(args.cache_dir),
            use_cache=not args.no_cache,
            options=options,
            progress=progress_for(sys.stderr),
            pvc_root=args.pvc_dir,
            allow_patterns=args.allow,
            ignore_patterns=args.ignore,
        )
    except _USER_ERRORS as exc:
        raise CommandError(str(exc)) from None
    except StorageError as exc:
        print(f"modelplane storage: {exc}", file=sys.stderr)
        return 1
    print(folder)
    return 0


def _source(text: str) -> str | dict:
    if not text.lstrip().startswith("{"):
        return text
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"SOURCE looks like a storage spec but is not valid JSON: {exc.msg}") from None
    if not isinstance(spec, dict):
        raise CommandError("a storage spec must be a JSON object")
    return spec


def _log_to_stderr() -> None:
    """Progress and warnings go to stderr as log lines when no one else set logging up."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
        )
