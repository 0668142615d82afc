"""Playing the part of kubelet and the controllers on the test API server: pods for a Deployment,
with the container states kubelet reports, a Deployment's status, a Knative Service's status, and a
gateway accepting HTTPRoutes."""

from __future__ import annotations

import datetime
import uuid

from modelplane.kube.operator import resources as r

DEPLOYMENT = r.DEPLOYMENTS
POD = r.PODS
ROUTE = r.HTTP_ROUTES
KSVC = r.KNATIVE_SERVICES


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(client, resource, name: str, namespace: str, status: dict) -> None:
    obj = dict(client.get(resource, name, namespace=namespace))
    obj["status"] = status
    client.replace(resource.Status(obj), name, namespace=namespace)


def start_pod(
    client,
    deployment_name: str,
    namespace: str,
    containers: list[dict],
    init: list[dict] | None = None,
    ready: bool = False,
    pod_ip: str = "127.0.0.1",
    spec: dict | None = None,
) -> str:
    """A pod of the Deployment's template (owned by it; `spec` in place of the template's, when given),
    with these container statuses."""
    deployment = dict(client.get(DEPLOYMENT, deployment_name, namespace=namespace))
    template = deployment["spec"]["template"]
    name = f"{deployment_name}-{uuid.uuid4().hex[:5]}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": template["metadata"]["labels"],
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": deployment_name,
                    "uid": deployment["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": spec or template["spec"],
    }
    client.create(POD(pod), namespace=namespace)
    conditions = [
        {"type": "PodScheduled", "status": "True"},
        {"type": "Ready", "status": "True" if ready else "False"},
    ]
    status = {"phase": "Running", "podIP": pod_ip, "conditions": conditions, "containerStatuses": containers}
    if init is not None:
        status["initContainerStatuses"] = init
    _status(client, POD, name, namespace, status)
    return name


def running(name: str = "kserve-container") -> dict:
    return {"name": name, "ready": True, "restartCount": 0, "state": {"running": {"startedAt": _now()}}}


def crash_looping(name: str, exit_code: int, message: str, restarts: int = 3) -> dict:
    return {
        "name": name,
        "ready": False,
        "restartCount": restarts,
        "state": {
            "waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}
        },
        "lastState": {
            "terminated": {"reason": "Error", "exitCode": exit_code, "message": message, "finishedAt": _now()}
        },
    }


def image_pull_failing(name: str, image: str) -> dict:
    return {
        "name": name,
        "image": image,
        "ready": False,
        "restartCount": 0,
        "state": {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}},
    }


def fetch_failed(message: str) -> dict:
    return {
        "name": "storage-initializer",
        "ready": False,
        "restartCount": 2,
        "state": {"terminated": {"reason": "Error", "exitCode": 1, "message": message, "finishedAt": _now()}},
    }


def deployment_available(client, name: str, namespace: str, replicas: int = 1) -> None:
    _status(client, DEPLOYMENT, name, namespace, {
        "replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas, "updatedReplicas": replicas,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ],
    })  # fmt: skip


def deployment_unavailable(client, name: str, namespace: str) -> None:
    _status(client, DEPLOYMENT, name, namespace, {
        "replicas": 1, "unavailableReplicas": 1,
        "conditions": [
            {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
            {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"},
        ],
    })  # fmt: skip


def accept_routes(client, namespace: str) -> int:
    """The gateway accepts every HTTPRoute not accepted yet; returns how many it accepted."""
    accepted = 0
    for route in client.list(ROUTE, namespace=namespace):
        route = dict(route)
        if (route.get("status") or {}).get("parents"):
            continue
        parent = route["spec"]["parentRefs"][0]
        _status(client, ROUTE, route["metadata"]["name"], namespace, {"parents": [{
            "parentRef": parent, "controllerName": "example.com/gateway",
            "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"}],
        }]})  # fmt: skip
        accepted += 1
    return accepted


def knative_ready(client, name: str, namespace: str, revision: str, traffic: list[dict]) -> None:
    """Knative's status of a Knative Service whose newest revision is `revision`, ready, with `traffic`."""
    url = f"http://{name}.{namespace}.example.com"
    _status(client, KSVC, name, namespace, {
        "latestCreatedRevisionName": revision, "latestReadyRevisionName": revision, "url": url,
        "address": {"url": f"http://{name}.{namespace}.svc.cluster.local"}, "traffic": traffic,
        "conditions": [{"type": t, "status": "True"} for t in ("Ready", "ConfigurationsReady", "RoutesReady")],
    })  # fmt: skip


def knative_not_routed(client, name: str, namespace: str, revision: str) -> None:
    """Knative's status of a Knative Service whose newest revision is ready and not yet routed: the
    ingress has not taken its route."""
    _status(client, KSVC, name, namespace, {
        "latestCreatedRevisionName": revision, "latestReadyRevisionName": revision,
        "conditions": [
            {"type": "ConfigurationsReady", "status": "True"},
            {"type": "Ready", "status": "Unknown", "reason": "IngressNotConfigured",
             "message": "Ingress has not yet been reconciled."},
            {"type": "RoutesReady", "status": "Unknown", "reason": "IngressNotConfigured",
             "message": "Ingress has not yet been reconciled."},
        ],
    })  # fmt: skip
