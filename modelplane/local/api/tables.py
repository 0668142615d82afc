"""Server-side tables: what `kubectl get` prints, computed by the server as Kubernetes does it.

kubectl asks for a list, an object or a watch with
`Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...,application/json`, and prints the
`meta.k8s.io/v1` Table it gets back: a NAME column, then the kind's printer columns (the CRDs'
`additionalPrinterColumns`, computed by `api/columns.py`, as `modelplane get` prints them); the
columns with a priority appear with `-o wide`. Each row carries its object's metadata
(`PartialObjectMetadata`), or as `?includeObject=` asks: `Object` (the whole object) or `None`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelplane.api.kinds import Kind
from modelplane.local.api.columns import Column, leads_with_name, printer_columns
from modelplane.local.api.errors import BadRequest

_GROUP = "meta.k8s.io"
_VERSIONS = ("v1", "v1beta1")
_PLAIN_JSON = ("application/json", "application/*", "*/*")
_INCLUDE_OBJECT = ("None", "Metadata", "Object")

_NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace. Cannot be updated.",
    "priority": 0,
}


@dataclass(frozen=True)
class TableRequest:
    """A request's wish for a Table: in which version of meta.k8s.io, with what in each row."""

    api_version: str = f"{_GROUP}/v1"
    include_object: str = "Metadata"


def table_request(accept: str | None, include_object: str | None = None) -> TableRequest | None:
    """The Table an `Accept` header asks for, if it prefers one to plain JSON; None for plain JSON.

    Media ranges are taken in the order given; ones the server cannot answer (protobuf, another
    `as=`) are passed over."""
    for media_range in (accept or "").split(","):
        media_type, _, rest = media_range.partition(";")
        parameters = dict(_parameter(p) for p in rest.split(";") if "=" in p)
        if media_type.strip().lower() not in _PLAIN_JSON:
            continue
        wanted = parameters.get("as")
        if wanted is None:
            return None
        if wanted == "Table" and parameters.get("g") == _GROUP and parameters.get("v") in _VERSIONS:
            return TableRequest(f"{_GROUP}/{parameters['v']}", _include_object(include_object))
    return None


def _parameter(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    return key.strip(), value.strip()


def _include_object(value: str | None) -> str:
    if value in (None, ""):
        return "Metadata"
    if value not in _INCLUDE_OBJECT:
        raise BadRequest(
            f'includeObject: Unsupported value: "{value}": supported values: "None", "Metadata", "Object"'
        )
    return value


def column_definitions(kind: Kind) -> list[dict[str, Any]]:
    """NAME (but for an Event), then the kind's printer columns, as a Table describes its columns."""
    leading = [_NAME_COLUMN] if leads_with_name(kind) else []
    return [*leading, *(_definition(column) for column in printer_columns(kind))]


def _definition(column: Column) -> dict[str, Any]:
    return {
        "name": column.name,
        "type": column.type,
        "format": column.format,
        "description": _description(column),
        "priority": column.priority,
    }


def _description(column: Column) -> str:
    if column.description:
        return column.description
    if column.counted:
        return f"The number of entries in {' and '.join(column.counted)}"
    return f"Custom resource definition column (in JSONPath format): {column.json_path}"


def table(
    kind: Kind,
    items: list[dict[str, Any]],
    request: TableRequest,
    resource_version: str,
    *,
    with_columns: bool = True,
) -> dict[str, Any]:
    """A Table of `items`; `with_columns=False` leaves out the column definitions, which a watch
    sends with its first event only (kubectl keeps the last ones it saw)."""
    now = datetime.now(UTC)
    columns = printer_columns(kind)
    leading_name = leads_with_name(kind)
    return {
        "kind": "Table",
        "apiVersion": request.api_version,
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": column_definitions(kind) if with_columns else [],
        "rows": [_row(item, columns, request, now, leading_name) for item in items],
    }


def _row(
    item: dict[str, Any],
    columns: tuple[Column, ...],
    request: TableRequest,
    now: datetime,
    leading_name: bool,
) -> dict:
    metadata = item.get("metadata") or {}
    leading = [metadata.get("name", "")] if leading_name else []
    row: dict[str, Any] = {"cells": [*leading, *(c.value(item, now) for c in columns)]}
    if request.include_object == "Object":
        row["object"] = item
    elif request.include_object == "Metadata":
        row["object"] = {
            "kind": "PartialObjectMetadata",
            "apiVersion": request.api_version,
            "metadata": metadata,
        }
    return row


async def table_events(
    events: AsyncIterator[dict[str, Any]], kind: Kind, request: TableRequest
) -> AsyncIterator[dict[str, Any]]:
    """A watch's events with each object as a one-row Table; `ERROR` and `BOOKMARK` events pass
    unchanged."""
    first = True
    async for event in events:
        if event.get("type") in ("ERROR", "BOOKMARK"):
            yield event
            continue
        obj = event["object"]
        version = str((obj.get("metadata") or {}).get("resourceVersion", ""))
        yield {"type": event["type"], "object": table(kind, [obj], request, version, with_columns=first)}
        first = False
