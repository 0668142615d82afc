"""`modelplane logs NAME`: the output of an InferenceService component's replicas (newest revision),
or of an InferenceGraph's router (`-c router`)."""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from modelplane.cli.log_selection import lines_since, now, parse_duration, parse_rfc3339, previous_run
from modelplane.cli.main import CommandError
from modelplane.local.api.settings import modelplane_home

COMPONENTS = ("predictor", "transformer", "explainer", "router")  # router: an InferenceGraph's
CANARY_COMPONENT = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?-predictor")  # spec.canary[]'s, by name


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "logs",
        help="print the logs of an InferenceService's replicas",
        description="Print what the replicas of one component of an InferenceService wrote (its newest "
        "revision, or --revision), with the platform's own notes (starts, exits, restarts) between the lines.",
    )
    parser.add_argument(
        "name",
        help="the InferenceService (isvc/NAME also), or the InferenceGraph (ig/NAME, or NAME with -c router)",
    )
    parser.add_argument(
        "-c",
        "--component",
        type=_component,
        help="whose log: predictor (the default), transformer, explainer, router (an InferenceGraph's), "
        "or a Standard-mode canary's predictor, <canary>-predictor",
    )
    parser.add_argument("-n", "--namespace", default="default", help="namespace (default: default)")
    parser.add_argument("--revision", help="a revision name (default: the newest)")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing what is written")
    parser.add_argument(
        "--tail",
        type=_line_count,
        default=-1,
        help="only the last N lines of each replica's log (default: -1, all of it)",
    )
    parser.add_argument(
        "--since",
        type=_duration,
        metavar="DURATION",
        help="only what was written this long ago or later (5s, 2m, 3h); a program's line counts from "
        "the platform's note before it",
    )
    parser.add_argument(
        "--since-time", type=_moment, metavar="RFC3339", help="only what was written at this time or later"
    )
    parser.add_argument(
        "-p",
        "--previous",
        action="store_true",
        help="the log of each replica's previous run (before its last restart)",
    )
    parser.add_argument("--home", type=Path, default=None, help="state folder (default: MODELPLANE_HOME)")
    parser.set_defaults(func=run)


def _component(value: str) -> str:
    if value in COMPONENTS or CANARY_COMPONENT.fullmatch(value):
        return value
    raise argparse.ArgumentTypeError(
        f"{value!r} is not a component: use {', '.join(COMPONENTS)} or <canary>-predictor"
    )


def _line_count(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid line count {value!r}: give a number, -1 for all") from None


def _duration(value: str):
    try:
        return parse_duration(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _moment(value: str):
    try:
        return parse_rfc3339(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _settle_kind(args: argparse.Namespace) -> None:
    """`isvc/NAME` and `ig/NAME`, as kubectl users name what they want the logs of: an InferenceGraph's
    log is its router's."""
    from modelplane.local.api.paths import resolve_kind

    kind_word, slash, name = args.name.rpartition("/")
    kind = resolve_kind(kind_word) if slash else None
    if slash and (kind is None or kind.kind not in ("InferenceService", "InferenceGraph")):
        raise CommandError(
            f'{args.name}: logs are kept for InferenceServices and InferenceGraphs, not "{kind_word}"'
        )
    if kind is not None and kind.kind == "InferenceGraph":
        if args.component not in (None, "router"):
            raise CommandError(f"{args.name}: an InferenceGraph has only its router's log (-c router)")
        args.component = "router"
    elif kind is not None and args.component == "router":
        raise CommandError(f"{args.name}: -c router is an InferenceGraph's log; name it as ig/NAME")
    args.name = name if slash else args.name
    args.component = args.component or "predictor"


def run(args: argparse.Namespace) -> int:
    from modelplane.local.replicas.supervisor import replica_log_dir

    _settle_kind(args)
    if args.since is not None and args.since_time is not None:
        raise CommandError("at most one of `sinceTime` or `sinceSeconds` may be specified")  # kubectl's words
    home = (args.home or modelplane_home()).expanduser()
    folder = replica_log_dir(home / "logs", args.namespace, args.name, args.component)
    files = log_files(folder, args.revision)
    if not files:
        what = f"revision {args.revision}" if args.revision else f"the {args.component}"
        kind = "inferencegraph" if args.component == "router" else "inferenceservice"
        raise CommandError(
            f'no logs for {what} of {kind} "{args.name}" in namespace "{args.namespace}" under {home / "logs"} '
            "(--home, or MODELPLANE_HOME, names the state folder of the modelplane up it ran in)"
        )
    prefixes = {path: f"[{path.stem}] " if len(files) > 1 else "" for path in files}
    # The copy's id is read before the log: a rotation between the two is seen on the next round.
    positions = {}
    for path in files:
        copy_id = _copy_id(path)
        if args.previous or args.since is not None or args.since_time is not None:
            positions[path] = (_write_selected(path, args, prefixes[path]), copy_id)
        else:
            positions[path] = (_copy(path, _tail_offset(path, args.tail), prefixes[path]), copy_id)
    while args.follow and not args.previous:  # a previous run writes no more
        time.sleep(0.5)
        for path in files:
            offset, copy_id = positions[path]
            current_copy_id = _copy_id(path)
            if current_copy_id != copy_id or path.stat().st_size < offset:
                # `modelplane up` rotated the log: what came after `offset` is at the end of the copy,
                # and the emptied log starts afresh.
                rotated = path.with_name(path.name + ".1")
                if rotated.exists():
                    _copy(rotated, offset, prefixes[path])
                offset = 0
            positions[path] = (_copy(path, offset, prefixes[path]), current_copy_id)
    return 0


def _write_selected(path: Path, args: argparse.Namespace, prefix: str) -> int:
    """Writes what --previous or --since picks from the log (its rotated copy too); returns where the
    log ended."""
    rotated = path.with_name(path.name + ".1")
    data = path.read_bytes()
    text = (rotated.read_bytes() if rotated.exists() else b"").decode(errors="replace") + data.decode(
        errors="replace"
    )
    if args.previous:
        selected = previous_run(text)
        if selected is None:  # kubectl's words, the replica standing for the pod
            raise CommandError(
                f'previous terminated container "kserve-container" in pod "{path.stem}" not found'
            )
        text = selected
    since = now() - args.since if args.since is not None else args.since_time
    if since is not None:
        text = lines_since(text, since)
    if args.tail >= 0:
        lines = text.splitlines(keepends=True)
        text = "".join(lines[len(lines) - args.tail :] if args.tail else [])
    if prefix:
        text = "".join(prefix + line for line in text.splitlines(keepends=True))
    sys.stdout.write(text)
    sys.stdout.flush()
    return len(data)


def log_files(folder: Path, revision: str | None) -> list[Path]:
    """The log files of one revision's replicas: the named one, or the newest."""
    files = sorted(folder.glob("*.log")) if folder.is_dir() else []
    revisions = sorted({path.stem.rpartition("-")[0] for path in files})
    if not revisions:
        return []
    wanted = revision or revisions[-1]
    return [path for path in files if path.stem.rpartition("-")[0] == wanted]


def _tail_offset(path: Path, lines: int) -> int:
    """Where the last `lines` lines of the file start (-1: all of it, from 0)."""
    if lines < 0:
        return 0
    data = path.read_bytes()
    end = len(data) - 1 if data.endswith(b"\n") else len(data)  # a last line's own newline ends it
    start = end
    for _ in range(lines):
        start = data.rfind(b"\n", 0, start)
        if start < 0:
            return 0
    return start + 1 if lines else len(data)


def _copy_id(path: Path) -> int | None:
    """Which copy `<log>.1` is (each rotation writes a new file there)."""
    try:
        return path.with_name(path.name + ".1").stat().st_ino
    except FileNotFoundError:
        return None


def _copy(path: Path, offset: int, prefix: str) -> int:
    with path.open("rb") as file:
        file.seek(offset)
        data = file.read()
    if data:
        text = data.decode(errors="replace")
        if prefix:
            text = "".join(prefix + line for line in text.splitlines(keepends=True))
        sys.stdout.write(text)
        sys.stdout.flush()
    return offset + len(data)
