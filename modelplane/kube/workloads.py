"""Standard mode's Deployment and Service of a component (or of a graph's router), as KServe's raw
reconciler writes them."""

from __future__ import annotations

import copy

from modelplane.kube.meta import APP_LABEL, app_label, object_metadata

HTTP_PORT = 80  # the port of every component's Service, as in KServe
H2C = "kubernetes.io/h2c"
DEFAULT_TARGET_PORT = 8080


def deployment(
    name: str,
    namespace: str,
    owner: dict,
    labels: dict[str, str],
    annotations: dict[str, str],
    pod: dict,
    replicas: int | None = None,
    strategy: dict | None = None,
) -> dict:
    """A Deployment of `pod`; `replicas` None leaves the count to the autoscaler."""
    pod_labels = {**labels, APP_LABEL: app_label(name)}
    template_metadata: dict = {"labels": pod_labels}
    if annotations:
        template_metadata["annotations"] = dict(annotations)
    spec: dict = {
        "selector": {"matchLabels": {APP_LABEL: app_label(name)}},
        "strategy": copy.deepcopy(strategy)
        or {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
        "template": {"metadata": template_metadata, "spec": pod},
    }
    if replicas is not None:
        spec = {"replicas": replicas, **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_metadata(name, namespace, owner, pod_labels, annotations),
        "spec": spec,
    }


def service(
    name: str,
    namespace: str,
    owner: dict,
    labels: dict[str, str],
    annotations: dict[str, str],
    container_ports: list[dict],
) -> dict:
    """The ClusterIP Service in front of a Deployment: port 80 to the first container port (8080 when
    there is none), and each further container port as itself (`grpc*` and `h2c*` ones as h2c)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_metadata(
            name, namespace, owner, {**labels, APP_LABEL: app_label(name)}, annotations
        ),
        "spec": {
            "type": "ClusterIP",
            "selector": {APP_LABEL: app_label(name)},
            "ports": service_ports(name, container_ports),
        },
    }


def service_ports(name: str, container_ports: list[dict]) -> list[dict]:
    ports = [p for p in container_ports if isinstance(p, dict) and "containerPort" in p]
    if not ports:
        return [{"name": name, "port": HTTP_PORT, "targetPort": DEFAULT_TARGET_PORT, "protocol": "TCP"}]
    first = ports[0]
    result = [
        {
            "name": first.get("name") or "http",
            "port": HTTP_PORT,
            "targetPort": first["containerPort"],
            "protocol": first.get("protocol") or "TCP",
        }
    ]
    for port in ports[1:]:
        entry = {
            "name": port.get("name") or f"port-{port['containerPort']}",
            "port": port["containerPort"],
            "targetPort": port["containerPort"],
            "protocol": port.get("protocol") or "TCP",
        }
        if str(entry["name"]).startswith(("grpc", "h2c")):
            entry["appProtocol"] = H2C
        result.append(entry)
    return result


def grpc_service_port(container_ports: list[dict]) -> int | None:
    """The Service port that speaks gRPC, when the container has one besides its first."""
    for port in service_ports("", container_ports)[1:]:
        if port.get("appProtocol") == H2C:
            return port["port"]
    return None
