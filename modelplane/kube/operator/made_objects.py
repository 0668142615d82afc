"""The objects a resource has on the cluster: applied as rendered (server-side apply), and those it
made before and no longer needs (a component, a canary or a route that went) deleted. An object counts
as the resource's when it carries its label and the resource is its controller (owner reference by uid)."""

from __future__ import annotations

from collections.abc import Sequence

from modelplane.kube.operator import resources as r
from modelplane.kube.operator.cluster import Cluster


def controlled_by(obj: dict, owner: dict) -> bool:
    uid = owner["metadata"].get("uid")
    return any(
        ref.get("uid") == uid and ref.get("controller")
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or []
    )


async def apply_all(cluster: Cluster, objects: Sequence[dict]) -> None:
    for obj in objects:
        await cluster.apply(obj)


async def prune(cluster: Cluster, owner: dict, label: str, keep: Sequence[dict]) -> list[str]:
    """Deletes what `owner` made (labelled `label: <owner name>`) that is not in `keep`; returns
    `Kind/name` of each one deleted."""
    wanted = {(r.resource_of(o), o["metadata"]["name"]) for o in keep}
    namespace = owner["metadata"].get("namespace") or "default"
    deleted = []
    for resource in r.MADE:
        for obj in await cluster.list(resource, namespace, {label: owner["metadata"]["name"]}):
            name = obj["metadata"]["name"]
            if (resource, name) not in wanted and controlled_by(obj, owner):
                await cluster.delete(resource, name, namespace)
                deleted.append(f"{resource._api_info.resource.kind}/{name}")
    return deleted
