"""`modelplane graph condition 'COND' [FILE]`: try an InferenceGraph step condition on a JSON document.

Prints whether the condition matches (a step with it would run) and what its path selects:

    $ echo '{"decision_picker":"ERROR"}' | modelplane graph condition '[@this].#(decision_picker==ERROR)'
    match: true
    value: {"decision_picker":"ERROR"}

Exit code 0 when it matches, 1 when it does not, 2 when the condition or the document is bad.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from modelplane.cli.main import CommandError
from modelplane.graph.gjson import PathSyntaxError, compile_path, parse_document


def register(subparsers: argparse._SubParsersAction) -> None:
    graph = subparsers.add_parser("graph", help="InferenceGraph tools", description="InferenceGraph tools.")
    tools = graph.add_subparsers(dest="graph_command", metavar="TOOL", required=True)
    condition = tools.add_parser(
        "condition",
        help="show whether a step condition matches a JSON document",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    condition.add_argument("condition", metavar="COND", help="the condition, a GJSON path")
    condition.add_argument(
        "file", metavar="FILE", nargs="?", help="the JSON document (default: standard input)"
    )
    condition.set_defaults(func=_condition)


def _condition(args: argparse.Namespace) -> int:
    try:
        path = compile_path(args.condition)
    except PathSyntaxError as exc:
        raise CommandError(f"bad condition {args.condition!r}: {exc}") from None
    if path.warning:
        print(
            f"Warning: evaluated as Go's gjson evaluates it, but probably a mistake: {path.warning}",
            file=sys.stderr,
        )
    result = path.get(_read_document(args.file))
    print(f"match: {'true' if result.exists else 'false'}")
    print(f"value: {result.raw if result.exists else '(nothing selected)'}")
    return 0 if result.exists else 1


def _read_document(file: str | None) -> Any:
    source = file or "standard input"
    try:
        if file is None or file == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(file, "rb") as handle:
                data = handle.read()
    except OSError as exc:
        raise CommandError(f"cannot read {source}: {exc.strerror}") from None
    try:
        return parse_document(data)
    except ValueError as exc:
        raise CommandError(f"{source} is not valid JSON: {exc}") from None
