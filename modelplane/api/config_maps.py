"""Kubernetes' ConfigMap, as modelplane stores it: text values in `data`, base64 ones in
`binaryData`, checked as the API server checks them. A container's `env` and `envFrom` read them."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator

from .config_data import changes_to_an_immutable, key_errors, size_errors
from .errors import FieldError


def config_map_errors(resource: dict, old: dict | None) -> Iterator[FieldError]:
    """What the API server refuses in a ConfigMap: a bad key, a key in both maps, binary data that is
    not base64, more than 1 MiB in all, an immutable ConfigMap changed."""
    data = resource.get("data") or {}
    binary = resource.get("binaryData") or {}
    for field, values in (("data", data), ("binaryData", binary)):
        for key in values:
            yield from key_errors(field, key)
    sizes = [len(str(value).encode()) for value in data.values()]
    for key in binary:
        if key in data:
            yield FieldError(
                f"data[{key}]", f'Invalid value: "{key}": duplicate of key present in binaryData'
            )
        try:
            sizes.append(len(base64.b64decode(binary[key], validate=True)))
        except (binascii.Error, ValueError):
            yield FieldError(f"binaryData[{key}]", "Invalid value: must be a base64-encoded string")
    yield from size_errors("", sizes)  # Kubernetes' path for the whole object
    yield from changes_to_an_immutable(resource, old, ("data", "binaryData"))


def config_map_values(config_map: dict) -> dict[str, str]:
    """A stored ConfigMap's values as text, by key (binary values decoded as UTF-8, as far as they go)."""
    values = dict(config_map.get("data") or {})
    for key, value in (config_map.get("binaryData") or {}).items():
        values[key] = base64.b64decode(value).decode("utf-8", "replace")
    return values


def config_map_files(config_map: dict) -> dict[str, bytes]:
    """A stored ConfigMap's values as bytes, by key (as a volume's files hold them)."""
    files = {key: str(value).encode() for key, value in (config_map.get("data") or {}).items()}
    for key, value in (config_map.get("binaryData") or {}).items():
        files[key] = base64.b64decode(value)
    return files
