"""Server-side apply: `PATCH` with `application/apply-patch+yaml` (`kubectl apply --server-side`).

The body is the manager's whole configuration of the object. It is merged into the stored object field
by field (api/field_sets.py); the fields the manager applied before and leaves out now are removed, unless
another manager owns them too; and the manager comes to own exactly the fields it applied (an `Apply`
entry in managedFields). A field another manager owns, set to another value, is a conflict (409, with a
`FieldManagerConflict` cause each), unless `force=true` takes the field over. An object not there yet is
created from the configuration.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from modelplane.api.kinds import Kind
from modelplane.local.api import field_sets
from modelplane.local.api.errors import BadRequest, Conflict, Invalid
from modelplane.local.api.field_sets import Path
from modelplane.local.api.managed_fields import (
    APPLY,
    Managed,
    ManagerKey,
    Ownership,
    checked_manager,
    read_managed,
    set_managed,
    subresource_scope,
)
from modelplane.local.api.meta import now_rfc3339

APPLY_PATCH = "application/apply-patch+yaml"


@dataclass(frozen=True)
class FieldConflict:
    owner: ManagerKey
    ownership: Ownership
    path: Path


def apply_options(query: dict[str, str]) -> tuple[str, bool]:
    """An apply's `fieldManager` (required, as Kubernetes requires it) and `force`."""
    manager = query.get("fieldManager")
    if not manager:
        raise Invalid(
            'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
            {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [_required_manager()]},
        )
    return checked_manager(manager), query.get("force", "").lower() == "true"


def _required_manager() -> dict[str, str]:
    return {
        "reason": "FieldValueRequired",
        "message": "Required value: is required for apply patch",
        "field": "fieldManager",
    }


def check_not_an_apply(query: dict[str, str]) -> None:
    """`force` is for apply patches only (Kubernetes' 422 otherwise)."""
    if "force" in query:
        raise Invalid(
            'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch',
            {"group": "meta.k8s.io", "kind": "PatchOptions"},
        )


@dataclass(frozen=True)
class ServerSideApply:
    """One apply of `config` by `manager`: `change` is the store's change (the merged object, or
    Conflict), `record` writes the ownership it leaves into the stored object."""

    kind: Kind
    config: dict[str, Any]
    manager: str
    force: bool = False
    subresource: str = ""

    def __post_init__(self) -> None:
        if (self.config.get("metadata") or {}).get("managedFields") is not None:
            raise BadRequest("metadata.managedFields must be nil")

    @property
    def key(self) -> ManagerKey:
        return ManagerKey(self.manager, APPLY, self.subresource)

    def applied_fields(self) -> set[Path]:
        return field_sets.field_set(self.config, self.kind, subresource_scope(self.subresource))

    def change(self, current: dict[str, Any]) -> dict[str, Any]:
        """`current` with the configuration applied; Conflict naming each field another manager owns
        with another value (unless forced)."""
        managed = read_managed(current) or {}
        applied = self.applied_fields()
        conflicts = self._conflicts(current, managed, applied)
        if conflicts and not self.force:
            raise conflict_error(conflicts)
        for found in conflicts:
            found.ownership.fields.discard(found.path)
        result = field_sets.merged(current, self.config, field_sets.schema_of(self.kind))
        before = managed.get(self.key, Ownership("", None)).fields
        others = set().union(*(owned.fields for key, owned in managed.items() if key != self.key))
        owned = others | applied
        # an object the manager owned (an Update's `.`, moved to its apply) stays while fields under it are owned
        dropped = {path for path in before - applied if not _owned_under(path, owned)}
        return field_sets.without(result, dropped, self.kind, owned)

    def created(self) -> dict[str, Any]:
        """The object to create from the configuration, when there is none yet."""
        return copy.deepcopy(self.config)

    def _conflicts(
        self, current: dict[str, Any], managed: Managed, applied: set[Path]
    ) -> list[FieldConflict]:
        conflicts = []
        for path in sorted(field_sets.leaves(applied)):
            value = field_sets.value_at(self.config, path, self.kind)
            if value == field_sets.value_at(current, path, self.kind):
                continue
            for key, owned in managed.items():
                if key != self.key and path in owned.fields:
                    conflicts.append(FieldConflict(key, owned, path))
        return conflicts

    def record(self, current: dict[str, Any] | None, new: dict[str, Any]) -> None:
        """The ownership after the apply: the manager owns what it applied, forced fields are no longer
        their former owners', fields removed are nobody's. Its `time` moves only when the object or
        its fields changed."""
        managed = read_managed(current) if current is not None else None
        managed = managed or {}
        if self.force and current is not None:
            for found in self._conflicts(current, managed, self.applied_fields()):
                found.ownership.fields.discard(found.path)
        status = subresource_scope(self.subresource)
        remaining = field_sets.compared_fields(new, self.kind, status)
        before = field_sets.compared_fields(current, self.kind, status) if current is not None else set()
        for owned in managed.values():
            owned.fields -= before - remaining
        applied = self.applied_fields()
        previous = managed.get(self.key)
        if previous is None or previous.fields != applied or _changed(current, new):
            managed[self.key] = Ownership(self.kind.api_version, now_rfc3339(), applied)
        set_managed(new, managed)


def _owned_under(path: Path, owned: set[Path]) -> bool:
    """Whether `owned` holds `path` or a field under it."""
    return any(other[: len(path)] == path for other in owned)


def _changed(current: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    if current is None:
        return True
    return _without_managed(current) != _without_managed(new)


def _without_managed(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = {
        key: value
        for key, value in obj["metadata"].items()
        if key not in ("managedFields", "resourceVersion")
    }
    return {**obj, "metadata": metadata}


def conflict_error(conflicts: list[FieldConflict]) -> Conflict:
    """Kubernetes' apply conflict: `Apply failed with 1 conflict: conflict with "kubectl-edit" using
    v1 at ...: .spec.x`; with several, each manager once, with its fields under it."""
    causes = [
        {
            "type": "FieldManagerConflict",
            "message": f"conflict with {_manager(found)}",
            "field": field_sets.shown(found.path),
        }
        for found in conflicts
    ]
    if len(conflicts) == 1:
        found = conflicts[0]
        message = (
            f"Apply failed with 1 conflict: conflict with {_manager(found)}: {field_sets.shown(found.path)}"
        )
    else:
        by_manager: dict[str, list[str]] = {}
        for found in conflicts:
            by_manager.setdefault(_manager(found), []).append(field_sets.shown(found.path))
        lines = []
        for manager in sorted(by_manager):
            lines.append(f"conflicts with {manager}:")
            lines += [f"- {path}" for path in by_manager[manager]]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return Conflict(message, {"causes": causes})


def _manager(found: FieldConflict) -> str:
    return found.owner.shown(found.ownership.api_version, found.ownership.time)
