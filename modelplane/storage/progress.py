"""Reporting how a download is going: a bar on a terminal, a log line now and then elsewhere."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Protocol, TextIO

log = logging.getLogger("modelplane.storage")

MiB = 1024 * 1024


class Progress(Protocol):
    """Told the size of a download, then every chunk written; safe to call from many threads."""

    def start(self, description: str, total: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def finish(self) -> None: ...


class _Counter:
    def __init__(self, min_interval: float) -> None:
        self._lock = threading.Lock()
        self._min_interval = min_interval
        self.description, self.total, self.done = "", 0, 0
        self.started = self._last = 0.0

    def start(self, description: str, total: int) -> None:
        with self._lock:
            self.description, self.total, self.done = description, total, 0
            self.started = self._last = time.monotonic()

    def advance(self, nbytes: int) -> None:
        with self._lock:
            self.done += nbytes
            now = time.monotonic()
            if now - self._last < self._min_interval:
                return
            self._last = now
            self.report(now)

    def report(self, now: float) -> None:
        raise NotImplementedError

    def rate(self, now: float) -> float:
        return self.done / max(now - self.started, 1e-6)


class LogProgress(_Counter):
    """Logs downloads of at least `threshold` bytes: at the start, every `interval` seconds, at the end."""

    def __init__(self, interval: float = 5.0, threshold: int = 64 * MiB) -> None:
        super().__init__(interval)
        self._threshold = threshold

    def start(self, description: str, total: int) -> None:
        super().start(description, total)
        if total >= self._threshold:
            log.info("fetching %s: %.1f MiB", description, total / MiB)

    def report(self, now: float) -> None:
        if self.total >= self._threshold:
            percent = 100 * self.done / self.total
            log.info(
                "fetching %s: %.1f of %.1f MiB (%.0f%%), %.1f MiB/s",
                self.description,
                self.done / MiB,
                self.total / MiB,
                percent,
                self.rate(now) / MiB,
            )

    def finish(self) -> None:
        now = time.monotonic()
        if self.total >= self._threshold:
            log.info("fetched %s: %.1f MiB in %.1fs", self.description, self.done / MiB, now - self.started)


class BarProgress(_Counter):
    """A one-line bar redrawn in place on a terminal."""

    WIDTH = 30

    def __init__(self, stream: TextIO) -> None:
        super().__init__(0.1)
        self._stream = stream

    def report(self, now: float) -> None:
        fraction = self.done / self.total if self.total else 1.0
        filled = int(self.WIDTH * fraction)
        rate = self.rate(now)
        eta = (self.total - self.done) / rate if rate else 0
        self._stream.write(
            f"\r{self.description[:40]} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {fraction:4.0%} "
            f"{self.done / MiB:.1f}/{self.total / MiB:.1f} MiB {rate / MiB:.1f} MiB/s eta {eta:.0f}s "
        )
        self._stream.flush()

    def finish(self) -> None:
        now = time.monotonic()
        self.report(now)
        self._stream.write(f"\n{self.description}: {self.done / MiB:.1f} MiB in {now - self.started:.1f}s\n")
        self._stream.flush()


def progress_for(stream: TextIO = sys.stderr) -> Progress:
    """A bar when `stream` is a terminal, log lines otherwise."""
    return BarProgress(stream) if stream.isatty() else LogProgress()
