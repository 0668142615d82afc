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
    pod_annotations: dict[str, str] | None = None,
) -> dict:
    """A Deployment of `pod`; `replicas` None leaves the count to the autoscaler. `pod_annotations` go
    on the pod template alone."""
    pod_labels = {**labels, APP_LABEL: app_label(name)}
    template_metadata: dict = {"labels": pod_labels}
    if annotations or pod_annotations:
        template_metadata["annotations"] = {**annotations, **(pod_annotations or {})}
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
    """The ClusterIP Service in front of a Deployment (`service_ports`)."""
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
    """KServe's `createDefaultSvc`: port 80 to the first container port (8080 when there is none), with
    its name, and each further one as itself; a port whose name holds grpc or h2c speaks h2c."""
    ports = [p for p in container_ports if isinstance(p, dict) and "containerPort" in p]
    if not ports:
        return [{"name": name, "port": HTTP_PORT, "targetPort": DEFAULT_TARGET_PORT, "protocol": "TCP"}]
    first = _service_port(ports[0], HTTP_PORT)
    if "name" not in first and len(ports) > 1:
        first = {"name": "http", **first}  # Kubernetes wants every port of a Service with several named
    result = [first]
    for port in ports[1:]:
        named_port = {**port, "name": port.get("name") or f"port-{port['containerPort']}"}
        result.append(_service_port(named_port, port["containerPort"]))
    return result


def _service_port(container_port: dict, port: int) -> dict:
    entry = {"name": container_port.get("name")} if container_port.get("name") else {}
    entry |= {
        "port": port,
        "targetPort": container_port["containerPort"],
        "protocol": container_port.get("protocol") or "TCP",
    }
    if _speaks_grpc(entry):
        entry["appProtocol"] = H2C
    return entry


def _speaks_grpc(service_port: dict) -> bool:
    name = str(service_port.get("name") or "")
    return service_port.get("appProtocol") == H2C or "grpc" in name or "h2c" in name


def protocol_ports(container_ports: list[dict]) -> tuple[int, int] | None:
    """KServe's `detectServiceProtocolPorts`: the Service's first REST port and first gRPC port, when it
    has both (None: its routes send everything to port 80)."""
    ports = service_ports("", container_ports)
    rest = next((p["port"] for p in ports if not _speaks_grpc(p)), None)
    grpc = next((p["port"] for p in ports if _speaks_grpc(p)), None)
    return (rest, grpc) if rest is not None and grpc is not None else None
