"""Kubernetes' Secret, as modelplane stores it: written like Kubernetes', never read back.

A Secret's `data` holds base64 values by key, of any bytes (a DER key, a keystore); `stringData` holds
plain ones and is folded into `data` when written, as the API server does. What modelplane adds: a
read answers each value as a placeholder of the value's size (`<redacted>` repeated to as many bytes,
in base64), so that a client counting a value's bytes, `kubectl describe secret`, counts the stored
ones; and a write that gives a key's placeholder back (or `REDACTED`, the base64 of `<redacted>` alone,
which reads answered for every value before their sizes were kept) keeps the value stored under it,
so a Secret read, edited and applied again keeps the values it did not change. A value that looks
like a placeholder and stands for nothing stored is refused. The answer to a write marks each value
it changed without changing its size with a placeholder of its own (`[changed]` repeated), so that
`kubectl diff`, which compares a dry run's answer with a read, sees the change. kubectl's
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
import os
from collections.abc import Callable, Iterator
from typing import Any

from .config_data import changes_to_an_immutable, key_errors, size_errors
from .errors import FieldError

STORAGE_CONFIG_SECRET = "storage-config"
PLACEHOLDER = b"<redacted>"
CHANGED = b"[changed]"  # a written value of the stored one's size, in the write's answer
REDACTED = base64.b64encode(PLACEHOLDER).decode()
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def written_secret(resource: dict, old: dict | None) -> dict:
    """The Secret as it is stored: `stringData` folded into `data` (base64), a placeholder given
    back replaced by the value stored under its key, `type` defaulted to Opaque, and the
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
            if key in stored and _given_back(value, stored[key]):
                data[key] = stored[key]
    if data or "data" in resource:
        resource["data"] = data
    resource.setdefault("type", "Opaque")
    annotations = (resource.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict) and isinstance(annotations.get(LAST_APPLIED), str):
        annotations[LAST_APPLIED] = _redacted_last_applied(annotations[LAST_APPLIED])
    return resource


def secret_errors(resource: dict, old: dict | None) -> Iterator[FieldError]:
    """What the API server refuses in a Secret (keys, base64, more than 1 MiB, a key its type needs,
    a changed type, an immutable Secret changed), and, in `storage-config`, a value that is not a JSON
    object. No message holds a value."""
    for field in ("data", "stringData"):
        if field in resource and not isinstance(resource[field], dict):
            yield FieldError(field, "Invalid value: must be a mapping of keys to values")
    string_data = resource.get("stringData")
    for key in string_data if isinstance(string_data, dict) else ():
        yield FieldError(f"stringData[{key}]", "Invalid value: must be a string (the value is not shown)")
    data = resource.get("data")
    if not isinstance(data, dict | None):
        return
    values: dict[str, bytes] = {}
    for key, value in (data or {}).items():
        yield from key_errors("data", key)
        yield from _value_errors(key, value, values)
    yield from size_errors("data", (len(raw) for raw in values.values()))
    yield from _type_errors(resource, values)
    if (resource.get("metadata") or {}).get("name") == STORAGE_CONFIG_SECRET:
        yield from _storage_config_errors(values)
    if old is not None:
        yield from _update_errors(resource, old)


def _value_errors(key: str, value: Any, values: dict[str, bytes]) -> Iterator[FieldError]:
    """What is wrong with a `data` value; a sound one is added to `values`."""
    path = f"data[{key}]"
    raw = decoded_value(value)
    if raw is None:
        yield FieldError(path, "Invalid value: must be a base64-encoded string (stringData takes plain text)")
    elif _is_placeholder(raw):
        yield FieldError(path, "Invalid value: the redacted placeholder a read answers, not a value")
    else:
        values[key] = raw


def _storage_config_errors(values: dict[str, bytes]) -> Iterator[FieldError]:
    for key, raw in values.items():
        if storage_document(raw) is None:
            yield FieldError(
                f"data[{key}]",
                "Invalid value: a storage config must be a JSON object (its content is not shown)",
            )


def _update_errors(resource: dict, old: dict) -> Iterator[FieldError]:
    if resource.get("type") != old.get("type"):
        yield FieldError("type", f'Invalid value: "{resource.get("type")}": field is immutable')
    yield from changes_to_an_immutable(resource, old, ("data",))


# ---- what a Secret's type requires (Kubernetes' ValidateSecret) ----

SERVICE_ACCOUNT_NAME_ANNOTATION = "kubernetes.io/service-account.name"
_REQUIRED = "Required value"


def _type_errors(resource: dict, values: dict[str, bytes]) -> Iterator[FieldError]:
    rule = _TYPE_RULES.get(resource.get("type"))
    if rule is not None:
        yield from rule(resource, values)


def _tls(resource: dict, values: dict[str, bytes]) -> Iterator[FieldError]:
    for key in ("tls.crt", "tls.key"):
        if key not in values:
            yield FieldError(f"data[{key}]", _REQUIRED)


def _docker_config(key: str) -> Callable[[dict, dict[str, bytes]], Iterator[FieldError]]:
    """The rule of a Docker config Secret: `key` holds a JSON object."""

    def rule(resource: dict, values: dict[str, bytes]) -> Iterator[FieldError]:
        if key not in values:
            yield FieldError(f"data[{key}]", _REQUIRED)
        elif not _json_object_or_null(values[key]):
            yield FieldError(
                f"data[{key}]", 'Invalid value: "<secret contents redacted>": must be a JSON object'
            )

    return rule


def _basic_auth(resource: dict, values: dict[str, bytes]) -> Iterator[FieldError]:
    if "username" not in values and "password" not in values:  # either may be empty
        yield FieldError("data[username]", _REQUIRED)
        yield FieldError("data[password]", _REQUIRED)


def _ssh_auth(resource: dict, values: dict[str, bytes]) -> Iterator[FieldError]:
    if not values.get("ssh-privatekey"):
        yield FieldError("data[ssh-privatekey]", _REQUIRED)


def _service_account_token(resource: dict, values: dict[str, bytes]) -> Iterator[FieldError]:
    annotations = (resource.get("metadata") or {}).get("annotations") or {}
    if not annotations.get(SERVICE_ACCOUNT_NAME_ANNOTATION):
        yield FieldError(f"metadata.annotations[{SERVICE_ACCOUNT_NAME_ANNOTATION}]", _REQUIRED)


def _json_object_or_null(raw: bytes) -> bool:
    """Whether Go's `json.Unmarshal` takes `raw` into a map, as Kubernetes checks a Docker config."""
    try:
        return isinstance(json.loads(raw), dict | None)
    except ValueError:
        return False


_TYPE_RULES = {
    "kubernetes.io/tls": _tls,
    "kubernetes.io/dockerconfigjson": _docker_config(".dockerconfigjson"),
    "kubernetes.io/dockercfg": _docker_config(".dockercfg"),
    "kubernetes.io/basic-auth": _basic_auth,
    "kubernetes.io/ssh-auth": _ssh_auth,
    "kubernetes.io/service-account-token": _service_account_token,
}


def redacted(resource: dict, before: dict | None = None) -> dict:
    """The Secret as a read answers it: every value its placeholder, keys kept. The answer to a write
    gives `before`, the Secret as it was: a value that differs from the one it had, at the same size,
    is marked changed."""
    shown = copy.deepcopy(resource)
    if isinstance(shown.get("data"), dict):
        earlier = (before or {}).get("data")
        earlier = earlier if isinstance(earlier, dict) else {}
        shown["data"] = {
            key: _shown_value(value, earlier.get(key, value)) for key, value in shown["data"].items()
        }
    shown.pop("stringData", None)
    annotations = (shown.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict) and isinstance(annotations.get(LAST_APPLIED), str):
        annotations[LAST_APPLIED] = _redacted_last_applied(annotations[LAST_APPLIED])
    return shown


def _shown_value(value: Any, before: Any) -> str:
    size = _size(value)
    if value != before and size == _size(before):
        return base64.b64encode(_repeated(CHANGED, size)).decode()
    return placeholder(size)


def placeholder(size: int) -> str:
    """What a read answers for a value of `size` bytes: as many bytes of `<redacted>` repeated, in base64."""
    return base64.b64encode(_repeated(PLACEHOLDER, size)).decode()


def _repeated(pattern: bytes, size: int) -> bytes:
    repeats = -(-size // len(pattern))
    return (pattern * repeats)[:size]


def _is_redacted(raw: bytes) -> bool:
    return bool(raw) and raw == _repeated(PLACEHOLDER, len(raw))


def _is_placeholder(raw: bytes) -> bool:
    """Whether `raw` is what an answer shows for a value, the placeholder of a read or of a change."""
    return _is_redacted(raw) or (bool(raw) and raw == _repeated(CHANGED, len(raw)))


def _given_back(value: Any, stored: str) -> bool:
    """Whether a written value is the placeholder a read answers for the value stored (or
    `REDACTED`, which stands for any)."""
    raw = decoded_value(value)
    return raw is not None and _is_redacted(raw) and (raw == PLACEHOLDER or len(raw) == _size(stored))


def _size(value: Any) -> int:
    return len(decoded_value(value) or b"")


def decoded_value(value: Any) -> bytes | None:
    """A `data` value's bytes, or None if it is not base64."""
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def storage_document(raw: bytes) -> dict | None:
    """A storage-config value as its JSON object, or None."""
    try:
        document = json.loads(raw)
    except ValueError:  # UnicodeDecodeError included: JSON is text
        return None
    return document if isinstance(document, dict) else None


def secret_values(secret: dict) -> dict[str, str]:
    """A stored Secret's values as text, by key. Bytes that are not UTF-8 are kept as surrogate
    escapes (`os.fsdecode`): a process's environment is bytes, and Python encodes such text back to the
    bytes stored (`os.fsencode`), so a variable made of one gets them as they are, as the kubelet
    passes them."""
    return {key: os.fsdecode(raw) for key, raw in secret_files(secret).items()}


def secret_files(secret: dict) -> dict[str, bytes]:
    """A stored Secret's values as bytes, by key (as a volume's files hold them)."""
    files = {}
    for key, value in (secret.get("data") or {}).items():
        raw = decoded_value(value)
        if raw is not None:
            files[key] = raw
    return files


def storage_documents(secret: dict) -> dict[str, dict]:
    """The storage configs of a stored `storage-config` Secret, by key (values it refused are left out)."""
    documents = {key: storage_document(raw) for key, raw in secret_files(secret).items()}
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
