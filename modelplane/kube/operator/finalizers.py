"""KServe's finalizers on the resources the operator reconciles: added while a resource lives, taken
off once what its deletion needs is done (the objects it owns then go by the garbage collector)."""

from __future__ import annotations

from modelplane.kube.operator.cluster import Cluster


def has(resource: dict, finalizer: str) -> bool:
    return finalizer in ((resource.get("metadata") or {}).get("finalizers") or [])


def is_deleting(resource: dict) -> bool:
    return bool((resource.get("metadata") or {}).get("deletionTimestamp"))


async def add(cluster: Cluster, kind: type, resource: dict, finalizer: str) -> dict:
    metadata = resource["metadata"]
    finalizers = [*(metadata.get("finalizers") or []), finalizer]
    patch = {"metadata": {"finalizers": finalizers, "resourceVersion": metadata["resourceVersion"]}}
    return await cluster.patch(kind, metadata["name"], metadata.get("namespace"), patch)


async def remove(cluster: Cluster, kind: type, resource: dict, finalizer: str) -> None:
    metadata = resource["metadata"]
    finalizers = [f for f in metadata.get("finalizers") or [] if f != finalizer]
    patch = {"metadata": {"finalizers": finalizers, "resourceVersion": metadata["resourceVersion"]}}
    await cluster.patch(kind, metadata["name"], metadata.get("namespace"), patch)
