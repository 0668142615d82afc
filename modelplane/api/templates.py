"""Runtime container templates: `{{.Name}}`, `{{.Namespace}}`, `{{.Labels.x}}`, `{{.Annotations.x}}`,
and `{{index .Annotations "x/y"}}` for a key a field name cannot spell.

A runtime's containers are filled in with the InferenceService's metadata, as Go's text/template would
(a missing label or annotation renders as `<no value>`, or as nothing through `index`).
"""

from __future__ import annotations

import re

# `{{.Field}}`, `{{.Map.key}}` or `{{index .Map "key"}}`, with optional spaces and trim markers.
_PLACEHOLDER = re.compile(
    r'\{\{-?\s*(?:\.(?P<field>\w+)(?:\.(?P<key>[\w.-]+?))?|index\s+\.(?P<map>\w+)\s+"(?P<indexed>[^"]*)")\s*-?\}\}'
)
_FIELDS = {"Name": "name", "Namespace": "namespace", "GenerateName": "generateName", "UID": "uid"}
_MAPS = {"Labels": "labels", "Annotations": "annotations"}


class TemplateError(ValueError):
    """A placeholder that does not name a metadata field."""


def render(text: str, metadata: dict) -> str:
    """`text` with each placeholder replaced from `metadata` (an object's `metadata` mapping)."""

    def substitute(match: re.Match) -> str:
        field, key = match.group("field"), match.group("key")
        if match.group("map") in _MAPS:  # Go's `index` gives a missing key's zero value: nothing
            return str((metadata.get(_MAPS[match.group("map")]) or {}).get(match.group("indexed"), ""))
        if field in _FIELDS and key is None:
            return str(metadata.get(_FIELDS[field], ""))
        if field in _MAPS and key is not None:
            value = (metadata.get(_MAPS[field]) or {}).get(key)
            return "<no value>" if value is None else str(value)
        raise TemplateError(f"can't evaluate {match.group(0)} with the object's metadata")

    return _PLACEHOLDER.sub(substitute, text)


def render_container(container: dict, metadata: dict) -> dict:
    """A copy of a container with every string in it rendered."""
    return _render_value(container, metadata)


def _render_value(value: object, metadata: dict) -> object:
    if isinstance(value, str):
        return render(value, metadata)
    if isinstance(value, dict):
        return {k: _render_value(v, metadata) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_value(v, metadata) for v in value]
    return value
