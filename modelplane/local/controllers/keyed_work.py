"""What the platform's controllers share: watching a kind in the store, and one worker per key that
coalesces the requests to look at that key again which come in while it works.

Both try again when what they do fails. A failure of the store's file (locked, its disk full, damaged)
is one WARNING line, at most every `FAULT_WARNING_EVERY` seconds for the same key and fault, rather than a
traceback at each try: its message says all there is to say."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable

from modelplane.local.api.errors import ApiError, Expired
from modelplane.local.api.store import Store
from modelplane.local.api.store_faults import STORE_FAULTS
from modelplane.local.platform_metrics import (
    QUEUE_ADDS,
    QUEUE_DEPTH,
    RECONCILE_ERRORS,
    RECONCILE_SECONDS,
    RECONCILES,
)

logger = logging.getLogger("modelplane.reconciler")

FAULT_WARNING_EVERY = 10.0  # seconds


def resource_key(resource: dict) -> tuple[str, str]:
    """(namespace, name) of a stored resource: the key its controller works on."""
    metadata = resource.get("metadata") or {}
    return metadata.get("namespace") or "default", metadata["name"]


async def watch_kind(store: Store, kind: str, handle: Callable[[str, dict], None]) -> None:
    """Calls `handle(event type, resource)` for each resource of `kind` there is, then for each change,
    until cancelled; starts again from a fresh list when the store's history is too short, as a
    Kubernetes client does."""
    resource_version = None
    faults = _FaultWarnings()
    while True:
        try:
            async for event in store.watch(kind, resource_version=resource_version):
                resource_version = event.resource_version
                handle(event.type, event.object)
        except Expired:
            resource_version = None
        except asyncio.CancelledError:
            raise
        except STORE_FAULTS as fault:
            faults.warn(kind, fault, f"watching {kind} failed; watching again")
            await asyncio.sleep(1.0)
        except Exception:
            logger.exception("watching %s failed; watching again", kind)
            await asyncio.sleep(1.0)


class _FaultWarnings:
    """Warns of each fault of the store at most every FAULT_WARNING_EVERY seconds for the same key."""

    def __init__(self) -> None:
        self._warned_at: dict[Hashable, dict[type, float]] = {}

    def warn(self, key: Hashable, fault: ApiError, what_failed: str) -> None:
        warned_at = self._warned_at.setdefault(key, {})
        now = time.monotonic()
        if now - warned_at.get(type(fault), -FAULT_WARNING_EVERY) >= FAULT_WARNING_EVERY:
            warned_at[type(fault)] = now
            logger.warning("%s: %s", what_failed, fault)

    def forget(self, key: Hashable) -> None:
        self._warned_at.pop(key, None)


class KeyedWorkers:
    """`kick(key)` makes `work(key)` run soon, once however often it is asked, never twice at once for
    the same key. `work` returns True when the key needs no worker any more; one that raises is run
    again 2 s later. `controller` names the metrics of its reconciles and its queue."""

    def __init__(self, work: Callable[[Hashable], Awaitable[bool]], what: str, controller: str) -> None:
        self._work = work
        self._what = what
        self._reconciles = {result: RECONCILES.labels(controller, result) for result in ("success", "error")}
        self._errors = RECONCILE_ERRORS.labels(controller)
        self._seconds = RECONCILE_SECONDS.labels(controller)
        self._depth = QUEUE_DEPTH.labels(controller)
        self._adds = QUEUE_ADDS.labels(controller)
        self._kicks: dict[Hashable, asyncio.Event] = {}
        self._workers: dict[Hashable, asyncio.Task] = {}
        self._faults = _FaultWarnings()
        self._closing = False

    def kick(self, key: Hashable) -> None:
        if self._closing:
            return
        event = self._kicks.get(key)
        if event is None:
            event = self._kicks[key] = asyncio.Event()
            self._workers[key] = asyncio.create_task(self._run(key, event), name=f"{self._what} {key}")
        if not event.is_set():
            self._adds.inc()
            self._depth.inc()
        event.set()

    async def close(self) -> None:
        self._closing = True
        self._depth.dec(sum(event.is_set() for event in self._kicks.values()))
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    async def _run(self, key: Hashable, event: asyncio.Event) -> None:
        while True:
            await event.wait()
            event.clear()
            self._depth.dec()
            started = time.perf_counter()
            try:
                done = await self._work(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._report_failure(key, exc)
                self._reconciles["error"].inc()
                self._errors.inc()
                asyncio.get_running_loop().call_later(2.0, self.kick, key)
                done = False
            else:
                self._reconciles["success"].inc()
            finally:
                self._seconds.observe(time.perf_counter() - started)
            if done and not event.is_set():
                del self._kicks[key], self._workers[key]
                self._faults.forget(key)
                return

    def _report_failure(self, key: Hashable, exc: Exception) -> None:
        if isinstance(exc, STORE_FAULTS):
            self._faults.warn(key, exc, f"{self._what} {key} failed; trying again")
        else:
            logger.error("%s %s failed; trying again", self._what, key, exc_info=exc)
