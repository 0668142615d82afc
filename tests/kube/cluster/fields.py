"""Server-side apply's bookkeeping: which field manager owns which fields of an object.

A field is a path of map keys to a value that is not a map (lists are atomic, as in a CRD without
list-type markers) or to an empty map. `metadata.managedFields` records them per manager in
Kubernetes' `FieldsV1` form (`{"f:spec": {"f:replicas": {}}}`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

Path = tuple[str, ...]
# Fields the API server manages itself: never owned, never applied.
_SERVER_FIELDS = {
    ("apiVersion",),
    ("kind",),
    ("metadata", "name"),
    ("metadata", "namespace"),
    ("metadata", "uid"),
    ("metadata", "resourceVersion"),
    ("metadata", "generation"),
    ("metadata", "creationTimestamp"),
    ("metadata", "deletionTimestamp"),
    ("metadata", "managedFields"),
}


class ApplyConflict(Exception):
    def __init__(self, conflicts: list[tuple[Path, str]]) -> None:
        self.conflicts = conflicts
        described = "; ".join(f'.{".".join(path)} (owned by "{owner}")' for path, owner in conflicts)
        super().__init__(f"Apply failed with {len(conflicts)} conflict(s): {described}")


def leaf_paths(obj: dict, prefix: Path = ()) -> Iterator[Path]:
    for key, value in obj.items():
        path = (*prefix, key)
        if path in _SERVER_FIELDS or path[:1] == ("status",) and not prefix:
            continue
        if isinstance(value, dict) and value:
            yield from leaf_paths(value, path)
        else:
            yield path


def value_at(obj: dict, path: Path) -> object:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return _MISSING
        obj = obj[key]
    return obj


_MISSING = object()


def managers_of(obj: dict) -> dict[str, set[Path]]:
    owned: dict[str, set[Path]] = {}
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        owned.setdefault(entry["manager"], set()).update(_from_fields_v1(entry.get("fieldsV1") or {}))
    return owned


def with_managers(obj: dict, owned: dict[str, set[Path]], operations: dict[str, str]) -> None:
    obj["metadata"]["managedFields"] = [
        {
            "manager": manager,
            "operation": operations.get(manager, "Update"),
            "apiVersion": obj.get("apiVersion"),
            "fieldsType": "FieldsV1",
            "fieldsV1": _to_fields_v1(paths),
        }
        for manager, paths in sorted(owned.items())
        if paths
    ]


def operations_of(obj: dict) -> dict[str, str]:
    return {
        e["manager"]: e.get("operation", "Update")
        for e in (obj.get("metadata") or {}).get("managedFields") or []
    }


def apply(existing: dict, config: dict, manager: str, force: bool) -> dict:
    """`existing` with `config` applied by `manager` (ApplyConflict where another manager owns a field
    `config` sets to another value, unless `force`)."""
    owned = managers_of(existing)
    wanted = set(leaf_paths(config))
    conflicts = []
    for other, paths in owned.items():
        if other == manager:
            continue
        for path in paths & wanted:
            if value_at(existing, path) != value_at(config, path):
                conflicts.append((path, other))
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    for path, other in conflicts:
        owned[other].discard(path)
    result = copy.deepcopy(existing)
    others = set().union(*(paths for m, paths in owned.items() if m != manager)) if owned else set()
    for path in owned.get(manager, set()) - wanted - others:
        _remove(result, path)
    _merge(result, {k: v for k, v in config.items() if k != "status"})
    owned[manager] = wanted
    operations = operations_of(existing)
    operations[manager] = "Apply"
    with_managers(result, owned, operations)
    return result


def record_update(old: dict | None, new: dict, manager: str) -> None:
    """A create, update or merge patch by `manager`: it owns the fields it changed; fields that are gone
    are nobody's."""
    owned = managers_of(old) if old else {}
    present = set(leaf_paths(new))
    changed = {p for p in present if old is None or value_at(old, p) != value_at(new, p)}
    for paths in owned.values():
        paths &= present
        paths -= changed
    owned.setdefault(manager, set()).update(changed)
    operations = operations_of(old) if old else {}
    operations.setdefault(manager, "Update")
    with_managers(new, owned, operations)


def _merge(target: dict, patch: dict) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict) and value:
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _remove(obj: dict, path: Path) -> None:
    parents = []
    for key in path[:-1]:
        if not isinstance(obj.get(key), dict):
            return
        parents.append((obj, key))
        obj = obj[key]
    obj.pop(path[-1], None)
    for parent, key in reversed(parents):
        if parent[key] == {}:
            del parent[key]


def _to_fields_v1(paths: set[Path]) -> dict:
    tree: dict = {}
    for path in sorted(paths):
        node = tree
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return tree


def _from_fields_v1(tree: dict, prefix: Path = ()) -> Iterator[Path]:
    for key, child in tree.items():
        if not key.startswith("f:"):
            continue
        path = (*prefix, key[2:])
        if child:
            yield from _from_fields_v1(child, path)
        else:
            yield path
