"""`describe` text for a resource, laid out as kubectl describes a custom resource:
a header (name, namespace, labels, annotations), then every field with its camelCase name
spelled out (`storageUri` becomes `Storage Uri`) in name order, nested by indentation, and last
the events about it."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from modelplane.local.api.columns import age

# The words kubectl keeps in capitals.
_ACRONYMS = {"API", "URL", "UID", "OSB", "GUID"}
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|-")


def describe(resource: dict[str, Any], events: list[dict[str, Any]] = ()) -> str:
    """The text; `events` may be any events, those about `resource` are shown."""
    metadata = resource.get("metadata") or {}
    lines = [
        *_aligned(
            [
                ("Name:", metadata.get("name", "")),
                *([("Namespace:", metadata["namespace"])] if metadata.get("namespace") else []),
            ]
        ),
    ]
    lines += _pairs_block("Labels:", metadata.get("labels"), "=")
    lines += _pairs_block("Annotations:", metadata.get("annotations"), ": ")
    lines += _aligned([("API Version:", resource.get("apiVersion", "")), ("Kind:", resource.get("kind", ""))])
    rest = {k: v for k, v in metadata.items() if k not in ("name", "namespace", "labels", "annotations")}
    for key, value in (
        ("Metadata", rest),
        ("Spec", resource.get("spec")),
        ("Status", resource.get("status")),
    ):
        if value:
            lines.append(f"{key}:")
            lines += _field_lines(value, 1)
    lines += _events_block(events_about(events, resource))
    return "\n".join(lines) + "\n"


def events_about(events: list[dict[str, Any]], resource: dict[str, Any]) -> list[dict[str, Any]]:
    """The events whose object is `resource` (by kind, name and namespace), oldest first."""
    metadata = resource.get("metadata") or {}
    wanted = (resource.get("kind"), metadata.get("name"), metadata.get("namespace"))
    about = [
        event
        for event in events
        if tuple((event.get("involvedObject") or {}).get(k) for k in ("kind", "name", "namespace")) == wanted
    ]
    return sorted(about, key=lambda event: str(event.get("lastTimestamp") or ""))


def _events_block(events: list[dict[str, Any]]) -> list[str]:
    """kubectl's events table: type, reason, age (`5s (x3 over 2m)` for a repeated one), source, message."""
    if not events:
        return ["Events:  <none>"]
    now = datetime.now(UTC)
    rows = [("Type", "Reason", "Age", "From", "Message"), ("----", "------", "----", "----", "-------")]
    for event in events:
        seen = age(str(event.get("lastTimestamp") or ""), now)
        count = int(event.get("count") or 1)
        if count > 1:
            seen += f" (x{count} over {age(str(event.get('firstTimestamp') or ''), now)})"
        source = (event.get("source") or {}).get("component") or event.get("reportingComponent") or ""
        rows.append((event.get("type", ""), event.get("reason", ""), seen, source, event.get("message", "")))
    widths = [max(len(str(row[i])) for row in rows) for i in range(4)]
    lines = ["Events:"]
    for row in rows:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  " + "  ".join([*cells, str(row[4])]).rstrip())
    return lines


def smart_label(key: str) -> str:
    """`storageUri` → `Storage Uri`, `apiVersion` → `API Version`, as kubectl labels fields
    (a key with anything but letters and `-` stays as it is)."""
    if not key or any(not (c.isalpha() or c == "-") for c in key):
        return key
    words = _WORD.findall(key) or [key]
    return " ".join(w.upper() if w.upper() in _ACRONYMS else w[:1].upper() + w[1:] for w in words)


def _pairs_block(title: str, pairs: dict[str, str] | None, separator: str) -> list[str]:
    width = 14
    if not pairs:
        return [f"{title:<{width}}<none>"]
    items = [f"{k}{separator}{v}" for k, v in sorted(pairs.items())]
    return [f"{title:<{width}}{items[0]}", *(" " * width + item for item in items[1:])]


def _aligned(rows: list[tuple[str, Any]], indent: int = 0, width: int = 14) -> list[str]:
    pad = "  " * indent
    width = max(width, *(len(label) + 2 for label, _ in rows)) if rows else width
    return [f"{pad}{label:<{width}}{_scalar(value)}" for label, value in rows]


def _field_lines(value: Any, indent: int) -> list[str]:
    pad = "  " * indent
    if isinstance(value, dict):
        scalars = [(f"{smart_label(k)}:", v) for k, v in value.items() if not isinstance(v, dict | list)]
        width = max((len(label) + 2 for label, _ in scalars), default=0)
        lines: list[str] = []
        for key, item in sorted(value.items()):
            label = f"{smart_label(key)}:"
            if isinstance(item, dict | list):
                lines.append(f"{pad}{label}" + ("" if item else "  <none>"))
                lines += _field_lines(item, indent + 1)
            else:
                lines.append(f"{pad}{label:<{width}}{_scalar(item)}")
        return lines
    if isinstance(value, list):
        lines = []
        for item in value:
            lines += (
                _field_lines(item, indent) if isinstance(item, dict | list) else [f"{pad}{_scalar(item)}"]
            )
        return lines
    return [f"{pad}{_scalar(value)}"]


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
