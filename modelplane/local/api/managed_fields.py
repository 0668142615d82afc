"""`metadata.managedFields`: which manager owns which fields of an object, as Kubernetes keeps it.

Each entry is one manager's fields for one operation (`Apply` for server-side apply, `Update` for every
other write) and subresource (`status`): its `manager`, `operation`, `apiVersion`, `time`, and its field
set as `fieldsType: FieldsV1` (api/field_sets.py). A write that changes fields makes its manager (the
request's `fieldManager`, else the first word of its User-Agent, as Kubernetes names it) an owner of
them (`UpdateOwnership`); server-side apply is api/server_side_apply.py.

A write whose object has no `managedFields` (or an empty list) keeps the stored ones, so that a client
that does not know them cannot drop them; `[{}]` clears them, as Kubernetes allows (`kept_managed_fields`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from modelplane.api.kinds import Kind
from modelplane.local.api import field_sets
from modelplane.local.api.errors import Invalid
from modelplane.local.api.field_sets import Path
from modelplane.local.api.meta import now_rfc3339

APPLY, UPDATE = "Apply", "Update"
# The manager the control plane's controllers write as: the name modelplane's operator writes as on
# Kubernetes (kube/operator/cluster.py), where KServe's controller records its own.
CONTROL_PLANE_MANAGER = "modelplane-operator"
FIELDS_V1 = "FieldsV1"
MAX_MANAGER_LENGTH = 128
CLEARED = [{}]  # what a client writes to clear managedFields


class ManagerKey(NamedTuple):
    manager: str
    operation: str
    subresource: str = ""

    def shown(self, api_version: str, time: str | None) -> str:
        """The manager as Kubernetes names it in a conflict: `"kubectl"`, `"kubectl-edit" using
        serving.kserve.io/v1beta1 at 2025-01-01T00:00:00Z`."""
        words = f'"{self.manager}"'
        if self.subresource:
            words += f' with subresource "{self.subresource}"'
        if self.operation == UPDATE:
            words += f" using {api_version}" + (f" at {time}" if time else "")
        return words


@dataclass
class Ownership:
    """One manager's entry: its fields, the apiVersion it wrote them in and when it last changed them."""

    api_version: str
    time: str | None
    fields: set[Path] = field(default_factory=set)


Managed = dict[ManagerKey, Ownership]


def read_managed(obj: dict[str, Any]) -> Managed | None:
    """The entries of an object's managedFields; None if it has none or they cannot be read (as
    Kubernetes, which then keeps the stored ones: a write cannot store entries it could not read back)."""
    entries = (obj.get("metadata") or {}).get("managedFields")
    if not isinstance(entries, list) or not entries:
        return None
    managed: Managed = {}
    for entry in entries:
        if entry == {}:
            continue
        try:
            key, ownership = _read_entry(entry)
        except ValueError:
            return None
        managed[key] = ownership
    return managed


def _read_entry(entry: Any) -> tuple[ManagerKey, Ownership]:
    """One entry, ValueError unless it is a ManagedFieldsEntry: strings where Kubernetes' type has
    strings, an operation of `Apply` or `Update`, `fieldsType: FieldsV1`, a `fieldsV1` tree."""
    if not isinstance(entry, dict):
        raise ValueError("a managedFields entry must be an object")
    texts = {name: entry.get(name) for name in ("manager", "operation", "subresource", "apiVersion", "time")}
    if any(value is not None and not isinstance(value, str) for value in texts.values()):
        raise ValueError(
            "a managedFields entry's manager, operation, apiVersion, time and subresource are strings"
        )
    if texts["operation"] not in (APPLY, UPDATE) or entry.get("fieldsType", FIELDS_V1) != FIELDS_V1:
        raise ValueError("a managedFields entry is an Apply or Update of FieldsV1")
    key = ManagerKey(texts["manager"] or "", texts["operation"], texts["subresource"] or "")
    fields = field_sets.decoded(entry.get("fieldsV1") or {})
    return key, Ownership(texts["apiVersion"] or "", texts["time"], fields)


def managed_fields(managed: Managed) -> list[dict[str, Any]]:
    """The entries as Kubernetes writes them: managers owning nothing left out, `Apply` before
    `Update`, then oldest first."""
    entries = []
    for key, owned in managed.items():
        if not owned.fields:
            continue
        entry = {"manager": key.manager, "operation": key.operation, "apiVersion": owned.api_version}
        if owned.time:
            entry["time"] = owned.time
        entry["fieldsType"] = FIELDS_V1
        entry["fieldsV1"] = field_sets.encoded(owned.fields)
        if key.subresource:
            entry["subresource"] = key.subresource
        entries.append(entry)
    return sorted(
        entries, key=lambda e: (e["operation"], e.get("time") or "", e["manager"], e.get("subresource", ""))
    )


def set_managed(obj: dict[str, Any], managed: Managed) -> None:
    entries = managed_fields(managed)
    if entries:
        obj["metadata"]["managedFields"] = entries
    else:
        obj["metadata"].pop("managedFields", None)


def kept_managed_fields(wanted: dict[str, Any], new: dict[str, Any], current: dict[str, Any]) -> None:
    """Gives `new` the managedFields a write of `wanted` leaves: the stored ones if it names none,
    none for `[{}]`, else its own."""
    given = (wanted.get("metadata") or {}).get("managedFields")
    stored = current["metadata"].get("managedFields")
    if given == CLEARED:
        new["metadata"].pop("managedFields", None)
    elif given in (None, []) or read_managed(wanted) is None:
        if stored is None:
            new["metadata"].pop("managedFields", None)
        else:
            new["metadata"]["managedFields"] = stored
    else:
        new["metadata"]["managedFields"] = given


def manager_named(query: dict[str, str], headers: dict[str, str]) -> str:
    """The write's manager: its `fieldManager`, else its User-Agent's first word (`kubectl`,
    `python-requests`), as Kubernetes defaults it; Invalid if too long."""
    manager = query.get("fieldManager")
    if manager is None:
        return headers.get("user-agent", "").split("/")[0][:MAX_MANAGER_LENGTH]
    return checked_manager(manager)


def checked_manager(manager: str) -> str:
    """A `fieldManager` a client named; Invalid if too long or not printable (any write's, apply's too)."""
    if len(manager) > MAX_MANAGER_LENGTH or not manager.isprintable():
        raise Invalid(
            f'fieldManager: Invalid value: "{manager}": must be between 0 and {MAX_MANAGER_LENGTH} '
            "characters and consist of printable characters"
        )
    return manager


def subresource_scope(subresource: str) -> bool:
    """Whether a write's fields are the status (a write of the status subresource)."""
    return subresource == "status"


@dataclass(frozen=True)
class UpdateOwnership:
    """Records an Update: its manager comes to own the fields the write added or changed, and every
    manager loses the fields it removed."""

    kind: Kind
    manager: str
    subresource: str = ""

    def record(self, current: dict[str, Any] | None, new: dict[str, Any]) -> None:
        status = subresource_scope(self.subresource)
        managed = read_managed(new) or {}
        after = field_sets.compared_fields(new, self.kind, status)
        before = field_sets.compared_fields(current, self.kind, status) if current is not None else set()
        changed = after - before
        for path in field_sets.leaves(after) & before:
            if field_sets.value_at(current, path, self.kind) != field_sets.value_at(new, path, self.kind):
                changed.add(path)
        removed = before - after
        for owned in managed.values():
            owned.fields -= removed
        if changed:
            key = ManagerKey(self.manager, UPDATE, self.subresource)
            owned = managed.setdefault(key, Ownership(self.kind.api_version, None))
            owned.fields |= changed
            owned.api_version, owned.time = self.kind.api_version, now_rfc3339()
        set_managed(new, managed)
