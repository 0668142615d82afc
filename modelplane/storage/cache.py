"""The model cache: one folder per (URI, endpoint, version), filled once, even by many processes at once.

    <root>/<name>-<source hash>-<version hash>/model/      the model, ready to mount
    <root>/<name>-<source hash>-<version hash>/fetch.json  where it came from
    <root>/.locks/<entry>.lock                             held while an entry is being filled
    <root>/.tmp/<entry>.<random>/                          an entry being filled

An entry is built in `.tmp` and renamed into place, so an entry that exists is complete. Its record
lists the model's files with their sizes and modification times: an entry whose files were changed or
removed since (a server that wrote into its model folder, a hand that deleted a file) is not used, but
filled again. Filling
takes an exclusive `flock` on the entry's lock file: a second process asking for the same model
waits, then finds the entry. A process killed midway leaves only a `.tmp` folder, which the next
filler of that entry removes.

The source is the URI and, where the URI does not name the server (an S3, GCS or Azure endpoint, a
Hugging Face mirror), the endpoint the storage was reached at: the same bucket and path on another
server is another model.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import paths

log = logging.getLogger("modelplane.storage")

MODEL = "model"
RECORD = "fetch.json"


class ModelCache:
    """Fetched models on this machine, keyed by URI, endpoint and version."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root else paths.cache_dir()

    def entry_name(self, uri: str, version: str, endpoint: str = "") -> str:
        """A readable, unique folder name for a URI on an endpoint ("": the URI's own) at a version."""
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", uri.split("?")[0].split("://")[-1]).strip("-.")[-40:]
        return f"{slug or 'model'}-{_source(uri, endpoint)}-{_digest(version)}"

    def lookup(self, uri: str, version: str, endpoint: str = "") -> Path | None:
        """The cached model folder, or None (also when the entry was changed since it was filled)."""
        entry = self.root / self.entry_name(uri, version, endpoint)
        return entry / MODEL if _intact(entry) else None

    def latest(
        self, uri: str, endpoint: str = "", patterns: dict[str, list[str]] | None = None
    ) -> Path | None:
        """The most recently filled model folder for `uri` on `endpoint` at any version, unchanged since,
        or None. Only a copy fetched with the same allow and ignore `patterns` (None: none) counts: one
        fetched with others holds other files."""
        candidates = [
            p
            for p in self.root.glob(f"*-{_source(uri, endpoint)}-*")
            if _intact(p) and _record(p).get("patterns") == patterns
        ]
        if not candidates:
            return None
        return max(candidates, key=lambda p: p.stat().st_mtime) / MODEL

    def fill(
        self,
        uri: str,
        version: str,
        build: Callable[[Path], None],
        record: dict[str, Any],
        endpoint: str = "",
    ) -> Path:
        """The cached model folder for `uri` on `endpoint` at `version`, made by `build(folder)` if it is
        not there yet.

        `build` writes the model into the folder it is given. If it raises, nothing is cached.
        """
        name = self.entry_name(uri, version, endpoint)
        entry = self.root / name
        if _intact(entry):
            return entry / MODEL
        with self._locked(name):
            if _intact(entry):  # filled by someone else while we waited
                return entry / MODEL
            staging_root = self.root / ".tmp"
            for stale in staging_root.glob(f"{name}.*"):
                shutil.rmtree(stale, ignore_errors=True)  # left by a filler that was killed
            staging_root.mkdir(parents=True, exist_ok=True)
            if entry.is_dir():  # changed since it was filled
                why = _changed(entry)
                log.warning(
                    "the cached copy of %s changed since it was fetched (%s): fetching it again", uri, why
                )
                changed = tempfile.mkdtemp(prefix=f"{name}.changed-", dir=staging_root)
                os.rename(entry, changed)  # out of every lookup's way at once, then gone
                shutil.rmtree(changed, ignore_errors=True)
            staging = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=staging_root))
            try:
                build(staging / MODEL)
                record = {
                    **record,
                    "version": version,
                    "fetched_at": time.time(),
                    "files": _files(staging / MODEL),
                }
                (staging / RECORD).write_text(json.dumps(record, indent=2) + "\n")
                os.rename(staging, entry)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        return entry / MODEL

    @contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / f"{name}.lock", "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("another process is fetching %s; waiting for it", name)
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _files(model: Path) -> dict[str, list[int]]:
    """Each regular file of the model folder (relative path) with its size and modification time."""
    files = {}
    for folder, _, names in os.walk(model):
        for name in names:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                files[os.path.relpath(path, model)] = [info.st_size, info.st_mtime_ns]
    return files


def _intact(entry: Path) -> bool:
    return (entry / MODEL).is_dir() and _changed(entry) is None


def _record(entry: Path) -> dict[str, Any]:
    try:
        record = json.loads((entry / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _changed(entry: Path) -> str | None:
    """How the entry's model differs from what was filled, or None. Files added since are allowed (a
    server may write beside its model: Python's `__pycache__`, say); an entry whose record lists no
    files, made before records did, is taken as it is."""
    for relative, (size, mtime_ns) in (_record(entry).get("files") or {}).items():
        try:
            info = os.lstat(entry / MODEL / relative)
        except OSError:
            return f"its file {relative} is gone"
        if (info.st_size, info.st_mtime_ns) != (size, mtime_ns):
            return f"its file {relative} was changed"
    return None


def _source(uri: str, endpoint: str) -> str:
    # Without an endpoint, the URI's digest alone: the name entries had before endpoints counted.
    return _digest(f"{uri}\n{endpoint}" if endpoint else uri)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]
