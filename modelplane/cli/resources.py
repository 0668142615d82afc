"""`modelplane apply | get | describe | delete | wait`: resources in the control plane, as kubectl
users know them (`-n/--namespace`, `-f FILE|DIR|-`, short names isvc/ig/sr/csr/tm, `-o yaml`).

They speak to the control-plane API of `modelplane up`, at `--server`, `$MODELPLANE_API` or
http://127.0.0.1:8180.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from modelplane.api.kinds import EVENT, Kind, kind_of, kinds_in_category
from modelplane.api.loader import Document
from modelplane.cli.documents import DEFAULT_NAMESPACE, placed, read_documents, without_namespaces
from modelplane.cli.main import CommandError
from modelplane.cli.output import (
    CustomColumns,
    Rows,
    Table,
    as_list,
    is_custom_columns,
    is_table,
    output_format,
    print_structured,
    sort_by,
    sorted_items,
)
from modelplane.local.api.client import ClientSettingsError, ControlPlaneClient, Unreachable
from modelplane.local.api.describe import describe
from modelplane.local.api.errors import ApiError, NotFound
from modelplane.local.api.paths import qualified_singular, resolve_kind
from modelplane.local.api.settings import api_certificate_authority, api_token, api_url

KIND_WORDS = "isvc, ig, sr, csr, tm or a full name; or KIND/NAME"


def register(subparsers: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--server", help="control-plane URL (default: $MODELPLANE_API or http://127.0.0.1:8180)"
    )
    common.add_argument(
        "--token",
        help="bearer token for a control plane started with --auth-token-file (default: $MODELPLANE_TOKEN)",
    )
    common.add_argument(
        "--certificate-authority",
        metavar="FILE",
        help="CA certificate to check an https:// control plane with (default: $MODELPLANE_CA, else the "
        "system's)",
    )
    common.add_argument("-n", "--namespace", help=f"namespace (default: {DEFAULT_NAMESPACE})")

    for command, func, what in (
        ("apply", _apply, "create or update resources from files"),
        ("create", _create, "create resources from files; none may exist yet"),
        ("replace", _replace, "replace resources from files; each must exist"),
    ):
        writer = subparsers.add_parser(command, parents=[common], help=what, description=func.__doc__)
        writer.add_argument(
            "-f",
            "--filename",
            action="append",
            required=True,
            help="a file, a folder, an http(s) URL, or - for stdin (repeatable)",
        )
        writer.add_argument(
            "-R", "--recursive", action="store_true", help="also read the folders inside a folder"
        )
        _add_dry_run(
            writer,
            "check everything (admission included) as the server would, and store nothing (client: the "
            "same, as modelplane has no client-side dry run; none: not a dry run)",
        )
        writer.set_defaults(func=func)

    get = subparsers.add_parser("get", parents=[common], help="list resources or show one")
    get.add_argument("kind", metavar="KIND", help=f"{KIND_WORDS}; all: every service, graph and TrainedModel")
    get.add_argument(
        "names", metavar="NAME", nargs="*", default=[], help="names, or KIND/NAME (default: all)"
    )
    get.add_argument(
        "-o",
        "--output",
        type=output_format,
        metavar="FORMAT",
        help="yaml, json, wide, name, jsonpath=TEMPLATE, custom-columns=HEADER:PATH,..., "
        "go-template=TEMPLATE (or template=) or go-template-file=FILE (default: a table)",
    )
    get.add_argument("-A", "--all-namespaces", action="store_true", help="list every namespace")
    get.add_argument("--no-headers", action="store_true", help="tables without their header line")
    get.add_argument("--show-labels", action="store_true", help="tables with a last column of labels")
    get.add_argument(
        "--ignore-not-found", action="store_true", help="a named resource that is not there is no error"
    )
    get.add_argument(
        "--sort-by", type=sort_by, metavar="PATH", help="order lists by this field, e.g. .metadata.name"
    )
    get.add_argument("-l", "--selector", help="label selector, e.g. app=iris,tier!=gold")
    get.add_argument(
        "--field-selector",
        metavar="SELECTOR",
        help="field selector: metadata.name or metadata.namespace with =, == or !=, e.g. metadata.name=iris",
    )
    get.add_argument(
        "-w", "--watch", action="store_true", help="after listing, print each change as it happens"
    )
    get.set_defaults(func=_get)

    show = subparsers.add_parser("describe", parents=[common], help="show resources in detail")
    show.add_argument("kind", metavar="KIND", help=KIND_WORDS)
    show.add_argument(
        "names", metavar="NAME", nargs="*", default=[], help="names, or KIND/NAME (default: all)"
    )
    show.add_argument("-l", "--selector", help="label selector, e.g. app=iris")
    show.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace's")
    show.set_defaults(func=_describe)

    delete = subparsers.add_parser("delete", parents=[common], help="delete resources by name or file")
    delete.add_argument("kind", metavar="KIND", nargs="?", help=KIND_WORDS)
    delete.add_argument("names", metavar="NAME", nargs="*", default=[], help="names, or KIND/NAME")
    delete.add_argument(
        "-f",
        "--filename",
        action="append",
        help="delete what these describe: a file, a folder, an http(s) URL, or - for stdin (repeatable)",
    )
    delete.add_argument("-R", "--recursive", action="store_true", help="with -f DIR: also its subfolders")
    delete.add_argument("--all", action="store_true", help="every resource of the kind in the namespace")
    delete.add_argument(
        "-l", "--selector", help="every resource of the kind with these labels, e.g. app=iris"
    )
    delete.add_argument(
        "-A", "--all-namespaces", action="store_true", help="with --all or -l: in every namespace"
    )
    _add_dry_run(
        delete, "check that each can be deleted, and delete nothing (client: the same; none: delete)"
    )
    delete.add_argument(
        "--ignore-not-found", action="store_true", help="a resource that is not there is no error"
    )
    delete.set_defaults(func=_delete)

    wait = subparsers.add_parser("wait", parents=[common], help="wait for a condition on resources")
    wait.add_argument("kind", metavar="KIND", help=KIND_WORDS)
    wait.add_argument("names", metavar="NAME", nargs="*", default=[], help="names, or KIND/NAME")
    wait.add_argument("--for", dest="condition", required=True, help="condition=Ready[=True], or delete")
    wait.add_argument("--timeout", default="30s", help="give up after this long (30s, 5m, 1h; default 30s)")
    wait.add_argument("-l", "--selector", help="wait for each resource of the kind with these labels")
    wait.add_argument(
        "--all", action="store_true", help="wait for each resource of the kind in the namespace"
    )
    wait.set_defaults(func=_wait)


def _add_dry_run(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--dry-run", nargs="?", const="server", choices=["server", "client", "none"], help=what
    )


# ---- apply ----


def _apply(args: argparse.Namespace) -> int:
    """Creates each resource, or replaces it if it exists. The documents of one apply are
    stored all together or, if any is refused, not at all."""
    return _write(args)


def _create(args: argparse.Namespace) -> int:
    """Creates each resource, as `kubectl create -f` does; if any already exists, none is created
    (kubectl creates the others)."""
    return _write(args, must_exist=False)


def _replace(args: argparse.Namespace) -> int:
    """Replaces each resource, as `kubectl replace -f` does; if any does not exist, none is replaced
    (kubectl replaces the others)."""
    return _write(args, must_exist=True)


def _dry_run(args: argparse.Namespace) -> bool:
    """Whether --dry-run asks for one: server, or client, which kubectl users write and which modelplane
    runs as a server dry run (saying so); none is none."""
    if args.dry_run == "client":
        print(
            "--dry-run=client: checked by the control plane as --dry-run=server (modelplane has no "
            "client-side dry run)",
            file=sys.stderr,
        )
    return args.dry_run in ("server", "client")


def _write(args: argparse.Namespace, must_exist: bool | None = None) -> int:
    """`apply` (must_exist None), `create` (False) or `replace` (True): all the documents or none."""
    past = {None: "applied", False: "created", True: "replaced"}[must_exist]
    args.dry_run = _dry_run(args)
    documents = read_documents(args.filename, args.recursive, args.command)
    if not documents:
        raise CommandError(f"no objects passed to {args.command}")
    documents = without_namespaces(documents, args.command)
    if not documents:
        return 0
    resources = [placed(document, args.namespace) for document in documents]
    print_apply_warnings(documents)
    namespace = args.namespace or DEFAULT_NAMESPACE
    with _client(args) as client:
        try:
            if must_exist is not None:
                rehearsal = client.apply(resources, namespace, dry_run=True)
                _check_existence(rehearsal, documents, must_exist)
            results = client.apply(resources, namespace, dry_run=bool(args.dry_run))
        except ApiError as error:
            raise CommandError(f"{refusal_place(error, documents)}{error} (nothing was {past})") from None
    if must_exist is not None:
        results = [{**result, "action": past} for result in results]
    print_unhonored_warnings(documents)  # once accepted: a refused apply says only why
    created = [
        document for document, result in zip(documents, results, strict=True) if result["action"] == "created"
    ]
    print_unhonored_warnings(created, first_revision=True)
    suffix = " (server dry run)" if args.dry_run else ""
    for result in results:
        print(f"{object_name(result['object'])} {result['action']}{suffix}")
    return 0


def _check_existence(rehearsal: list[dict[str, Any]], documents: list[Document], must_exist: bool) -> None:
    """Refuses a create of a resource that exists, or a replace of one that does not, in kubectl's words."""
    for result, document in zip(rehearsal, documents, strict=True):
        if (result["action"] == "created") == must_exist:
            kind = kind_of(result["object"])
            name = result["object"]["metadata"]["name"]
            problem = "not found" if must_exist else "already exists"
            past = "replaced" if must_exist else "created"
            raise CommandError(f'{document.where()}: {kind.crd_name} "{name}" {problem} (nothing was {past})')


def print_apply_warnings(documents: list[Document]) -> None:
    """What is likely a mistake in the files: fields the schema does not know (most often a typo), and
    what a graph says that its router evaluates or ignores as KServe's does, but looks like a mistake
    (`modelplane.graph.graph_warnings`)."""
    from modelplane.api.admission import unknown_field_details  # apply's alone: `get` starts sooner
    from modelplane.graph.graph_warnings import graph_warnings

    for document in documents:
        for field in unknown_field_details(document.resource):
            hint = f'; did you mean "{field.did_you_mean}"?' if field.did_you_mean else ""
            print(
                f'Warning: {document.source}:{document.line_of(field.path)}: unknown field "{field.path}"{hint}',
                file=sys.stderr,
            )
        for warning in graph_warnings(document.resource):
            print(f"Warning: {document.source}:{document.line_of(warning.path)}: {warning}", file=sys.stderr)


def print_unhonored_warnings(documents: list[Document], *, first_revision: bool = False) -> None:
    """Fields that are kept but do nothing here (a node to choose, a resource other than cpu, memory
    and GPUs, an annotation another platform reads); `first_revision`: those that matter only when a
    resource is created."""
    from modelplane.local.api.unhonored_fields import first_revision_unhonored, unhonored_fields

    found = first_revision_unhonored if first_revision else unhonored_fields
    for document in documents:
        for field in found(document.resource):
            print(
                f"Warning: {document.source}:{document.line_of(field.path)}: {field.path}: "
                f"accepted but not acted on: {field.why}",
                file=sys.stderr,
            )


def refusal_place(error: ApiError, documents: list[Document]) -> str:
    """`file:line: ` of the document (and field) a server refusal is about, when it can tell."""
    name = error.details.get("name")
    named_kind = error.details.get("kind")  # the kind (Invalid) or its resource (NotFound, Conflict...)
    for document in documents:
        kind = kind_of(document.resource)
        if (
            kind
            and named_kind in (kind.kind, kind.plural)
            and document.resource["metadata"].get("name") == name
        ):
            causes = error.details.get("causes") or []
            field = causes[0].get("field") if causes else None
            line = document.line_of(field) if field else document.line
            return f"{document.source}:{line}: "
    return ""


# ---- get and describe ----


def _get(args: argparse.Namespace) -> int:
    if args.show_labels and args.output not in (None, "wide"):
        raise CommandError(
            f"--show-labels adds a column to the table (default or -o wide), not to -o {args.output}"
        )
    if "," in args.kind or kinds_in_category(args.kind):
        return _get_kinds(args, _kinds_listed(args.kind))
    groups = _kind_groups(args.kind, args.names)
    if (args.selector or args.field_selector) and any(names for _, names in groups):
        raise CommandError("name cannot be provided when a selector is specified")  # kubectl's words
    if args.watch and (len(groups) > 1 or len(groups[0][1]) > 1):
        raise CommandError("--watch follows one resource or a whole list, not several names")
    missing: list[str] = []  # as kubectl, what is found is shown, then what is not
    with _client(args) as client:
        for number, (kind, names) in enumerate(groups):
            if number and is_table(args.output):
                print()
            _get_kind(client, kind, names, args, missing)
    return _report_missing(args, missing)


def _report_missing(args: argparse.Namespace, missing: list[str]) -> int:
    sys.stdout.flush()
    if getattr(args, "ignore_not_found", False):
        return 0
    for message in missing:
        _report(args, message)
    return 1 if missing else 0  # kubectl's exit code


def _kinds_listed(word: str) -> list[Kind]:
    """`isvc,ig` and categories (`all`, `all,sr`): each kind once, in the order named."""
    kinds: dict[str, Kind] = {}
    for part in word.split(","):
        for kind in kinds_in_category(part) or (_resolve(part),):
            kinds.setdefault(kind.kind, kind)
    return list(kinds.values())


def _get_kinds(args: argparse.Namespace, kinds: list[Kind]) -> int:
    """`get all` or `get isvc,ig`, as kubectl lists several kinds: each kind that has resources, its
    names qualified by the kind (`inferenceservice.serving.kserve.io/iris`); one line when none has any."""
    if args.names:
        raise CommandError(f'"{args.kind}" lists every resource of its kinds: name resources as KIND/NAME')
    if args.watch:
        raise CommandError(f'--watch follows one kind, not "{args.kind}"')
    namespace = None if args.all_namespaces else _namespace(args)
    found: list[tuple[Kind, list[dict[str, Any]]]] = []
    with _client(args) as client:
        for kind in kinds:
            scope = namespace if kind.namespaced else None
            items, _ = _fetch(
                client,
                kind,
                scope or "",
                [],
                args.selector,
                all_namespaces=scope is None,
                field_selector=args.field_selector,
            )
            if items:
                found.append((kind, _ordered(items, args)))
    if is_custom_columns(args.output):
        CustomColumns(args.output, show_headers=not args.no_headers).print(
            [item for _, items in found for item in items]
        )
    elif args.output not in (None, "wide", "name"):
        print_structured(as_list([item for _, items in found for item in items]), args.output)
    elif args.output == "name":
        for _, items in found:
            for item in items:
                print(object_name(item))
    elif not found and not args.ignore_not_found:
        print(f"No resources found{_where_searched(kinds[0], namespace)}.", file=sys.stderr)
    for number, (kind, items) in enumerate(found if args.output in (None, "wide") else []):
        if number:
            print()
        every_namespace = namespace is None and kind.namespaced
        table = Table(
            kind,
            all_namespaces=every_namespace,
            wide=args.output == "wide",
            qualified=True,
            show_headers=not args.no_headers,
            show_labels=args.show_labels,
        )
        table.print(items)
    return 0


def _get_kind(
    client: ControlPlaneClient, kind: Kind, names: list[str], args: argparse.Namespace, missing: list[str]
) -> None:
    namespace = None if args.all_namespaces else _namespace(args)
    table: Rows | None = None
    if is_custom_columns(args.output):
        table = CustomColumns(args.output, show_headers=not args.no_headers)
    elif args.output in (None, "wide"):
        table = Table(
            kind,
            all_namespaces=namespace is None and kind.namespaced,
            wide=args.output == "wide",
            show_headers=not args.no_headers,
            show_labels=args.show_labels,
        )
    items, version = _fetch(
        client,
        kind,
        namespace or "",
        names,
        args.selector,
        all_namespaces=namespace is None,
        missing=None if args.watch else missing,
        field_selector=args.field_selector,
    )
    items = _ordered(items, args)
    if table is not None:
        if items:
            table.print(items)
        elif not args.watch and not names and not args.ignore_not_found:
            print(f"No resources found{_where_searched(kind, namespace)}.", file=sys.stderr)
    elif names and not items:
        return  # only what was not found is said, as kubectl says it
    elif args.output == "name":
        for item in items:
            print(object_name(item))
    elif len(names) == 1 or args.watch:
        for item in items:
            print_structured(item, args.output)
    else:
        print_structured(as_list(items), args.output)
    if args.watch:
        _follow(client, kind, namespace, names, args, version, table)


def _ordered(items: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The items in `--sort-by`'s order (what `--watch` prints later comes as it happens)."""
    if not args.sort_by:
        return items
    try:
        return sorted_items(items, args.sort_by)
    except ValueError as error:
        raise CommandError(str(error)) from None


def _follow(
    client: ControlPlaneClient,
    kind: Kind,
    namespace: str | None,
    names: list[str],
    args: argparse.Namespace,
    version: str,
    table: Rows | None,
) -> None:
    """Prints each change after `version` as it happens (`get --watch`), until interrupted."""
    sys.stdout.flush()
    name = names[0] if names else None
    events = client.watch(
        kind,
        namespace,
        name=name,
        label_selector=args.selector,
        field_selector=args.field_selector,
        resource_version=version,
    )
    for event in events:
        if event["type"] == "ERROR":
            raise CommandError(event["object"].get("message") or "the watch was ended by the server")
        item = event["object"]
        if table is not None:
            table.print([item])
        elif args.output == "name":
            print(object_name(item))
        else:
            if args.output == "yaml":
                print("---")
            print_structured(item, args.output)
        sys.stdout.flush()


def _where_searched(kind: Kind, namespace: str | None) -> str:
    if not kind.namespaced:
        return ""
    return " in any namespace" if namespace is None else f" in {namespace} namespace"


def _describe(args: argparse.Namespace) -> int:
    namespace = None if args.all_namespaces else _namespace(args)
    groups = _kind_groups(args.kind, args.names)
    if namespace is None and any(names for _, names in groups):
        raise CommandError("a resource cannot be retrieved by name across all namespaces")
    described = []
    missing: list[str] = []
    events: dict[str, list[dict[str, Any]]] = {}  # each namespace's, fetched once
    with _client(args) as client:
        for kind, names in groups:
            items, _version = _fetch(
                client,
                kind,
                namespace or "",
                names,
                args.selector,
                all_namespaces=namespace is None,
                missing=missing,
            )
            for item in items:
                # a cluster-scoped object's events are in `default`
                scope = item["metadata"].get("namespace") or DEFAULT_NAMESPACE
                if scope not in events:
                    events[scope] = _events(client, scope)
                described.append(describe(item, events[scope]).rstrip("\n"))
    if not described and not missing:
        print(f"No resources found{_where_searched(groups[0][0], namespace)}.", file=sys.stderr)
    if described:
        print("\n\n".join(described))
    return _report_missing(args, missing)


def _events(client: ControlPlaneClient, namespace: str) -> list[dict[str, Any]]:
    """The events of a namespace, for `describe`."""
    try:
        return client.list(EVENT, namespace)["items"]
    except ApiError:
        return []


def _fetch(
    client: ControlPlaneClient,
    kind: Kind,
    namespace: str,
    names: list[str],
    selector: str | None,
    *,
    all_namespaces: bool,
    missing: list[str] | None = None,
    field_selector: str | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """The named resources (or the list) and the resourceVersion to watch from after them. A named
    resource that is not there is added to `missing`, where one is given. Named resources are not
    selected (kubectl refuses names with a selector)."""
    try:
        if names:
            items = []
            for name in names:
                try:
                    items.append(client.get(kind, namespace, name))
                except NotFound as error:
                    if missing is None:
                        raise
                    missing.append(str(error))
            return items, str(max((int(item["metadata"]["resourceVersion"]) for item in items), default=""))
        listed = client.list(kind, None if all_namespaces else namespace, selector, field_selector)
        return listed["items"], listed["metadata"]["resourceVersion"]
    except ApiError as error:
        raise CommandError(str(error)) from None


# ---- delete ----


def _delete(args: argparse.Namespace) -> int:
    args.dry_run = _dry_run(args)
    targets = _delete_targets(args)
    failed = False
    with _client(args) as client:
        if args.all or args.selector:
            kind = _resolve(args.kind)
            namespace = None if args.all_namespaces else _namespace(args)
            try:
                items = client.list(kind, namespace, args.selector)["items"]
            except ApiError as error:
                raise CommandError(str(error)) from None
            targets = [
                (kind, item["metadata"].get("namespace", ""), item["metadata"]["name"]) for item in items
            ]
            if not targets:
                print(f"No resources found{_where_searched(kind, namespace)}.", file=sys.stderr)
        for kind, namespace, name in targets:
            try:
                client.delete(kind, namespace, name, dry_run=bool(args.dry_run))
            except NotFound as error:
                if not args.ignore_not_found:
                    failed = _report(args, str(error))
                continue
            except ApiError as error:
                failed = _report(args, str(error))
                continue
            print(
                f'{qualified_singular(kind)} "{name}" deleted' + (" (server dry run)" if args.dry_run else "")
            )
    return 1 if failed else 0  # kubectl's exit code


def _delete_targets(args: argparse.Namespace) -> list[tuple[Kind, str, str]]:
    if args.all_namespaces and not (args.all or args.selector):
        raise CommandError("-A deletes with --all or -l only: give KIND --all -A")
    if args.all and args.selector:
        raise CommandError("give either --all or -l SELECTOR, not both")
    if (args.all or args.selector) and (args.names or "/" in (args.kind or "")):
        raise CommandError(
            f"name cannot be provided when {'--all' if args.all else 'a selector'} is specified"
        )
    if args.filename:
        if args.kind or args.names or args.all:
            raise CommandError("give either -f FILE or KIND NAME..., not both")
        documents = without_namespaces(read_documents(args.filename, args.recursive, "delete"), "delete")
        targets = []
        for document in documents:
            resource = placed(document, args.namespace)
            kind = kind_of(resource)
            assert kind is not None  # _placed refuses unknown kinds
            targets.append((kind, resource["metadata"].get("namespace", ""), resource["metadata"]["name"]))
        return targets
    if not args.kind:
        raise CommandError("give KIND NAME... (or KIND --all, or -f FILE)")
    groups = _kind_groups(args.kind, args.names)
    if not any(names for _kind, names in groups) and not (args.all or args.selector):
        raise CommandError(f"give the name of the {groups[0][0].singular} to delete, or --all")
    return [(kind, _namespace(args), name) for kind, names in groups for name in names]


# ---- wait ----


def _wait(args: argparse.Namespace) -> int:
    condition = _parse_condition(args.condition)
    deadline = time.monotonic() + _parse_duration(args.timeout)
    namespace = _namespace(args)
    with _client(args) as client:
        targets = _wait_targets(client, args, namespace)
        if not targets:
            print("error: no matching resources found", file=sys.stderr)  # kubectl's words
            return 1
        for kind, name in targets:
            if not _wait_for(client, kind, namespace, name, condition, deadline):
                why = _why_not(client, kind, namespace, name, condition)
                print(
                    f"error: timed out waiting for the condition on {kind.plural}/{name}{why}",
                    file=sys.stderr,
                )
                return 1
            print(f"{qualified_singular(kind)}/{name} condition met")  # kubectl's words, deletion too
    return 0


def _wait_targets(
    client: ControlPlaneClient, args: argparse.Namespace, namespace: str
) -> list[tuple[Kind, str]]:
    """The named resources, or those of the kind that `-l` or `--all` pick as the wait begins."""
    if not (args.selector or args.all):
        targets = [(kind, name) for kind, names in _kind_groups(args.kind, args.names) for name in names]
        if not targets:
            raise CommandError("give the name of the resource to wait for, or -l SELECTOR, or --all")
        return targets
    if args.names or "/" in args.kind:
        raise CommandError(
            f"name cannot be provided when {'a selector' if args.selector else '--all'} is specified"
        )
    kind = _resolve(args.kind)
    items, _ = _fetch(client, kind, namespace, [], args.selector, all_namespaces=False)
    return [(kind, item["metadata"]["name"]) for item in items]


def _wait_for(
    client: ControlPlaneClient,
    kind: Kind,
    namespace: str,
    name: str,
    condition: tuple[str, str] | None,
    deadline: float,
) -> bool:
    """Whether the condition (None: deletion) holds before the deadline, watching for changes."""
    try:
        current = client.get(kind, namespace, name)
    except NotFound as error:
        if condition is None:
            return True
        raise CommandError(str(error)) from None
    except ApiError as error:
        raise CommandError(str(error)) from None
    if condition is not None and _condition_met(current, condition):
        return True
    version = current["metadata"]["resourceVersion"]
    while (remaining := deadline - time.monotonic()) > 0:
        for event in client.watch(kind, namespace, name=name, resource_version=version, timeout=remaining):
            if event["type"] == "ERROR":  # history expired: start again from the current state
                return _wait_for(client, kind, namespace, name, condition, deadline)
            version = event["object"]["metadata"]["resourceVersion"]
            if event["type"] == "DELETED":
                if condition is None:
                    return True
                raise CommandError(f'{kind.crd_name} "{name}" was deleted while waiting')
            if condition is not None and _condition_met(event["object"], condition):
                return True
    return False


def _why_not(
    client: ControlPlaneClient, kind: Kind, namespace: str, name: str, condition: tuple[str, str] | None
) -> str:
    """What the awaited condition says now (`: Ready is False (ModelLoadFailed): ...`), or "" when
    the resource has none to say."""
    if condition is None:
        return ""
    try:
        resource = client.get(kind, namespace, name)
    except ApiError:
        return ""
    status = resource.get("status") or {}
    generation = (resource.get("metadata") or {}).get("generation")
    for entry in status.get("conditions") or []:
        if str(entry.get("type", "")).lower() == condition[0].lower():
            observed = entry.get("observedGeneration", status.get("observedGeneration"))
            if observed is not None and generation is not None and observed < generation:
                return f": its status still describes generation {observed}, not the current {generation}"
            reason = f" ({entry['reason']})" if entry.get("reason") else ""
            message = f": {entry['message']}" if entry.get("message") else ""
            return f": {entry.get('type')} is {entry.get('status')}{reason}{message}"
    return f": it has no {condition[0]} condition yet"


def _condition_met(resource: dict[str, Any], condition: tuple[str, str]) -> bool:
    """Whether the status reports the condition, for the current generation (as kubectl checks)."""
    wanted_type, wanted_status = condition
    status = resource.get("status") or {}
    generation = (resource.get("metadata") or {}).get("generation")
    for entry in status.get("conditions") or []:
        if str(entry.get("type", "")).lower() != wanted_type.lower():
            continue
        observed = entry.get("observedGeneration", status.get("observedGeneration"))
        if observed is not None and generation is not None and observed < generation:
            return False
        return str(entry.get("status", "")).lower() == wanted_status.lower()
    return False


def _parse_condition(text: str) -> tuple[str, str] | None:
    """`condition=Ready` → ("Ready", "True"); `condition=Ready=False`; `delete` → None."""
    if text == "delete":
        return None
    prefix, _, rest = text.partition("=")
    if prefix != "condition" or not rest:
        raise CommandError(f"unsupported --for {text!r}: use condition=NAME[=VALUE] or delete")
    name, _, value = rest.partition("=")
    return name, value or "True"


def _parse_duration(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total, number = 0.0, ""
    position = 0
    try:
        while position < len(text):
            if text[position].isdigit() or text[position] == ".":
                number += text[position]
                position += 1
                continue
            unit = "ms" if text.startswith("ms", position) else text[position]
            total += float(number) * units[unit]
            number, position = "", position + len(unit)
        if number:
            total += float(number)
    except (KeyError, ValueError):
        raise CommandError(f"invalid --timeout {text!r}: use e.g. 30s, 5m, 1h30m") from None
    return total


# ---- shared ----


@contextmanager
def _client(args: argparse.Namespace) -> Iterator[ControlPlaneClient]:
    url = api_url(args.server)
    try:
        client = ControlPlaneClient(
            url,
            token=api_token(args.token),
            certificate_authority=api_certificate_authority(args.certificate_authority),
        )
    except ClientSettingsError as exc:
        raise CommandError(str(exc)) from None
    try:
        yield client
    except Unreachable:
        raise CommandError(f"cannot reach the control plane at {url} (is 'modelplane up' running?)") from None
    finally:
        client.close()


def _resolve(word: str) -> Kind:
    kind = resolve_kind(word)
    if kind is None and kinds_in_category(word):
        raise CommandError(f'"{word}" names several kinds: it works with get; name one kind here')
    if kind is None:
        raise CommandError(f'the server doesn\'t have a resource type "{word}"')
    return kind


def _kind_groups(kind_word: str, names: list[str]) -> list[tuple[Kind, list[str]]]:
    """`isvc a b` → [(InferenceService, [a, b])]; `isvc/a ig/b isvc/c` → each kind with its names, in
    the order they were first named (as kubectl takes them)."""
    if "/" not in kind_word:
        if any("/" in name for name in names):
            raise CommandError("give either KIND NAME... or KIND/NAME..., not both")
        return [(_resolve(kind_word), list(names))]
    groups: dict[str, tuple[Kind, list[str]]] = {}
    for word in [kind_word, *names]:
        kind_part, slash, name = word.partition("/")
        if not slash or not name:
            raise CommandError(
                f"{word!r}: there is no need to give a resource type apart when naming resources as KIND/NAME"
            )
        kind = _resolve(kind_part)
        groups.setdefault(kind.kind, (kind, []))[1].append(name)
    return list(groups.values())


def _namespace(args: argparse.Namespace) -> str:
    return args.namespace or DEFAULT_NAMESPACE


def object_name(resource: dict[str, Any]) -> str:
    kind = kind_of(resource)
    name = resource["metadata"]["name"]
    return f"{qualified_singular(kind)}/{name}" if kind else f"{resource.get('kind')}/{name}"


def _report(args: argparse.Namespace, message: str) -> bool:
    print(f"modelplane {args.command}: {message}", file=sys.stderr)
    return True
