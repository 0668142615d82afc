"""`describe` text for a resource, laid out as kubectl describes a custom resource:
a header (name, namespace, labels, annotations), then every field with its camelCase name
spelled out (`storageUri` becomes `Storage Uri`) in name order, nested by indentation."""

from __future__ import annotations

import re
from typing import Any

# The words kubectl keeps in capitals.
_ACRONYMS = {"API", "URL", "UID", "OSB", "GUID"}
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|-")


def describe(resource: dict[str, Any]) -> str:
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
    lines.append("Events:  <none>")
    return "\n".join(lines) + "\n"


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
