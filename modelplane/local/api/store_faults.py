"""What can go wrong with the store's file besides a lock (store_lock.py), each a clear error that names
what it concerns and what to do: the file is damaged (cut short, overwritten), one object's record in
it is, or its disk is full.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from modelplane.local.api.errors import ApiError, ServiceUnavailable, object_details
from modelplane.local.api.paths import kind_by_name
from modelplane.local.api.store_lock import StoreLocked, is_lock_error, store_locked

_DAMAGE_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


class StoreDamaged(ApiError):
    """The store's file is not a sound SQLite database: nothing in it can be trusted."""


class RecordDamaged(ApiError):
    """One object's record in the store cannot be read; the others can."""


class StoreFull(ServiceUnavailable):
    """The disk of the store's file is full (SQLITE_FULL): the write was rolled back whole. Kubernetes
    has no 507, so it is a 503, as a locked store is: the same write works once there is space."""


# What a controller can do nothing about but wait, or tell: no traceback says more than their message.
STORE_FAULTS: tuple[type[ApiError], ...] = (StoreLocked, StoreFull, StoreDamaged, RecordDamaged)


def is_damage_error(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in _DAMAGE_CODES


def is_full_error(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def store_full(path: Path) -> StoreFull:
    return StoreFull(f"the store's disk is full ({path}): nothing was written; free some space and try again")


def store_damaged(path: Path, why: object) -> StoreDamaged:
    return StoreDamaged(
        f"the store {path} is damaged ({why}): move it aside or restore it from a backup, "
        "then start again (without it, modelplane starts with an empty store)"
    )


def record_damaged(path: Path, kind: str, namespace: str, name: str) -> RecordDamaged:
    return RecordDamaged(
        f"{described(kind, namespace, name)} cannot be read: its record in the store {path} is damaged; "
        "delete it and apply it again, or restore the store from a backup",
        object_details(kind_by_name(kind), name),
    )


def described(kind: str, namespace: str, name: str) -> str:
    """`InferenceService default/iris`, or `ClusterServingRuntime rt` for a cluster-scoped kind."""
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def store_fault(path: Path, exc: sqlite3.Error) -> ApiError | None:
    """The clear error an SQLite error of the store's file is, or None for one that is not about the file."""
    if is_lock_error(exc):
        return store_locked(path)
    if is_full_error(exc):
        return store_full(path)
    if is_damage_error(exc):
        return store_damaged(path, exc)
    return None
