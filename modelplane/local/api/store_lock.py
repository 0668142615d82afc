"""The store's file locked by another process (an `sqlite3` shell, a backup tool): a clear error.

SQLite waits `BUSY_TIMEOUT` for the lock, then gives up with "database is locked"; the store says
instead which file is locked and, where Linux tells (`/proc/locks`), by which process.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from modelplane.local.api.errors import ServiceUnavailable

BUSY_TIMEOUT = 5.0  # seconds a store operation waits for a lock another process holds


class StoreLocked(ServiceUnavailable):
    """Another process holds a lock on the store's file: the operation waited, then gave up."""


def is_lock_error(exc: sqlite3.Error) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and getattr(exc, "sqlite_errorcode", None) in (
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
    )


def store_locked(path: Path) -> StoreLocked:
    holders = lock_holders(path)
    who = f"process {', '.join(map(str, holders))}" if holders else "another process"
    return StoreLocked(
        f"the store {path} is locked by {who} (waited {BUSY_TIMEOUT:g}s); "
        "stop what holds it open and try again"
    )


def lock_holders(path: Path) -> list[int]:
    """The other processes holding a lock on the store's files, as far as `/proc/locks` says."""
    inodes = set()
    for name in (path, path.with_name(path.name + "-shm"), path.with_name(path.name + "-wal")):
        try:
            stat = os.stat(name)
        except OSError:
            continue
        inodes.add((os.major(stat.st_dev), os.minor(stat.st_dev), stat.st_ino))
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    holders = set()
    for line in lines:
        fields = line.split()
        if "->" in fields:  # a process waiting for the lock, not holding it
            continue
        try:
            pid = int(fields[4])
            major, minor, inode = fields[5].split(":")
            key = (int(major, 16), int(minor, 16), int(inode))
        except (IndexError, ValueError):
            continue
        if key in inodes and pid != os.getpid():
            holders.add(pid)
    return sorted(holders)
