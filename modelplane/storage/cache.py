"""The model cache: one folder per (URI, endpoint, version), filled once, even by many processes at once.

    <root>/<name>-<source hash>-<version hash>/model/      the model, ready to mount
    <root>/<name>-<source hash>-<version hash>/fetch.json  where it came from
    <root>/.locks/<entry>.lock                             held while an entry is being filled
    <root>/.tmp/<entry>.<random>/                          an entry being filled

An entry is built in `.tmp` and renamed into place, so an entry that exists is complete. Filling
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
        """The cached model folder, or None."""
        entry = self.root / self.entry_name(uri, version, endpoint)
        return entry / MODEL if entry.is_dir() else None

    def latest(self, uri: str, endpoint: str = "") -> Path | None:
        """The most recently filled model folder for `uri` on `endpoint` at any version, or None."""
        candidates = [p for p in self.root.glob(f"*-{_source(uri, endpoint)}-*") if (p / MODEL).is_dir()]
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
        if entry.is_dir():
            return entry / MODEL
        with self._locked(name):
            if entry.is_dir():  # filled by someone else while we waited
                return entry / MODEL
            staging_root = self.root / ".tmp"
            for stale in staging_root.glob(f"{name}.*"):
                shutil.rmtree(stale, ignore_errors=True)  # left by a filler that was killed
            staging_root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=staging_root))
            try:
                build(staging / MODEL)
                record = {**record, "version": version, "fetched_at": time.time()}
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


def _source(uri: str, endpoint: str) -> str:
    # Without an endpoint, the URI's digest alone: the name entries had before endpoints counted.
    return _digest(f"{uri}\n{endpoint}" if endpoint else uri)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]
