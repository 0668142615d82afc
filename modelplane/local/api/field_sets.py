"""Sets of fields, as Kubernetes' structured-merge-diff keeps them for server-side apply.

A path names one field of an object: a tuple of elements in the `FieldsV1` encoding that
`metadata.managedFields` holds, `f:<name>` for a field of an object, `k:{"name":"x"}` for the item of a
list keyed by its fields (`x-kubernetes-list-type: map`), `v:<value>` for the item of a set
(`x-kubernetes-list-type: set`). Other lists are atomic, as in a CRD that says nothing: the list is one
field. An object's field set is what `field_set` walks out of it by its kind's schema; `merged` and
`without` are apply's merge and removal by the same schema.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

from modelplane.api.kinds import Kind
from modelplane.api.schema import openapi_schema

Path = tuple[str, ...]
MISSING = object()  # what `value_at` answers for a path the object does not have
MEMBER = "."  # FieldsV1's mark on a field that is itself owned, not only fields under it

_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
# Kubernetes' ObjectMeta, as its schema tells structured-merge-diff (the CRDs say only `type: object`).
_OBJECT_META = {
    "type": "object",
    "properties": {
        "generateName": {"type": "string"},
        "labels": _STRINGS,
        "annotations": _STRINGS,
        "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
        "ownerReferences": {
            "type": "array",
            "items": {"type": "object"},
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["uid"],
        },
    },
}
# Kubernetes' own kinds' lists, as upstream declares them (`+listType=map`).
_CORE_LISTS = {"ServiceAccount": {"secrets": ["name"]}}
# What no manager owns: identity and the server's own metadata (Kubernetes' stripped fields).
_SERVER_OWNED: frozenset[Path] = frozenset(
    {("f:apiVersion",), ("f:kind",)}
    | {
        ("f:metadata", f"f:{field}")
        for field in (
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "deletionTimestamp",
            "selfLink",
            "managedFields",
        )
    }
)
STATUS = "f:status"


@cache
def schema_of(kind: Kind) -> dict[str, Any]:
    """The kind's schema, with Kubernetes' ObjectMeta and list types where the CRD leaves them out."""
    schema = copy.deepcopy(openapi_schema(kind))
    schema["properties"]["metadata"] = _OBJECT_META
    for field, keys in _CORE_LISTS.get(kind.kind, {}).items():
        listed = schema["properties"][field]
        listed["x-kubernetes-list-type"], listed["x-kubernetes-list-map-keys"] = "map", keys
    return schema


def field_set(obj: dict[str, Any], kind: Kind, status: bool = False) -> set[Path]:
    """The fields of `obj` a manager can own: its spec side (metadata, spec, data...), or with `status`
    its status alone. As structured-merge-diff's ToFieldSet: an object or list that holds fields is not
    a field of its own unless it is a map's entry."""
    paths = set(_fields(obj, schema_of(kind), (), False))
    return {path for path in paths if (path[0] == STATUS) == status and not _server_owned(path)}


def compared_fields(obj: dict[str, Any], kind: Kind, status: bool = False) -> set[Path]:
    """`field_set` and every object and list holding those fields: what structured-merge-diff compares
    an update's object with the stored one by, so that an object the update adds (a new `labels`, a new
    `spec`) is a field it comes to own (FieldsV1's `.` on it), and one it removes is nobody's."""
    paths = set(_fields(obj, schema_of(kind), (), True)) - {("f:metadata",)}  # Kubernetes strips it
    return {path for path in paths if (path[0] == STATUS) == status and not _server_owned(path)}


def _server_owned(path: Path) -> bool:
    return path[:1] in _SERVER_OWNED or path[:2] in _SERVER_OWNED


def _fields(value: Any, schema: dict[str, Any], path: Path, containers: bool) -> Iterator[Path]:
    if isinstance(value, dict) and schema.get("x-kubernetes-map-type") != "atomic":
        declared = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            child = (*path, f"f:{key}")
            item_schema = declared.get(key, extra if isinstance(extra, dict) else {})
            # A declared field that holds other fields is not owned itself; a map's entry is.
            if containers or key not in declared or item is None or item == {}:
                yield child
            yield from _fields(item, item_schema, child, containers)
    elif isinstance(value, list) and schema.get("x-kubernetes-list-type") in ("map", "set"):
        items = schema.get("items") or {}
        for item in value:
            child = (*path, item_element(item, schema))
            yield child
            if schema["x-kubernetes-list-type"] == "map":
                yield from _fields(item, items, child, containers)
    elif path:
        yield path


def item_element(item: Any, schema: dict[str, Any]) -> str:
    """The path element of a list's item: `k:{...}` by the list's keys (a key left out takes its
    default), `v:...` for a set's value."""
    if schema["x-kubernetes-list-type"] == "set":
        return "v:" + _json(item)
    declared = (schema.get("items") or {}).get("properties") or {}
    key = {}
    for name in schema.get("x-kubernetes-list-map-keys") or []:
        if isinstance(item, dict) and name in item:
            key[name] = item[name]
        elif "default" in declared.get(name, {}):
            key[name] = declared[name]["default"]
    return "k:" + _json(key)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def leaves(paths: set[Path]) -> set[Path]:
    """The paths of `paths` with no other path of them under them."""
    return paths - {path[:end] for path in paths for end in range(1, len(path))}


def value_at(obj: Any, path: Path, kind: Kind) -> Any:
    """The value at `path` of `obj`, or MISSING."""
    value, schema = obj, schema_of(kind)
    for element in path:
        value, schema = _step(value, schema, element)
        if value is MISSING:
            return MISSING
    return value


def _step(value: Any, schema: dict[str, Any], element: str) -> tuple[Any, dict[str, Any]]:
    if element.startswith("f:"):
        if not isinstance(value, dict) or element[2:] not in value:
            return MISSING, {}
        declared = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        return value[element[2:]], declared.get(element[2:], extra if isinstance(extra, dict) else {})
    if isinstance(value, list) and schema.get("x-kubernetes-list-type") in ("map", "set"):
        for item in value:
            if item_element(item, schema) == element:
                return item, schema.get("items") or {}
    return MISSING, {}


def merged(live: Any, config: Any, schema: dict[str, Any]) -> Any:
    """`config` merged into `live` as server-side apply merges: objects field by field, keyed lists
    item by item, sets value by value; anything else (atomic lists, scalars) is the config's."""
    if (
        isinstance(live, dict)
        and isinstance(config, dict)
        and schema.get("x-kubernetes-map-type") != "atomic"
    ):
        declared = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        result = copy.deepcopy(live)
        for key, item in config.items():
            if item is None:
                result.pop(key, None)
            else:
                item_schema = declared.get(key, extra if isinstance(extra, dict) else {})
                result[key] = merged(live.get(key), item, item_schema)
        return result
    if (
        isinstance(live, list)
        and isinstance(config, list)
        and schema.get("x-kubernetes-list-type") in ("map", "set")
    ):
        return _merged_items(live, config, schema)
    return copy.deepcopy(config)


def _merged_items(live: list[Any], config: list[Any], schema: dict[str, Any]) -> list[Any]:
    """A keyed list or set merged as structured-merge-diff merges one: the applied items in the
    configuration's order, each live item it does not name kept where it stood among them."""
    items = schema.get("items") or {}
    is_map = schema["x-kubernetes-list-type"] == "map"
    lhs = [item_element(item, schema) for item in live]
    rhs = [item_element(item, schema) for item in config]
    live_items = {element: item for element, item in reversed(list(zip(lhs, live, strict=True)))}
    config_items = {element: item for element, item in reversed(list(zip(rhs, config, strict=True)))}

    def merged_item(element: str) -> Any:
        found = live_items.get(element, MISSING)
        if found is MISSING or not is_map:
            return copy.deepcopy(config_items[element])
        return merged(found, config_items[element], items)

    shared = [
        element for element in rhs if element in live_items
    ]  # live items the config names, in its order
    next_shared = shared.pop(0) if shared else None
    done: set[str] = set()
    result: list[Any] = []
    left = right = 0
    while left < len(lhs) or right < len(rhs):
        if left < len(lhs) and right < len(rhs):
            if lhs[left] == rhs[right]:
                done.add(lhs[left])
                result.append(merged_item(lhs[left]))
                left, right = left + 1, right + 1
                next_shared = shared.pop(0) if shared else None
                continue
            if lhs[left] in config_items and next_shared is not None and next_shared != lhs[left]:
                left += 1  # named by the config, but later in its order: placed when the config reaches it
                continue
        if left < len(lhs):
            if lhs[left] not in config_items:
                result.append(copy.deepcopy(live[left]))
                left += 1
                continue
            if lhs[left] in done:
                left += 1
        if right < len(rhs):
            done.add(rhs[right])
            result.append(merged_item(rhs[right]))
            if next_shared is not None and next_shared == rhs[right]:
                next_shared = shared.pop(0) if shared else None
            right += 1
    return result


def without(obj: dict[str, Any], paths: Iterable[Path], kind: Kind, kept: set[Path]) -> dict[str, Any]:
    """`obj` without the fields at `paths`; an object left empty goes too unless `kept` names it."""
    result = copy.deepcopy(obj)
    for path in sorted(paths, key=len):  # an item removed takes its fields with it
        _remove(result, schema_of(kind), path, kept, ())
    return result


def _remove(value: Any, schema: dict[str, Any], path: Path, kept: set[Path], at: Path) -> None:
    element, rest = path[0], path[1:]
    if isinstance(value, dict) and element.startswith("f:") and element[2:] in value:
        key = element[2:]
        if not rest:
            del value[key]
            return
        child, child_schema = _step(value, schema, element)
        _remove(child, child_schema, rest, kept, (*at, element))
        if child == {} and (*at, element) not in kept:
            del value[key]
    elif isinstance(value, list):
        for position, item in enumerate(value):
            if (
                schema.get("x-kubernetes-list-type") in ("map", "set")
                and item_element(item, schema) == element
            ):
                if rest:
                    _remove(item, schema.get("items") or {}, rest, kept, (*at, element))
                else:
                    del value[position]
                return


def encoded(paths: set[Path]) -> dict[str, Any]:
    """`paths` as `fieldsV1`: a tree of path elements, `.` marking a field owned with fields under it."""
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for element in path:
            node = node.setdefault(element, {})
    for path in paths:
        node = tree
        for element in path:
            node = node[element]
        if node:
            node[MEMBER] = {}
    return _sorted(tree)


def _sorted(tree: dict[str, Any]) -> dict[str, Any]:
    return {key: _sorted(tree[key]) for key in sorted(tree)}


def decoded(tree: Any, path: Path = ()) -> set[Path]:
    """The paths a `fieldsV1` tree holds; ValueError if it is not one."""
    if not isinstance(tree, dict):
        raise ValueError("fieldsV1 must be an object of objects")
    if not tree:
        return {path} if path else set()
    paths = {path} if MEMBER in tree and path else set()
    for element, child in tree.items():
        if element == MEMBER:
            continue
        if not element.startswith(("f:", "k:", "v:", "i:")):
            raise ValueError(f"fieldsV1: {element!r} is not a path element")
        paths |= decoded(child, (*path, element))
    return paths


def shown(path: Path) -> str:
    """A path as Kubernetes prints it in a conflict: `.spec.predictor.minReplicas`,
    `.spec.containers[name="kserve-container"].image`, `.metadata.finalizers[="a"]`."""
    words = []
    for element in path:
        kind, text = element[:2], element[2:]
        if kind == "f:":
            words.append(f".{text}")
        elif kind == "k:":
            key = json.loads(text)
            words.append("[" + ",".join(f"{name}={_json(key[name])}" for name in sorted(key)) + "]")
        elif kind == "v:":
            words.append(f"[={text}]")
        else:
            words.append(f"[{text}]")
    return "".join(words)
