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


def read_documents(sources: list[str], recursive: bool) -> list[Document]:
    """The documents of files, folders (`recursive`: and their subfolders) and `-` (standard input)."""
    documents: list[Document] = []
    try:
        for source in sources:
            if source == "-":
                documents += load_text(sys.stdin.read(), source="<stdin>")
            else:
                documents += load_path(source, recursive=recursive)
    except LoadError as error:
        raise CommandError(str(error)) from None
    return documents
