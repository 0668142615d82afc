"""modelplane: KServe-compatible model serving, on one machine or on Kubernetes."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Each module exposes `register(subparsers)`, which adds its subcommand(s) and sets `func` on the
# parser to a callable taking the parsed arguments and returning an exit code. Only the module of the
# command being run is imported, so a quick command does not pay for every other one's imports.
SUBCOMMANDS: dict[str, str] = {
    "up": "modelplane.cli.up",
    "apply": "modelplane.cli.resources",
    "create": "modelplane.cli.resources",
    "replace": "modelplane.cli.resources",
    "get": "modelplane.cli.resources",
    "describe": "modelplane.cli.resources",
    "delete": "modelplane.cli.resources",
    "wait": "modelplane.cli.resources",
    "logs": "modelplane.cli.logs",
    "serve": "modelplane.cli.serve",
    "router": "modelplane.cli.router",
    "graph": "modelplane.cli.graph",
    "storage": "modelplane.cli.storage",
    "render": "modelplane.cli.render",
    "operator": "modelplane.cli.operator",
    "agent": "modelplane.cli.agent",
    "logger": "modelplane.cli.logger",
    "batcher": "modelplane.cli.batcher",
}


# The commands that stand for kubectl's end in error with exit code 1, as kubectl's do (a usage
# error too); modelplane's own commands with 2, as argparse's usage errors do.
KUBECTL_COMMANDS = frozenset({"apply", "create", "replace", "get", "describe", "delete", "wait", "logs"})


def error_exit_code(command: str | None) -> int:
    return 1 if command in KUBECTL_COMMANDS else 2


class CommandError(Exception):
    """A mistake the user can fix; printed as one line, exit code `error_exit_code(command)`."""


class _CommandParser(argparse.ArgumentParser):
    """A subcommand's parser. An argument it does not know is its own error, said with its own usage
    (argparse would say it with the top-level usage, `modelplane [-h] COMMAND ...`). Options may come
    after names, as kubectl takes them (`get isvc iris -n team -o yaml`). An option whose value may be
    left out takes one only after `=`, as kubectl's do: `delete --dry-run isvc iris` is a dry run of
    deleting `isvc iris`."""

    _parsing_intermixed = False

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(error_exit_code(self.prog.rpartition(" ")[2]), f"{self.prog}: error: {message}\n")

    def parse_known_args(self, args=None, namespace=None):
        if self._parsing_intermixed:
            return super().parse_known_args(args, namespace)
        args = self._bare_optional_values(sys.argv[1:] if args is None else list(args))
        if not self._intermixable():
            namespace, unknown = super().parse_known_args(args, namespace)
        else:
            # parse_known_intermixed_args calls parse_known_args for each of its two passes.
            self._parsing_intermixed = True
            try:
                namespace, unknown = self.parse_known_intermixed_args(args, namespace)
            finally:
                self._parsing_intermixed = False
        if unknown:
            self.error(f"unrecognized arguments: {' '.join(unknown)}")
        return namespace, unknown

    def _bare_optional_values(self, args: list[str]) -> list[str]:
        """`--dry-run` spelled `--dry-run=server` (its const), so that argparse leaves the next word be."""
        optional = {
            name: action.const
            for action in self._actions
            if action.nargs == argparse.OPTIONAL and action.option_strings
            for name in action.option_strings
        }
        return [f"{arg}={optional[arg]}" if arg in optional else arg for arg in args]

    def _intermixable(self) -> bool:
        """Whether argparse can take this parser's options between its names: not with a subcommand
        or a positional that takes the rest of the line (argparse refuses both)."""
        return not any(
            action.nargs in (argparse.PARSER, argparse.REMAINDER) for action in self._get_positional_actions()
        )


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for `command`, or for every command when it is None or unknown."""
    parser = argparse.ArgumentParser(prog="modelplane", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_CommandParser)
    wanted = [SUBCOMMANDS[command]] if command in SUBCOMMANDS else SUBCOMMANDS.values()
    for module_name in dict.fromkeys(wanted):
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = args.func(args) or 0
        sys.stdout.flush()
        return code
    except CommandError as exc:
        print(f"modelplane {args.command}: {exc}", file=sys.stderr)
        return error_exit_code(args.command)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader of our output left (`modelplane get ... | head`): stop quietly, as kubectl does.
        # What is still buffered goes nowhere, so that flushing it at exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
