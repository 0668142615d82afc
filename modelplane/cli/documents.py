"""The resources a command reads from files (`-f`), and how each is placed, as `kubectl apply` places
it: its kind known, its namespace settled (its own, else `--namespace`, else `default`), and a
namespace that contradicts an explicit `--namespace` refused."""

from __future__ import annotations

import sys
from collections.abc import Collection
from typing import Any

from modelplane.api.errors import LoadError
from modelplane.api.kinds import Kind, kind_of, wrong_version_hint
from modelplane.api.loader import Document, load_path, load_text
from modelplane.cli.main import CommandError

DEFAULT_NAMESPACE = "default"


def placed(document: Document, namespace: str | None, refused: Collection[Kind] = ()) -> dict[str, Any]:
    """The document's resource with its namespace settled; `refused` are kinds the command does not take."""
    resource = document.resource
    kind = kind_of(resource)
    if kind is None or kind in refused:
        hint = wrong_version_hint(resource)
        raise CommandError(
            f'{document.where()}: no matches for kind "{resource.get("kind")}" '
            f'in version "{resource.get("apiVersion")}"' + (f" ({hint})" if hint else "")
        )
    if not kind.namespaced:
        return resource
    metadata = resource["metadata"]
    own = metadata.get("namespace")
    if own and namespace and own != namespace:
        raise CommandError(
            f'{document.where()}: the namespace from the provided object "{own}" does not match the '
            f"namespace \"{namespace}\". You must pass '--namespace={own}' to perform this operation."
        )
    metadata["namespace"] = own or namespace or DEFAULT_NAMESPACE
    return resource


def read_documents(sources: list[str], recursive: bool, command: str) -> list[Document]:
    """The documents of files, folders (`recursive`: and their subfolders), http(s) URLs and `-`
    (standard input). Only `create` takes a document with a `generateName` and no name, as kubectl."""
    documents: list[Document] = []
    try:
        for source in sources:
            if source == "-":
                documents += load_text(sys.stdin.read(), source="<stdin>")
            elif source.startswith(("http://", "https://")):
                documents += load_text(_read_url(source), source=source)
            else:
                documents += load_path(source, recursive=recursive)
    except LoadError as error:
        raise CommandError(str(error)) from None
    if command != "create":
        for document in documents:
            require_name(document, command)
    return documents


def require_name(document: Document, command: str) -> None:
    """CommandError for a document named by `generateName` alone, which only `create` completes."""
    metadata = document.resource["metadata"]
    if not metadata.get("name"):
        raise CommandError(
            f"{document.where()}: from {metadata['generateName']}: cannot use generate name with "
            f"{command} (only create makes a name from it)"
        )


def _read_url(url: str) -> str:
    """A manifest fetched as `kubectl apply -f URL` fetches it (redirects followed)."""
    import httpx

    try:
        response = httpx.get(url, follow_redirects=True, timeout=30)
    except httpx.HTTPError as error:
        raise CommandError(f'unable to read URL "{url}": {error or type(error).__name__}') from None
    if response.status_code != 200:
        raise CommandError(
            f'unable to read URL "{url}", server reported {response.status_code} {response.reason_phrase}'
        )
    return response.text


def without_namespaces(documents: list[Document], command: str) -> list[Document]:
    """The documents less `kind: Namespace` ones, each said to be passed over: namespaces are not
    objects here (every namespace exists), and a bundle that begins by making its namespace, as
    KServe's examples often do, should still apply."""
    kept = []
    for document in documents:
        resource = document.resource
        if resource.get("kind") == "Namespace" and resource.get("apiVersion") == "v1":
            name = (resource.get("metadata") or {}).get("name", "")
            print(
                f'Warning: {document.where()}: namespace "{name}" passed over by {command}: namespaces are not '
                "objects here, every namespace exists",
                file=sys.stderr,
            )
        else:
            kept.append(document)
    return kept
