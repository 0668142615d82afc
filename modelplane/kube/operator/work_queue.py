"""Keys to reconcile, as controller-runtime's work queue has them: a key asked for while it is being
reconciled runs once more afterwards (however often it was asked), no key runs twice at once, and a
reconcile that fails is tried again after a back-off that doubles up to a limit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

logger = logging.getLogger("modelplane.operator")

BACKOFF_FIRST, BACKOFF_MAX = 0.5, 60.0


class WorkQueue:
    """`reconcile(key)` returns the seconds after which to look again (None: only when asked)."""

    def __init__(self, reconcile: Callable[[Hashable], Awaitable[float | None]], workers: int = 4) -> None:
        self._reconcile = reconcile
        self._queue: asyncio.Queue[Hashable] = asyncio.Queue()
        self._queued: set[Hashable] = set()
        self._running: set[Hashable] = set()
        self._again: set[Hashable] = set()
        self._failures: dict[Hashable, int] = {}
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}
        self._tasks = [asyncio.create_task(self._work()) for _ in range(workers)]

    def add(self, key: Hashable) -> None:
        if key in self._running:
            self._again.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: Hashable, seconds: float) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None and timer.when() <= asyncio.get_running_loop().time() + seconds:
            self._timers[key] = timer  # an earlier look is already planned
            return
        if timer is not None:
            timer.cancel()
        self._timers[key] = asyncio.get_running_loop().call_later(seconds, self._fire, key)

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._running.add(key)
            try:
                after = await self._reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of one key is retried; the others go on
                failures = self._failures.get(key, 0) + 1
                self._failures[key] = failures
                delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1))
                logger.warning(
                    "reconciling %s failed (again in %.1fs): %s", key, delay, exc, exc_info=failures == 1
                )
                self.add_after(key, delay)
            else:
                self._failures.pop(key, None)
                if after is not None:
                    self.add_after(key, after)
            finally:
                self._running.discard(key)
                if key in self._again:
                    self._again.discard(key)
                    self.add(key)

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
