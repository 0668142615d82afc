"""The calls the operator makes to the Kubernetes API, through lightkube's async client, with objects
as plain dicts: server-side apply for what it makes (field manager `modelplane-operator`), merge
patches for finalizers and labels, the status subresource for status, and Events."""

from __future__ import annotations

import datetime
import logging
import uuid

from lightkube import ApiError, AsyncClient
from lightkube.types import PatchType

from modelplane.kube.operator import resources as r

FIELD_MANAGER = "modelplane-operator"
logger = logging.getLogger("modelplane.operator")


def is_not_found(error: ApiError) -> bool:
    return error.status.code == 404


def is_conflict(error: ApiError) -> bool:
    return error.status.code == 409


class Cluster:
    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    async def get(self, resource: type, name: str, namespace: str | None = None) -> dict | None:
        """The object, or None when there is none."""
        try:
            found = await self.client.get(resource, name, namespace=namespace)
        except ApiError as error:
            if is_not_found(error):
                return None
            raise
        return dict(found)

    async def list(
        self, resource: type, namespace: str | None = None, labels: dict | None = None
    ) -> list[dict]:
        """The objects (none where the kind is not installed on the cluster)."""
        try:
            return [dict(o) async for o in self.client.list(resource, namespace=namespace, labels=labels)]
        except ApiError as error:
            if is_not_found(error):
                return []
            raise

    async def apply(self, obj: dict) -> dict:
        resource = r.resource_of(obj)
        applied = await self.client.apply(resource(obj), field_manager=FIELD_MANAGER, force=True)
        return dict(applied)

    async def delete(self, resource: type, name: str, namespace: str | None = None) -> None:
        try:
            await self.client.delete(resource, name, namespace=namespace)
        except ApiError as error:
            if not is_not_found(error):
                raise

    async def patch(self, resource: type, name: str, namespace: str | None, patch: dict) -> dict:
        patched = await self.client.patch(
            resource,
            name,
            patch,
            namespace=namespace,
            patch_type=PatchType.MERGE,
            field_manager=FIELD_MANAGER,
        )
        return dict(patched)

    async def write_status(self, resource: type, obj: dict, status: dict) -> None:
        """Replaces the status (409 when `obj` is no longer the stored version)."""
        metadata = obj["metadata"]
        body = {
            "apiVersion": obj["apiVersion"],
            "kind": obj["kind"],
            "metadata": {
                "name": metadata["name"],
                "namespace": metadata.get("namespace"),
                "resourceVersion": metadata["resourceVersion"],
            },
            "status": status,
        }
        await self.client.replace(
            resource.Status(body), metadata["name"], namespace=metadata.get("namespace")
        )

    async def event(self, about: dict, type_: str, reason: str, message: str) -> None:
        """A core/v1 Event about `about`, as `kubectl describe` shows them (best effort)."""
        metadata = about["metadata"]
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{metadata['name']}.{uuid.uuid4().hex[:16]}",
                "namespace": metadata.get("namespace") or "default",
            },
            "involvedObject": {
                "apiVersion": about["apiVersion"],
                "kind": about["kind"],
                "name": metadata["name"],
                "namespace": metadata.get("namespace"),
                "uid": metadata.get("uid"),
                "resourceVersion": metadata.get("resourceVersion"),
            },
            "type": type_,
            "reason": reason,
            "message": message,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
        }
        try:
            await self.client.create(r.EVENTS(event), namespace=event["metadata"]["namespace"])
        except ApiError as error:
            logger.warning("could not record event %s on %s: %s", reason, metadata["name"], error)
