"""Kubernetes Events: what the platform tells about a resource, next to its status.

`modelplane get events` lists them and `modelplane describe` shows those of a resource. As Kubernetes'
event recorder does, the same event again (same object, type, reason and message) counts up on one
Event instead of adding another, and an event of a cluster-scoped object (a ClusterServingRuntime)
goes to the `default` namespace. Events not seen for an hour are removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from datetime import UTC, datetime, timedelta

from modelplane.api.kinds import EVENT
from modelplane.local.api.errors import AlreadyExists, ApiError, NotFound
from modelplane.local.api.managed_fields import CONTROL_PLANE_MANAGER, UpdateOwnership
from modelplane.local.api.meta import now_rfc3339
from modelplane.local.api.store import Ref, Store

logger = logging.getLogger("modelplane.reconciler")

EVENT_TTL = timedelta(hours=1)  # Kubernetes' default --event-ttl
_PRUNE_EVERY = 60.0  # seconds between looks for old events
COMPONENT = "modelplane"
# An Event the control plane records is its write, as a Kubernetes controller's recorder's is its own.
_RECORDED = UpdateOwnership(EVENT, CONTROL_PLANE_MANAGER)


class EventRecorder:
    """Records events in the store. Safe to call from the platform's event loop (a store write each)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pruned_at = -_PRUNE_EVERY

    def warning(self, involved: dict, reason: str, message: str) -> None:
        self.record(involved, "Warning", reason, message)

    def normal(self, involved: dict, reason: str, message: str) -> None:
        self.record(involved, "Normal", reason, message)

    def record(self, involved: dict, type_: str, reason: str, message: str) -> None:
        """Records one event about `involved` (a resource as stored); a failure to record is logged,
        never raised: an event is a report, not part of the work."""
        try:
            self._record(involved, type_, reason, message)
            self._prune_now_and_then()
        except ApiError as error:
            logger.warning("could not record the event %s for %s: %s", reason, _named(involved), error)

    def _record(self, involved: dict, type_: str, reason: str, message: str) -> None:
        metadata = involved.get("metadata") or {}
        namespace = metadata.get("namespace") or "default"
        key = "\0".join(
            str(part)
            for part in (
                involved.get("kind"),
                namespace,
                metadata.get("name"),
                metadata.get("uid"),
                type_,
                reason,
                message,
            )
        )
        name = f"{metadata.get('name')}.{hashlib.sha256(key.encode()).hexdigest()[:16]}"
        now = now_rfc3339()
        ref = Ref(EVENT.kind, namespace, name)
        with contextlib.suppress(NotFound):
            self.store.update(
                ref,
                lambda event: {**event, "count": int(event.get("count") or 1) + 1, "lastTimestamp": now},
                record_owners=_RECORDED.record,
            )
            return
        involved_object = {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "name": metadata.get("name"),
            "uid": metadata.get("uid"),
            "resourceVersion": metadata.get("resourceVersion"),
        }
        if metadata.get("namespace"):
            involved_object["namespace"] = metadata["namespace"]
        event = {
            "apiVersion": EVENT.api_version,
            "kind": EVENT.kind,
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {k: v for k, v in involved_object.items() if v is not None},
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        with contextlib.suppress(AlreadyExists):
            self.store.create(event, record_owners=_RECORDED.record)

    def _prune_now_and_then(self) -> None:
        if time.monotonic() - self._pruned_at < _PRUNE_EVERY:
            return
        self._pruned_at = time.monotonic()
        oldest = datetime.now(UTC) - EVENT_TTL
        events, _ = self.store.list(EVENT.kind)
        for event in events:
            if _time(event.get("lastTimestamp")) < oldest:
                with contextlib.suppress(NotFound):
                    self.store.delete(
                        Ref(EVENT.kind, event["metadata"]["namespace"], event["metadata"]["name"])
                    )


def _time(value: object) -> datetime:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


def _named(resource: dict) -> str:
    return f"{resource.get('kind')} {(resource.get('metadata') or {}).get('name')}"
