"""Deadlines for replicas' response headers, checked by one timer for all requests.

A timer per request costs a few microseconds to arm and cancel, on every request; a shared check
every `resolution` seconds costs a dictionary insert and delete. Timeouts fire up to `resolution`
late, which is fine for limits counted in seconds.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from modelplane.protocol.running_loop import RunningLoop


class Expiring(Protocol):
    def deadline_passed(self, timeout: float) -> None: ...


class Deadlines:
    def __init__(self, resolution: float = 0.1) -> None:
        self.resolution = resolution
        self._due: dict[Expiring, tuple[float, float]] = {}
        self._tick: asyncio.TimerHandle | None = None
        self._loop = RunningLoop()  # the clock is read twice a request

    def now(self) -> float:
        """The clock the deadlines run on (the event loop's)."""
        return self._loop.get().time()

    def watch(self, item: Expiring, timeout: float, since: float | None = None) -> None:
        """Calls `item.deadline_passed(timeout)` once `timeout` seconds have passed since `since` (a
        time of `now()`; by default, now)."""
        loop = self._loop.get()
        self._due[item] = ((loop.time() if since is None else since) + timeout, timeout)
        if self._tick is None:
            self._tick = loop.call_later(self.resolution, self._check)

    def unwatch(self, item: Expiring) -> None:
        self._due.pop(item, None)

    def close(self) -> None:
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        self._due.clear()

    def _check(self) -> None:
        loop = self._loop.get()
        now = loop.time()
        expired = [(item, timeout) for item, (due, timeout) in self._due.items() if due <= now]
        for item, timeout in expired:
            del self._due[item]
            item.deadline_passed(timeout)
        self._tick = loop.call_later(self.resolution, self._check) if self._due else None
