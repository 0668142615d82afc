"""When writing a model to the local disk fails: a full disk is said as such, never retried.

A download that fails for want of space would fail the same way on every retry, so it stops at
once; the folder it was being written to is removed by whoever staged it (`cache.py`, `fetcher.py`).
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from .errors import NoSpaceError, StorageError

# ENOSPC: the filesystem is full; EDQUOT: the user's quota is; EFBIG: the file is larger than the
# filesystem or this process (RLIMIT_FSIZE) allows.
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def is_out_of_space(exc: BaseException) -> bool:
    return isinstance(exc, NoSpaceError) or (isinstance(exc, OSError) and exc.errno in _NO_SPACE)


def write_failed(exc: OSError, path: Path) -> StorageError:
    """The error for a failed write of `path`: a `NoSpaceError` when the disk is full."""
    if exc.errno in _NO_SPACE:
        return NoSpaceError(f"writing {path.name}: {exc.strerror}")
    return StorageError(f"cannot write {path.name}: {exc.strerror or exc}")


def out_of_space(what: str, folder: Path, exc: BaseException) -> NoSpaceError:
    """What a caller reports once the fetch of `what` into `folder` failed for want of space."""
    free = free_bytes(folder)
    where = f"the disk of {folder}" + (f" has {_size(free)} free" if free is not None else "")
    cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return NoSpaceError(f"no space left to fetch {what}: {cause}; {where}; nothing of it was kept")


def free_bytes(folder: Path) -> int | None:
    """The bytes free on the filesystem of `folder` (or of its nearest existing parent)."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


def _size(count: float) -> str:
    if count < 1024:
        return f"{count:.0f} bytes"
    for unit in ("KiB", "MiB", "GiB"):
        count /= 1024
        if count < 1024 or unit == "GiB":
            return f"{count:.1f} {unit}"
    raise AssertionError("unreachable")
