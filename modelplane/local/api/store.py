"""The resource store: every resource of the embedded control plane, in one SQLite file.

Resources are keyed by kind, namespace ("" for cluster-scoped kinds) and name, and carry the
metadata Kubernetes manages: `uid`, `creationTimestamp`, `generation` (bumped only when `spec`
changes) and `resourceVersion` (one counter for the whole store, bumped by every write, so a
write that names a stale one is refused with Conflict). `status` is a subresource: spec writes
keep the stored status and status writes keep everything else.

Each write is one transaction. Each write also appends an event (ADDED, MODIFIED or DELETED with
the object, and for MODIFIED the object as it was before) to a bounded history in the same
transaction; `watch` reads that history, so a watcher can resume from any resourceVersion still in
it, in-process or over HTTP.

Every create and spec update drops the fields the kind's schema does not declare, as the Kubernetes
API server prunes them, and passes through `admit(resource, old, existing)` (defaulting and
validation; `existing` are the other resources of the same kind in the same namespace, as they
stand in the transaction), which returns the resource to store or raises `Invalid`.

A record that cannot be read costs its object only: lists and watches leave it out (with one warning),
a read of it raises `RecordDamaged`, and its record stays on disk until it is deleted. A file that is not
a sound database is refused when the store opens (`StoreDamaged`).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from modelplane.api.defaults import applied_over
from modelplane.api.kinds import Kind, kind_of
from modelplane.api.schema import drop_unknown_fields
from modelplane.local.api import meta as api_meta
from modelplane.local.api.errors import (
    Expired,
    Invalid,
    already_exists,
    conflict,
    invalid_details,
    not_found,
    precondition_failed,
)
from modelplane.local.api.managed_fields import CONTROL_PLANE_MANAGER, UpdateOwnership, kept_managed_fields
from modelplane.local.api.paths import kind_by_name
from modelplane.local.api.store_faults import (
    RecordDamaged,
    record_damaged,
    store_damaged,
    store_fault,
)
from modelplane.local.api.store_lock import BUSY_TIMEOUT
from modelplane.local.platform_metrics import STORE_OPERATIONS, STORE_SECONDS

logger = logging.getLogger("modelplane.store")

Resource = dict[str, Any]
Admit = Callable[[Resource, Resource | None, list[Resource]], Resource]
# Writes down, in the object a write stores, which manager owns which of its fields (`managedFields`),
# given the object as it was (None for a new one): api/managed_fields.py.
RecordOwners = Callable[[Resource | None, Resource], None]

STORE_FILE = "store.db"
_KEYED_BODY = "kind, namespace, name, body"  # the columns `Store._readable` reads

# The objects a delete looks through for dependents: those that name an owner (an index keeps a
# delete in a store of none as quick as before).
_NAMES_AN_OWNER = """instr(body, '"ownerReferences"') > 0"""
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (kind, namespace, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    resource_version INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    kind TEXT NOT NULL,
    namespace TEXT NOT NULL,
    body BLOB NOT NULL,
    previous BLOB
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('resource_version', 0), ('compacted', 0);
CREATE INDEX IF NOT EXISTS naming_an_owner ON resources(namespace) WHERE {_NAMES_AN_OWNER};
"""


def _measured(method: Callable) -> Callable:
    """Counts and times a store operation (store_operations_total, ..._duration_seconds)."""
    operation = method.__name__
    ok, error = STORE_OPERATIONS.labels(operation, "ok"), STORE_OPERATIONS.labels(operation, "error")
    seconds = STORE_SECONDS.labels(operation)

    @functools.wraps(method)
    def measured(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            result = method(*args, **kwargs)
        except sqlite3.DatabaseError as exc:
            error.inc()
            fault = store_fault(args[0].path, exc)
            if fault is not None:
                raise fault from None
            raise
        except Exception:
            error.inc()
            raise
        finally:
            seconds.observe(time.perf_counter() - started)
        ok.inc()
        return result

    return measured


def admit_as_is(resource: Resource, old: Resource | None, existing: list[Resource]) -> Resource:
    """The admission hook that changes and refuses nothing."""
    return resource


class Ref(NamedTuple):
    """Where a resource is kept; `namespace` is "" for a cluster-scoped kind."""

    kind: str
    namespace: str
    name: str


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED or DELETED
    object: Resource
    resource_version: int
    previous: Resource | None = None  # a MODIFIED event's object as it was before the change

    def to_json(self) -> dict[str, Any]:
        """Kubernetes' watch event: `{"type": ..., "object": ...}`."""
        return {"type": self.type, "object": self.object}

    def seen_through(self, selected: Callable[[Resource], bool]) -> WatchEvent | None:
        """The event as a watcher of the `selected` objects only sees it (Kubernetes' watch cache,
        `convertToWatchEvent`): an object that comes to be selected is ADDED, one that stops being
        selected is DELETED as it was before, one that stays selected is MODIFIED; None if the object
        is selected neither before nor after."""
        selected_after = self.type != "DELETED" and selected(self.object)
        selected_before = self._selected_before(selected, selected_after)
        if selected_after:
            return self if selected_before else self._as("ADDED", self.object)
        if not selected_before:
            return None
        if self.type == "DELETED":
            return self
        last_state = copy.deepcopy(self.previous)
        last_state["metadata"]["resourceVersion"] = str(self.resource_version)
        return self._as("DELETED", last_state)

    def _selected_before(self, selected: Callable[[Resource], bool], selected_after: bool) -> bool:
        if self.type == "ADDED":
            return False
        if self.type == "DELETED":
            return selected(self.object)  # the object as it was when deleted
        if self.previous is None:  # recorded before the store kept previous states: taken as unchanged
            return selected_after
        return selected(self.previous)

    def _as(self, type_: str, obj: Resource) -> WatchEvent:
        return WatchEvent(type_, obj, self.resource_version)


@dataclass(frozen=True)
class Applied:
    """The outcome of one document of an apply: `created`, `configured` or `unchanged`."""

    action: str
    object: Resource


def store_path(home: str | Path) -> Path:
    """The store file inside a modelplane home folder."""
    return Path(home) / STORE_FILE


def ref_of(resource: Resource) -> Ref:
    """The key of a resource, from its `kind` and `metadata`."""
    kind = _served_kind(resource)
    metadata = resource.get("metadata") or {}
    namespace = str(metadata.get("namespace") or "") if kind.namespaced else ""
    return Ref(kind.kind, namespace, str(metadata.get("name") or ""))


def resource_version_of(resource: Resource) -> int:
    return int(resource["metadata"]["resourceVersion"])


class Store:
    """The resources of one control plane. Safe to share between threads and with asyncio code."""

    def __init__(self, path: str | Path, admit: Admit = admit_as_is, *, history: int = 10_000):
        self._admit = admit
        self._history = history
        self._lock = threading.RLock()
        self._watchers: set[_Wakeup] = set()
        self._watchers_lock = threading.Lock()  # writers in other threads wake them
        self.path = Path(path)
        self._damage_reported: set[Ref] = set()
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        try:
            self._prepare()
        except BaseException:
            self._db.close()
            raise

    def _prepare(self) -> None:
        """Sets the connection up, creates the tables of a new store, and refuses a file that is not a
        sound database (cut short, say) before anything reads it, rather than when a read happens to
        reach the damaged part."""
        try:
            self._db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._add_previous_states_to_the_history()
            problems = [row[0] for row in self._db.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as exc:
            fault = store_fault(self.path, exc)
            if fault is None:
                raise
            raise fault from None
        if problems != ["ok"]:
            raise store_damaged(self.path, problems[0])

    def _add_previous_states_to_the_history(self) -> None:
        """Gives the history of a store made before it kept previous states their column (left empty
        in the events already there)."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(events)")}
        if "previous" not in columns:
            self._db.execute("ALTER TABLE events ADD COLUMN previous BLOB")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- reads ----

    @_measured
    def get(self, ref: Ref) -> Resource:
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM resources WHERE kind=? AND namespace=? AND name=?", ref
            ).fetchone()
        if row is None:
            raise not_found(kind_by_name(ref.kind), ref.name)
        return self._decoded(ref, row[0])

    @_measured
    def list(self, kind: str, namespace: str | None = None) -> tuple[list[Resource], str]:
        """The resources of a kind (in one namespace, or all with `namespace=None`), sorted by
        namespace and name, with the store's resourceVersion at that moment."""
        with self._lock:
            if namespace is None:
                rows = self._db.execute(
                    f"SELECT {_KEYED_BODY} FROM resources WHERE kind=? ORDER BY namespace, name", (kind,)
                ).fetchall()
            else:
                rows = self._db.execute(
                    f"SELECT {_KEYED_BODY} FROM resources WHERE kind=? AND namespace=? ORDER BY name",
                    (kind, namespace),
                ).fetchall()
            version = self._counter("resource_version")
        return self._readable(rows), str(version)

    def resource_version(self) -> str:
        with self._lock:
            return str(self._counter("resource_version"))

    # ---- writes ----

    @_measured
    def create(
        self, resource: Resource, *, dry_run: bool = False, record_owners: RecordOwners | None = None
    ) -> Resource:
        """Stores a new resource; AlreadyExists if its key is taken. A `status` is dropped.
        With `dry_run` (as with every write below), the result is computed and not stored, and
        answered with the resourceVersion the store holds for the object (none for a new one).
        `record_owners` (as for the updates below) writes the fields' managers into what is stored."""
        with self._writing(dry_run=dry_run) as events:
            created = self._create(resource, record_owners)
            events.append(WatchEvent("ADDED", created, resource_version_of(created)))
        return _answered(created, None, dry_run=dry_run)

    @_measured
    def update(
        self,
        ref: Ref,
        change: Callable[[Resource], Resource],
        *,
        dry_run: bool = False,
        record_owners: RecordOwners | None = None,
    ) -> Resource:
        """Replaces the spec and metadata of a resource with `change(current)`.

        The stored status is kept. If the new object names a `resourceVersion`, it must be the
        stored one (Conflict otherwise). A change that changes nothing writes nothing. The stored
        `managedFields` are kept unless the new object names others (api/managed_fields.py).
        """
        return self._modify(ref, change, status_only=False, dry_run=dry_run, record_owners=record_owners)

    @_measured
    def update_status(
        self,
        ref: Ref,
        change: Callable[[Resource], Resource],
        *,
        dry_run: bool = False,
        record_owners: RecordOwners | None = None,
    ) -> Resource:
        """Replaces the status of a resource with that of `change(current)`; spec, metadata and
        generation stay as they are. No admission: status is the control plane's to write."""
        return self._modify(ref, change, status_only=True, dry_run=dry_run, record_owners=record_owners)

    def replace(self, resource: Resource) -> Resource:
        return self.update(ref_of(resource), lambda _current: resource)

    def replace_status(self, resource: Resource) -> Resource:
        return self.update_status(ref_of(resource), lambda _current: resource)

    def set_status(self, ref: Ref, status: dict[str, Any]) -> Resource:
        """Writes `status` over the stored one, whatever resourceVersion it is at: a controller's write,
        which managedFields record as the control plane's `Update` of the status subresource."""
        owners = UpdateOwnership(kind_by_name(ref.kind), CONTROL_PLANE_MANAGER, "status")
        return self.update_status(
            ref, lambda current: {**current, "status": status}, record_owners=owners.record
        )

    @_measured
    def delete(
        self,
        ref: Ref,
        *,
        dry_run: bool = False,
        preconditions: dict[str, str] | None = None,
        orphan_dependents: bool = False,
    ) -> Resource:
        """Removes a resource and returns it as it was, with the resourceVersion of its deletion.
        `preconditions` (`uid`, `resourceVersion`) must match the stored object (Conflict otherwise).
        Its dependents go with it, in the same transaction, unless `orphan_dependents`."""
        with self._writing(dry_run=dry_run) as events:
            deleted, stored_version = self._delete(ref, preconditions, events)
            if not orphan_dependents:
                self._delete_dependents(deleted, events)
        return _answered(deleted, stored_version, dry_run=dry_run)

    @_measured
    def apply(self, resources: Iterable[Resource], *, dry_run: bool = False) -> list[Applied]:
        """Creates or updates every resource in one transaction: all are stored, or none.

        Each is admitted and checked before anything becomes visible; the first refusal
        (Invalid, Conflict, ...) rolls back the whole batch and is raised. With `dry_run`, the
        outcome is computed the same way and then rolled back.
        """
        results: list[Applied] = []
        with self._writing(dry_run=dry_run) as events:
            for resource in resources:
                ref = ref_of(resource)
                current = self._find(ref) if ref.name else None
                if current is None:
                    created = self._create(resource)
                    events.append(WatchEvent("ADDED", created, resource_version_of(created)))
                    results.append(Applied("created", _answered(created, None, dry_run=dry_run)))
                    continue
                updated = self._update(
                    current, lambda stored, r=resource: applied_over(r, stored), status_only=False
                )
                if updated is None:
                    results.append(Applied("unchanged", current))
                else:
                    events.append(WatchEvent("MODIFIED", updated, resource_version_of(updated), current))
                    stored_version = current["metadata"]["resourceVersion"]
                    results.append(Applied("configured", _answered(updated, stored_version, dry_run=dry_run)))
        return results

    # ---- watch ----

    @_measured
    def events_after(
        self, resource_version: int, kind: str | None = None, namespace: str | None = None, limit: int = 500
    ) -> tuple[list[WatchEvent], int]:
        """Events newer than `resource_version` (of one kind / namespace if given), and the
        resourceVersion they reach: resume from it to see what comes next. Expired if the
        history no longer goes back that far."""
        query = "SELECT resource_version, type, body, previous FROM events WHERE resource_version > ?"
        params: list[Any] = [resource_version]
        if kind is not None:
            query += " AND kind = ?"
            params.append(kind)
        if namespace is not None:
            query += " AND namespace = ?"
            params.append(namespace)
        query += " ORDER BY resource_version LIMIT ?"
        params.append(limit)
        with self._lock:
            compacted = self._counter("compacted")
            if resource_version < compacted:
                raise Expired(f"too old resource version: {resource_version} ({compacted})")
            rows = self._db.execute(query, params).fetchall()
            reached = self._counter("resource_version") if len(rows) < limit else rows[-1][0]
        events = [
            WatchEvent(type_, resource, rv, _object_in(previous) if previous else None)
            for rv, type_, body, previous in rows
            if (resource := self._recorded_event(rv, body)) is not None
        ]
        return events, max(reached, resource_version)

    async def watch(
        self, kind: str | None = None, namespace: str | None = None, resource_version: int | None = None
    ) -> AsyncIterator[WatchEvent]:
        """Every change after `resource_version`, as it happens, until the caller stops iterating.

        Without a resourceVersion, as in Kubernetes, it starts with an ADDED event for each
        resource that exists now. Raises Expired when asked to resume from too far back.
        """
        wakeup = _Wakeup(asyncio.get_running_loop())
        with self._watchers_lock:
            self._watchers.add(wakeup)
        try:
            if resource_version is None:
                existing, resource_version = self._snapshot(kind, namespace)
                for resource in existing:
                    yield WatchEvent("ADDED", resource, resource_version_of(resource))
            while True:
                wakeup.clear()
                events, resource_version = self.events_after(resource_version, kind, namespace)
                for event in events:
                    yield event
                if not events:
                    await wakeup.wait()
        finally:
            with self._watchers_lock:
                self._watchers.discard(wakeup)

    # ---- internals ----

    def _create(self, resource: Resource, record_owners: RecordOwners | None = None) -> Resource:
        kind = _served_kind(resource)
        new = drop_unknown_fields(copy.deepcopy(resource), kind)
        new.pop("status", None)
        metadata = api_meta.metadata_of(new)
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = api_meta.generated_name(str(metadata["generateName"]))
        what = f'{kind.group_kind} "{metadata.get("name") or ""}" is invalid'
        details = invalid_details(kind, str(metadata.get("name") or ""))
        api_meta.check_name(metadata.get("name"), what, details)
        if kind.namespaced:
            api_meta.check_namespace(metadata.get("namespace"), what, details)
        else:
            metadata.pop("namespace", None)
        api_meta.check_labels_and_annotations(metadata, what, details)
        api_meta.check_owner_references(metadata, what, details)
        ref = ref_of(new)
        if self._find(ref) is not None:
            raise already_exists(kind, ref.name)
        server_owned: dict[str, Any] = {
            "uid": api_meta.new_uid(),
            "creationTimestamp": api_meta.now_rfc3339(),
        }
        if kind.has_generation:
            server_owned["generation"] = 1
        for key in api_meta.SERVER_OWNED:
            metadata.pop(key, None)
        metadata.update(server_owned)
        admitted = self._admitted(new, None)
        admitted.pop("status", None)
        _restore_identity(admitted, new, server_owned)
        if record_owners is not None:
            record_owners(None, admitted)
        admitted["metadata"]["resourceVersion"] = str(self._next_resource_version())
        self._put(ref, admitted)
        return admitted

    def _delete(
        self, ref: Ref, preconditions: dict[str, str] | None, events: list[WatchEvent]
    ) -> tuple[Resource, str | None]:
        """Removes one resource: it as it was, with the resourceVersion of its deletion, and the one it
        had stored."""
        try:
            deleted = self._get_for_write(ref)
        except RecordDamaged:
            deleted = _stand_in(ref)  # deleting it is how its owner gets rid of it
        for field, wanted in (preconditions or {}).items():
            if wanted is not None and str(deleted["metadata"].get(field)) != str(wanted):
                raise precondition_failed(
                    kind_by_name(ref.kind), ref.name, field, wanted, deleted["metadata"].get(field)
                )
        self._db.execute("DELETE FROM resources WHERE kind=? AND namespace=? AND name=?", ref)
        stored_version = deleted["metadata"].get("resourceVersion")
        deleted["metadata"]["resourceVersion"] = str(self._next_resource_version())
        events.append(WatchEvent("DELETED", deleted, resource_version_of(deleted)))
        return deleted, stored_version

    def _delete_dependents(self, owner: Resource, events: list[WatchEvent]) -> None:
        """What Kubernetes' garbage collector deletes after `owner` (a background cascade): the objects
        whose `ownerReferences` name it by uid and no other owner that is still stored, then theirs.
        A namespaced owner's dependents are of its namespace; a cluster-scoped one's of any."""
        uid = owner["metadata"].get("uid")
        if not uid:
            return
        for dependent in self._naming_an_owner(uid, owner["metadata"].get("namespace")):
            ref = ref_of(dependent)
            # a dependent of two of the objects deleted may be gone already
            if self._left_without_owner(dependent, uid) and self._find(ref) is not None:
                self._delete_dependents(self._delete(ref, None, events)[0], events)

    def _left_without_owner(self, dependent: Resource, uid: str) -> bool:
        """Whether `uid` is among the owners of `dependent`, and no other of them is stored."""
        owners = {ref.get("uid") for ref in _owner_references(dependent)}
        return uid in owners and not any(self._stored_uid(other) for other in owners - {uid})

    def _stored_uid(self, uid: object) -> bool:
        if not isinstance(uid, str):
            return False
        rows = self._db.execute(f"SELECT {_KEYED_BODY} FROM resources WHERE instr(body, ?) > 0", (uid,))
        return any(found["metadata"].get("uid") == uid for found in self._readable(rows.fetchall()))

    def _naming_an_owner(self, uid: str, namespace: str | None) -> list[Resource]:
        """The stored objects that name an owner and hold `uid` somewhere (of `namespace`, if given)."""
        query = f"SELECT {_KEYED_BODY} FROM resources WHERE {_NAMES_AN_OWNER} AND instr(body, ?) > 0"
        params = [uid]
        if namespace:
            query += " AND namespace = ?"
            params.append(namespace)
        return self._readable(self._db.execute(query, params).fetchall())

    def _modify(
        self,
        ref: Ref,
        change: Callable[[Resource], Resource],
        *,
        status_only: bool,
        dry_run: bool,
        record_owners: RecordOwners | None,
    ) -> Resource:
        with self._writing(dry_run=dry_run) as events:
            current = self._get_for_write(ref)
            updated = self._update(current, change, status_only=status_only, record_owners=record_owners)
            if updated is None:
                return current
            events.append(WatchEvent("MODIFIED", updated, resource_version_of(updated), current))
        return _answered(updated, current["metadata"]["resourceVersion"], dry_run=dry_run)

    def _update(
        self,
        current: Resource,
        change: Callable[[Resource], Resource],
        *,
        status_only: bool,
        record_owners: RecordOwners | None = None,
    ) -> Resource | None:
        """The updated resource, written; None if the change changes nothing."""
        ref = ref_of(current)
        wanted = change(copy.deepcopy(current))
        if not isinstance(wanted, dict):
            raise Invalid(f'{ref.kind} "{ref.name}" is invalid: the object must be a mapping')
        wanted_version = api_meta.metadata_of(wanted).get("resourceVersion")
        if wanted_version not in (None, "") and str(wanted_version) != current["metadata"]["resourceVersion"]:
            raise conflict(kind_by_name(ref.kind), ref.name)
        _check_same_identity(wanted, current, ref)

        if status_only:
            new = copy.deepcopy(current)
            _set_status(new, wanted.get("status"))
        else:
            kind = kind_by_name(ref.kind)
            new = drop_unknown_fields(copy.deepcopy(wanted), kind)
            what, details = f'{kind.group_kind} "{ref.name}" is invalid', invalid_details(kind, ref.name)
            api_meta.check_labels_and_annotations(api_meta.metadata_of(new), what, details)
            api_meta.check_owner_references(api_meta.metadata_of(new), what, details)
            _restore_identity(new, current)
            new = self._admitted(new, current)
            _restore_identity(new, current)
            _set_status(new, current.get("status"))
            kept_managed_fields(wanted, new, current)
            if _canonical(new.get("spec")) != _canonical(current.get("spec")):
                new["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        if record_owners is not None:
            record_owners(current, new)

        if _canonical(new) == _canonical(current):
            return None
        new["metadata"]["resourceVersion"] = str(self._next_resource_version())
        self._put(ref, new)
        return new

    def _admitted(self, resource: Resource, old: Resource | None) -> Resource:
        ref = ref_of(resource)
        existing = self._readable(
            self._db.execute(
                f"SELECT {_KEYED_BODY} FROM resources WHERE kind=? AND namespace=? AND name!=? ORDER BY name",
                ref,
            )
        )
        admitted = self._admit(
            copy.deepcopy(resource), copy.deepcopy(old) if old is not None else None, existing
        )
        if not isinstance(admitted, dict):
            raise TypeError("the admission hook must return the resource to store")
        return admitted

    def _find(self, ref: Ref) -> Resource | None:
        row = self._db.execute(
            "SELECT body FROM resources WHERE kind=? AND namespace=? AND name=?", ref
        ).fetchone()
        return self._decoded(ref, row[0]) if row else None

    def _get_for_write(self, ref: Ref) -> Resource:
        found = self._find(ref)
        if found is None:
            raise not_found(kind_by_name(ref.kind), ref.name)
        return found

    def _put(self, ref: Ref, resource: Resource) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO resources (kind, namespace, name, body) VALUES (?, ?, ?, ?)",
            (*ref, orjson.dumps(resource)),
        )

    def _counter(self, name: str) -> int:
        return self._db.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()[0]

    def _next_resource_version(self) -> int:
        return self._db.execute(
            "UPDATE counters SET value = value + 1 WHERE name='resource_version' RETURNING value"
        ).fetchone()[0]

    @contextmanager
    def _writing(self, *, dry_run: bool = False) -> Iterator[list[WatchEvent]]:
        """One write transaction; the events collected in it are recorded with it and
        announced to watchers once it commits. A dry run always rolls back."""
        events: list[WatchEvent] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield events
                self._record(events)
                self._db.execute("ROLLBACK" if dry_run else "COMMIT")
            except BaseException:
                # SQLite has already rolled back a transaction whose COMMIT failed on a full disk.
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        if events and not dry_run:
            with self._watchers_lock:
                watchers = list(self._watchers)
            for wakeup in watchers:
                wakeup.set()

    def _record(self, events: list[WatchEvent]) -> None:
        if not events:
            return
        self._db.executemany(
            "INSERT INTO events (resource_version, type, kind, namespace, body, previous) VALUES (?, ?, ?, ?, ?, ?)",
            [_history_row(event) for event in events],
        )
        # Keep the last `history` events; a watcher that falls further behind gets Expired.
        horizon = events[-1].resource_version - self._history
        if horizon > self._counter("compacted"):
            self._db.execute("DELETE FROM events WHERE resource_version <= ?", (horizon,))
            self._db.execute("UPDATE counters SET value=? WHERE name='compacted'", (horizon,))

    def _snapshot(self, kind: str | None, namespace: str | None) -> tuple[list[Resource], int]:
        """The resources there are now (of one kind / namespace if given) and the resourceVersion."""
        query, params = f"SELECT {_KEYED_BODY} FROM resources WHERE 1=1", []
        if kind is not None:
            query += " AND kind = ?"
            params.append(kind)
        if namespace is not None:
            query += " AND namespace = ?"
            params.append(namespace)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY kind, namespace, name", params).fetchall()
            version = self._counter("resource_version")
        return self._readable(rows), version

    def _decoded(self, ref: Ref, body: bytes) -> Resource:
        """The object the record of `ref` holds; RecordDamaged if it holds none."""
        resource = _object_in(body)
        if resource is None:
            raise record_damaged(self.path, *ref)
        return resource

    def _readable(self, rows: Iterable[tuple[str, str, str, bytes]]) -> list[Resource]:
        """The objects of rows of (kind, namespace, name, body), but for the damaged ones: those are
        left out, and left as they are on disk, for their owner to delete or restore."""
        resources = []
        for kind, namespace, name, body in rows:
            try:
                resources.append(self._decoded(Ref(kind, namespace, name), body))
            except RecordDamaged as damaged:
                self._report_damage(Ref(kind, namespace, name), damaged)
        return resources

    def _recorded_event(self, resource_version: int, body: bytes) -> Resource | None:
        """The object of a watch event in the history; None, with a warning, if its record is damaged."""
        resource = _object_in(body)
        if resource is None:
            logger.warning(
                "skipping the watch event of resourceVersion %s: its record in the store %s is damaged",
                resource_version,
                self.path,
            )
        return resource

    def _report_damage(self, ref: Ref, damaged: RecordDamaged) -> None:
        """Warns once about each damaged object, however often it is read."""
        if ref not in self._damage_reported:
            self._damage_reported.add(ref)
            logger.warning("%s; until then it is skipped, and its record is kept as it is", damaged)


class _Wakeup:
    """Tells one watcher, on its own event loop, that new events may be there."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._event = asyncio.Event()

    def set(self) -> None:
        with contextlib.suppress(RuntimeError):  # the watcher's loop has closed
            self._loop.call_soon_threadsafe(self._event.set)

    def clear(self) -> None:
        self._event.clear()

    async def wait(self) -> None:
        await self._event.wait()


def _served_kind(resource: Resource) -> Kind:
    kind = kind_of(resource)
    if kind is None:
        raise Invalid(f'no kind "{resource.get("kind")}" is served in version "{resource.get("apiVersion")}"')
    return kind


def _object_in(body: bytes) -> Resource | None:
    """The object a record holds; None if it holds none (cut short, overwritten)."""
    try:
        resource = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return resource if isinstance(resource, dict) and isinstance(resource.get("metadata"), dict) else None


def _owner_references(resource: Resource) -> list[dict[str, Any]]:
    references = resource["metadata"].get("ownerReferences")
    return [ref for ref in references if isinstance(ref, dict)] if isinstance(references, list) else []


def _answered(resource: Resource, stored_version: str | None, *, dry_run: bool) -> Resource:
    """What a write answers: the written object; for a dry run, as Kubernetes answers it, with the
    resourceVersion the store holds for it (none for an object not stored), not the one its
    rolled-back write took."""
    if not dry_run:
        return resource
    answer = copy.deepcopy(resource)
    if stored_version is None:
        answer["metadata"].pop("resourceVersion", None)
    else:
        answer["metadata"]["resourceVersion"] = stored_version
    return answer


def _history_row(event: WatchEvent) -> tuple[Any, ...]:
    kind, namespace, _ = ref_of(event.object)
    previous = None if event.previous is None else orjson.dumps(event.previous)
    return (event.resource_version, event.type, kind, namespace, orjson.dumps(event.object), previous)


def _stand_in(ref: Ref) -> Resource:
    """What is known of an object whose record cannot be read: its key."""
    metadata = {"name": ref.name, "namespace": ref.namespace} if ref.namespace else {"name": ref.name}
    return {"apiVersion": kind_by_name(ref.kind).api_version, "kind": ref.kind, "metadata": metadata}


def _restore_identity(resource: Resource, source: Resource, extra: dict[str, Any] | None = None) -> None:
    """Puts back what no client or admission hook may change: kind, name, namespace and the
    server-owned metadata, taken from `source` (or `extra`)."""
    resource["apiVersion"] = source["apiVersion"]
    resource["kind"] = source["kind"]
    metadata = api_meta.metadata_of(resource)
    source_metadata = source["metadata"]
    for key in ("name", "namespace", *api_meta.SERVER_OWNED):
        if key in source_metadata:
            metadata[key] = source_metadata[key]
        else:
            metadata.pop(key, None)
    metadata.update(extra or {})


def _check_same_identity(wanted: Resource, current: Resource, ref: Ref) -> None:
    metadata = api_meta.metadata_of(wanted)
    keys = ("name", "namespace") if ref.namespace else ("name",)
    for key in keys:
        value = metadata.get(key)
        if value not in (None, "") and value != current["metadata"].get(key):
            kind = kind_by_name(ref.kind)
            raise api_meta.invalid_field(
                f'{kind.group_kind} "{ref.name}" is invalid',
                f"metadata.{key}",
                f'Invalid value: "{value}": field is immutable',
                invalid_details(kind, ref.name),
            )


def _set_status(resource: Resource, status: Any) -> None:
    if status is None:
        resource.pop("status", None)
    else:
        resource["status"] = status


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
