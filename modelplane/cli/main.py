"""The `modelplane` command: one subcommand per module in this package."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each module exposes `register(subparsers)`, which adds its subcommand(s) and sets
# `func` on the parser to a callable taking the parsed arguments and returning an exit code.
SUBCOMMAND_MODULES: list[str] = [
    "modelplane.cli.serve",
    "modelplane.cli.router",
    "modelplane.cli.resources",
    "modelplane.cli.graph",
    "modelplane.cli.storage",
    "modelplane.cli.up",
    "modelplane.cli.logs",
]


class CommandError(Exception):
    """A mistake the user can fix; printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelplane", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except CommandError as exc:
        print(f"modelplane {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
