"""Keeps the status of every ServingRuntime and ClusterServingRuntime saying whether its image runs on
this machine, and how (`modelplane.control.runtime_status`); a runtime whose image cannot run, or
whose arguments are not all translated, is also logged and gets a Warning event."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from modelplane.api.kinds import CLUSTER_SERVING_RUNTIME, SERVING_RUNTIME
from modelplane.control.runtime_status import ARGUMENTS_TRANSLATED, READY, serving_runtime_status
from modelplane.local.api.errors import NotFound
from modelplane.local.api.events import EventRecorder
from modelplane.local.api.store import Store, ref_of
from modelplane.local.controllers.keyed_work import watch_kind
from modelplane.local.replicas.supervisor import now_rfc3339

logger = logging.getLogger("modelplane.reconciler")


class RuntimeStatusWriter:
    """Runs on the platform's event loop: `start()` begins watching the runtimes, `close()` stops."""

    def __init__(self, store: Store, events: EventRecorder) -> None:
        self.store = store
        self.events = events
        self._watches: list[asyncio.Task] = []

    def start(self) -> None:
        self._watches = [
            asyncio.create_task(watch_kind(self.store, kind.kind, self._on_runtime_event))
            for kind in (SERVING_RUNTIME, CLUSTER_SERVING_RUNTIME)
        ]

    async def close(self) -> None:
        for task in self._watches:
            task.cancel()
        await asyncio.gather(*self._watches, return_exceptions=True)

    def _on_runtime_event(self, type_: str, runtime: dict) -> None:
        if type_ == "DELETED":
            return
        previous = runtime.get("status") or {}
        status = serving_runtime_status(runtime, now=now_rfc3339(), previous=previous)
        if status == previous:
            return
        with contextlib.suppress(NotFound):
            self.store.set_status(ref_of(runtime), status)
        before = {c.get("type"): c for c in previous.get("conditions") or [] if isinstance(c, dict)}
        for condition in status["conditions"]:
            if condition["type"] not in (READY, ARGUMENTS_TRANSLATED) or condition["status"] != "False":
                continue
            old = before.get(condition["type"]) or {}
            if (old.get("status"), old.get("message")) == ("False", condition["message"]):
                continue  # already said
            name = runtime["metadata"]["name"]
            logger.warning("%s %s: %s", runtime["kind"], name, condition["message"])
            self.events.warning(runtime, condition["reason"], condition["message"])
