"""A body's `metadata` of the types Kubernetes' ObjectMeta declares: a field of another JSON type is
refused as Kubernetes' decoder refuses it, 400 `ConfigMap in version "v1" cannot be handled as a
ConfigMap: json: cannot unmarshal number into Go struct field ObjectMeta.metadata.name of type string`,
rather than read as missing. (Kubernetes answers a server-side apply of such a body 500, `failed to
create typed patch object ...`, a bug it tracks as kubernetes#139253; modelplane answers it as a create.)
"""

from __future__ import annotations

from typing import Any

from modelplane.api.kinds import Kind
from modelplane.local.api.errors import BadRequest

_STRINGS = ("name", "generateName", "namespace", "selfLink", "uid", "resourceVersion")
_INTEGERS = ("generation", "deletionGracePeriodSeconds")
_STRING_MAPS = ("labels", "annotations")


def check_metadata_types(body: dict[str, Any], kind: Kind) -> None:
    """BadRequest naming the first field of `body["metadata"]` that ObjectMeta cannot hold."""
    metadata = body.get("metadata")
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise _refused(kind, metadata, f"{kind.kind}.metadata", "v1.ObjectMeta")
    for field in _STRINGS:
        _check(kind, metadata.get(field), field, str, "string")
    for field in _INTEGERS:
        _check(kind, metadata.get(field), field, int, "int64")
    for field in _STRING_MAPS:
        value = metadata.get(field)
        _check(kind, value, field, dict, "map[string]string")
        for item in (value or {}).values():
            _check(kind, item, field, str, "string")
    finalizers = metadata.get("finalizers")
    _check(kind, finalizers, "finalizers", list, "[]string")
    for item in finalizers or []:
        _check(kind, item, "finalizers", str, "string")


def _check(kind: Kind, value: Any, field: str, wanted: type, go_type: str) -> None:
    """Go's JSON decoder reads null as the zero value; any other value must be of the Go type."""
    if value is None or (isinstance(value, wanted) and not isinstance(value, bool)):
        return
    raise _refused(kind, value, f"ObjectMeta.metadata.{field}", go_type)


def _refused(kind: Kind, value: Any, field: str, go_type: str) -> BadRequest:
    version = kind.api_version.rpartition("/")[2]
    return BadRequest(
        f'{kind.kind} in version "{version}" cannot be handled as a {kind.kind}: json: cannot unmarshal '
        f"{_json_type(value, go_type)} into Go struct field {field} of type {go_type}"
    )


def _json_type(value: Any, go_type: str) -> str:
    """The JSON value as Go's UnmarshalTypeError names it: `number 1.5` for a number with a fraction
    where an integer is wanted."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, float) and go_type == "int64":
        return f"number {value!r}"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
