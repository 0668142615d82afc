"""Kubernetes' Secret, as modelplane stores it: written like Kubernetes', never read back.

A Secret's `data` holds base64 values by key; `stringData` holds plain ones and is folded into `data`
when written, as the API server does. What modelplane adds: a read answers each value as `REDACTED`
(the base64 of `<redacted>`), and a write that gives `REDACTED` back for a key keeps the value stored,
so a Secret read, edited and applied again keeps the values it did not change. kubectl's
`last-applied-configuration` annotation, which would hold the values in clear, is stored with them
redacted too.

The Secret named `storage-config` is the one a model's `storage.key` resolves against: each key is
a storage's name, each value a JSON object (`{"type": "s3", "bucket": ..., ...}`).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from collections.abc import Iterator
from typing import Any

from .errors import FieldError

STORAGE_CONFIG_SECRET = "storage-config"
REDACTED = base64.b64encode(b"<redacted>").decode()
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

KEY_PATTERN = re.compile(r"^[-._a-zA-Z0-9]+$")  # a key of a Secret or a ConfigMap
KEY_MESSAGE = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"


def written_secret(resource: dict, old: dict | None) -> dict:
    """The Secret as it is stored: `stringData` folded into `data` (base64), a `REDACTED` value
    given back replaced by the value stored under its key, `type` defaulted to Opaque, and the
    last-applied annotation redacted. Values of the wrong type are left for `secret_errors`."""
    resource = copy.deepcopy(resource)
    data = resource.get("data")
    data = dict(data) if isinstance(data, dict) else ({} if data is None else data)
    string_data = resource.pop("stringData", None)
    if isinstance(data, dict) and isinstance(string_data, dict):
        for key, value in string_data.items():
            if isinstance(value, str):
                data[key] = base64.b64encode(value.encode()).decode()
        string_data = {key: value for key, value in string_data.items() if not isinstance(value, str)}
    if string_data:
        resource["stringData"] = string_data  # what is not text: refused by secret_errors
    if isinstance(data, dict):
        stored = (old or {}).get("data") or {}
        for key, value in data.items():
            if value == REDACTED and key in stored:
                data[key] = stored[key]
    if data or "data" in resource:
        resource["data"] = data
    resource.setdefault("type", "Opaque")
    annotations = (resource.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict) and isinstance(annotations.get(LAST_APPLIED), str):
        annotations[LAST_APPLIED] = _redacted_last_applied(annotations[LAST_APPLIED])
    return resource


def secret_errors(resource: dict, old: dict | None) -> Iterator[FieldError]:
    """What the API server refuses in a Secret (keys, base64, an immutable Secret changed), and, in
    `storage-config`, a value that is not a JSON object. No message holds a value."""
    for field in ("data", "stringData"):
        if field in resource and not isinstance(resource[field], dict):
            yield FieldError(field, "Invalid value: must be a mapping of keys to values")
    string_data = resource.get("stringData")
    for key in string_data if isinstance(string_data, dict) else ():
        yield FieldError(f"stringData[{key}]", "Invalid value: must be a string (the value is not shown)")
    data = resource.get("data")
    if not isinstance(data, dict):
        return
    name = (resource.get("metadata") or {}).get("name")
    for key, value in data.items():
        path = f"data[{key}]"
        if not KEY_PATTERN.match(str(key)):
            yield FieldError(path, f'Invalid value: "{key}": {KEY_MESSAGE}')
        if value == REDACTED:
            yield FieldError(path, "Invalid value: the redacted placeholder a read answers, not a value")
            continue
        text = decoded_value(value)
        if text is None:
            yield FieldError(
                path, "Invalid value: must be a base64-encoded string (stringData takes plain text)"
            )
        elif name == STORAGE_CONFIG_SECRET and storage_document(text) is None:
            yield FieldError(
                path, "Invalid value: a storage config must be a JSON object (its content is not shown)"
            )
    yield from changes_to_an_immutable(resource, old, ("data",))


def changes_to_an_immutable(
    resource: dict, old: dict | None, fields: tuple[str, ...]
) -> Iterator[FieldError]:
    """What Kubernetes refuses in an update of a Secret or ConfigMap stored with `immutable: true`:
    `immutable` turned off, and each of `fields` changed, each named."""
    if old is None or old.get("immutable") is not True:
        return
    message = "Forbidden: field is immutable when `immutable` is set"
    if resource.get("immutable") is not True:
        yield FieldError("immutable", message)
    for field in fields:
        if resource.get(field) != old.get(field):
            yield FieldError(field, message)


def redacted(resource: dict) -> dict:
    """The Secret as a read answers it: every value `REDACTED`, keys kept."""
    shown = copy.deepcopy(resource)
    if isinstance(shown.get("data"), dict):
        shown["data"] = dict.fromkeys(shown["data"], REDACTED)
    shown.pop("stringData", None)
    annotations = (shown.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict) and isinstance(annotations.get(LAST_APPLIED), str):
        annotations[LAST_APPLIED] = _redacted_last_applied(annotations[LAST_APPLIED])
    return shown


def decoded_value(value: Any) -> str | None:
    """A `data` value as text, or None if it is not base64 of UTF-8 text."""
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def storage_document(text: str) -> dict | None:
    """A storage-config value as its JSON object, or None."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def secret_values(secret: dict) -> dict[str, str]:
    """A stored Secret's values as text, by key (those that are not UTF-8 text are left out)."""
    values = {}
    for key, value in (secret.get("data") or {}).items():
        text = decoded_value(value)
        if text is not None:
            values[key] = text
    return values


def secret_files(secret: dict) -> dict[str, bytes]:
    """A stored Secret's values as bytes, by key (as a volume's files hold them)."""
    files = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            files[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError, ValueError):
            continue
    return files


def storage_documents(secret: dict) -> dict[str, dict]:
    """The storage configs of a stored `storage-config` Secret, by key (values it refused are left out)."""
    documents = {key: storage_document(text) for key, text in secret_values(secret).items()}
    return {key: document for key, document in documents.items() if document is not None}


def _redacted_last_applied(text: str) -> str:
    try:
        applied = json.loads(text)
    except ValueError:
        return ""  # not kubectl's JSON: it may hold anything
    if not isinstance(applied, dict):
        return ""
    for field in ("data", "stringData"):
        if isinstance(applied.get(field), dict):
            applied[field] = dict.fromkeys(applied[field], REDACTED)
    return json.dumps(applied, separators=(",", ":"), sort_keys=True)
