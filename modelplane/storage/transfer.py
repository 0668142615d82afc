"""Downloading a model's objects into a folder: in parallel, in byte ranges, resumed and checked.

Every object is written in place with `pwrite`. A large object is split into ranges of at least
`part_size` bytes, fetched at the same time. A range cut off midway is asked for again from the
first byte not yet written, so a retry never repeats what arrived. When the storage announces a
checksum, the file is hashed while it downloads, following the written prefix of the file.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from .backends.base import Backend, RemoteObject
from .checksum import Hasher
from .disk import write_failed
from .errors import StorageError, TransferError
from .progress import Progress
from .retry import RetryPolicy

MiB = 1024 * 1024


@dataclass(frozen=True)
class TransferOptions:
    """How hard to pull: parallel requests, the smallest range worth its own request, retries."""

    concurrency: int = 8
    part_size: int = 64 * MiB
    retry: RetryPolicy = RetryPolicy()

    @classmethod
    def from_env(cls) -> TransferOptions:
        """`MODELPLANE_STORAGE_CONCURRENCY` and `MODELPLANE_STORAGE_PART_SIZE_MB` override the defaults."""
        concurrency = int(os.environ.get("MODELPLANE_STORAGE_CONCURRENCY") or cls.concurrency)
        part_mb = int(os.environ.get("MODELPLANE_STORAGE_PART_SIZE_MB") or cls.part_size // MiB)
        return cls(concurrency=max(1, concurrency), part_size=max(1, part_mb) * MiB)


class _Cancelled(Exception):
    """Another part failed: stop quietly."""


class _File:
    """One object being written: its descriptor, the ranges still missing, and its hasher."""

    def __init__(self, obj: RemoteObject, path: Path, ranges: list[tuple[int, int | None]]) -> None:
        self.obj = obj
        self.path = path
        self.ranges = ranges
        self._lock = threading.Condition()
        self._fd: int | None = None
        self._pending = len(ranges)
        # For hashing: how far each range has written, contiguously from its start.
        self._written = {start: start for start, _ in ranges}
        whole = len(ranges) == 1
        # A whole read the client library checks needs no second hash; a resumed one would not be
        # checked by it, so such a read starts over instead. So does one the storage cannot resume.
        self.restart_on_retry = not obj.ranges or (whole and obj.checked_by_client)
        # Objects of unknown size are only checked for length.
        hashable = obj.checksum is not None and obj.size is not None
        self.hasher: Hasher | None = (
            obj.checksum.hasher() if hashable and not (whole and obj.checked_by_client) else None
        )
        # One range is hashed inline as it arrives; several are followed by a thread of their own.
        self.hash_inline = whole
        self._hashed = 0
        self._failed = False

    def open(self) -> int:
        with self._lock:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                if self.obj.size:
                    os.ftruncate(self._fd, self.obj.size)
                self._lock.notify_all()
            return self._fd

    def wrote(self, start: int, upto: int) -> None:
        with self._lock:
            self._written[start] = upto
            self._lock.notify_all()

    def part_done(self) -> bool:
        """Count one finished range; True when it was the last one."""
        with self._lock:
            self._pending -= 1
            self._lock.notify_all()
            return self._pending == 0

    def fail(self) -> None:
        with self._lock:
            self._failed = True
            self._lock.notify_all()

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def hash_written_prefix(self) -> None:
        """Feed the hasher the file's bytes in order, as soon as they are on disk (runs on its own thread)."""
        assert self.hasher is not None and self.obj.size is not None
        starts = sorted(self._written)
        with self._lock:
            while self._fd is None and not self._failed:
                self._lock.wait()
            if self._failed:
                return
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for index, start in enumerate(starts):
                end = starts[index + 1] if index + 1 < len(starts) else self.obj.size
                while self._hashed < end:
                    with self._lock:
                        while self._written[start] <= self._hashed and not self._failed:
                            self._lock.wait()
                        if self._failed:
                            return
                        available = self._written[start]
                    while self._hashed < available:
                        data = os.pread(fd, min(4 * MiB, available - self._hashed), self._hashed)
                        self.hasher.update(data)
                        self._hashed += len(data)
        finally:
            os.close(fd)

    def verify(self, backend: Backend) -> None:
        size = self.path.stat().st_size
        if self.obj.size is not None and size != self.obj.size:
            raise TransferError(f"{self.obj.name}: got {size} bytes, the storage announced {self.obj.size}")
        checksum = self.obj.checksum
        if self.hasher is None or checksum is None or not backend.checksum_applies(self.obj):
            return
        if self.hasher.digest() != checksum.expected:
            raise TransferError(
                f"{self.obj.name}: the {checksum.algorithm} checksum does not match the storage's"
            )


def plan_ranges(
    size: int | None, supports_ranges: bool, options: TransferOptions
) -> list[tuple[int, int | None]]:
    """Split an object into ranges: as many as the concurrency allows, none smaller than a part."""
    if not size or not supports_ranges or size < 2 * options.part_size:
        return [(0, size)]
    count = min(options.concurrency, size // options.part_size)
    step = -(-size // count)
    return [(start, min(start + step, size)) for start in range(0, size, step)]


def download(
    backend: Backend,
    objects: list[RemoteObject],
    folder: Path,
    *,
    options: TransferOptions,
    progress: Progress,
) -> None:
    """Download `objects` into `folder`. On failure the files are left half-written for the caller to remove."""
    files = [
        _File(obj, folder.joinpath(*obj.name.split("/")), plan_ranges(obj.size, obj.ranges, options))
        for obj in objects
    ]
    progress.start(backend.location.display, sum(obj.size or 0 for obj in objects))
    cancelled = threading.Event()
    # Hashing threads block on their own file's progress, so they do not take download workers.
    hashers = [
        threading.Thread(target=f.hash_written_prefix, daemon=True, name=f"hash {f.obj.name}")
        for f in files
        if f.hasher is not None and not f.hash_inline
    ]
    for thread in hashers:
        thread.start()
    pool = ThreadPoolExecutor(options.concurrency, thread_name_prefix="fetch")
    try:
        futures = [
            pool.submit(_fetch_range, backend, f, start, end, options, progress, cancelled)
            for f in files
            for start, end in f.ranges
        ]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            if future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        for thread in hashers:
            thread.join()
        for f in files:
            f.verify(backend)
    except BaseException:
        cancelled.set()  # the other ranges stop at their next chunk, even on Ctrl-C
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for f in files:
            f.fail()
            f.close()
    progress.finish()


def _fetch_range(
    backend: Backend,
    file: _File,
    start: int,
    end: int | None,
    options: TransferOptions,
    progress: Progress,
    cancelled: threading.Event,
) -> None:
    if cancelled.is_set():
        return
    fd = file.open()
    inline_hasher = file.hasher if file.hash_inline else None
    position = furthest = start
    failures = 0  # in a row, without getting further than before
    while position != end:
        try:
            for chunk in backend.read(file.obj, position, end):
                if cancelled.is_set():
                    raise _Cancelled
                if end is not None and position + len(chunk) > end:
                    raise StorageError(f"{file.obj.name}: the storage sent more bytes than it was asked for")
                try:
                    _pwrite_all(fd, chunk, position)
                except OSError as exc:  # the local disk's fault: no retry can help
                    raise write_failed(exc, file.path) from None
                if inline_hasher is not None:
                    inline_hasher.update(chunk)
                position += len(chunk)
                file.wrote(start, position)
                progress.advance(len(chunk))
                if position > furthest:
                    furthest, failures = position, 0
            if end is not None and position < end:
                raise TransferError(
                    f"{file.obj.name}: the connection closed after {position - start} bytes of a range"
                )
            break
        except _Cancelled:
            return
        except Exception as exc:
            failures += 1
            if cancelled.is_set():
                return
            if failures >= options.retry.attempts or not backend.is_transient(exc):
                error = backend.explain(exc)
                if error is exc:
                    raise
                raise error from None  # the library's own message may hold a credential
            if file.restart_on_retry and position > start:
                progress.advance(start - position)
                position = start
                inline_hasher = file.hasher = file.obj.checksum.hasher() if file.hasher else None
            cancelled.wait(options.retry.delay(failures))
    if end is None:
        os.ftruncate(fd, position)  # drop what a longer, failed attempt may have left
    if file.part_done():
        file.close()


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written
