"""Kubernetes' core `services`, of which modelplane has none (a component is reached through the
gateway, not a Service): served as a resource that lists empty and refuses writes, so that a client
that looks for Services finds none rather than no such resource. `kubectl cluster-info` lists the
Services labelled `kubernetes.io/cluster-service=true` in `kube-system`; finding none, it prints the
control plane's line alone and succeeds.
"""

from __future__ import annotations

from typing import Any

from modelplane.local.api.errors import MethodNotAllowed, NotFound

PLURAL = "services"
DISCOVERY = {
    "name": PLURAL,
    "singularName": "service",
    "namespaced": True,
    "kind": "Service",
    "verbs": ["get", "list"],
    "shortNames": ["svc"],
}


def services_at(parts: list[str]) -> tuple[str | None, str | None] | None:
    """For the parts of a core v1 path after `/api/v1`, (namespace, name) if it names services (either
    may be None: all namespaces, the collection); None for any other path."""
    if parts == [PLURAL]:
        return None, None
    if len(parts) in (3, 4) and parts[0] == "namespaces" and parts[2] == PLURAL:
        return parts[1], parts[3] if len(parts) == 4 else None
    return None


def services_answer(method: str, watch: bool, name: str | None, resource_version: str) -> dict[str, Any]:
    """What a request for services gets: an empty `ServiceList`, NotFound for a named one, and
    MethodNotAllowed for a watch or a write, which would wait for or make what cannot be here."""
    if method != "GET" or watch:
        raise MethodNotAllowed(
            f"{'watch' if watch else method} is not supported on services: modelplane runs no Services "
            "(each component is reached through its gateway)"
        )
    if name is not None:
        raise NotFound(f'services "{name}" not found', {"name": name, "kind": PLURAL})
    return {
        "kind": "ServiceList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": resource_version},
        "items": [],
    }
