"""Standard mode (KServe's `RawDeployment`): each component a Deployment, a Service and an autoscaler,
each canary a Deployment and a Service of its own, and the routes in.

The stable predictor lends its replicas to the canaries, as KServe does: its minimum is lowered by the
replicas of the ready canaries (at least one stays). Which canaries are ready is the cluster's to say;
by default every one counts as ready (the state the objects settle in).
"""

from __future__ import annotations

from collections.abc import Collection

from modelplane.control.canaries import stable_share
from modelplane.control.hpa_metrics import HPA, KEDA
from modelplane.control.urls import entry_component
from modelplane.kube.autoscalers import (
    NONE,
    autoscaler_class,
    horizontal_pod_autoscaler,
    replica_bounds,
    scaled_object,
)
from modelplane.kube.meta import (
    INFERENCE_SERVICE_LABEL,
    component_name,
    is_cluster_local,
    namespace_of,
    propagated_annotations,
)
from modelplane.kube.pods import ComponentPod
from modelplane.kube.routes import Backend, host, http_route, ingress
from modelplane.kube.settings import KubeSettings
from modelplane.kube.workloads import deployment, service


def standard_objects(
    isvc: dict,
    pods: list[ComponentPod],
    settings: KubeSettings,
    *,
    ready_canaries: Collection[str] | None = None,
) -> list[dict]:
    """The objects of an InferenceService in Standard mode, given its component pods."""
    namespace = namespace_of(isvc)
    klass = autoscaler_class(isvc)
    stable = [pod for pod in pods if pod.canary is None]
    canaries = [pod for pod in pods if pod.canary is not None]
    ready = [pod for pod in canaries if ready_canaries is None or pod.canary.name in ready_canaries]
    lent = sum(pod.canary.replicas for pod in ready)
    objects: list[dict] = []
    for pod in stable:
        minimum = None
        if pod.component == "predictor" and lent:
            minimum = max(1, replica_bounds(pod.spec)[0] - lent)
        replicas = None
        if klass == NONE:
            replicas = minimum if minimum is not None else replica_bounds(pod.spec, floor=0)[0]
        objects += _workload(isvc, pod, namespace, replicas)
        if klass == HPA:
            objects.append(
                horizontal_pod_autoscaler(
                    pod.name, namespace, isvc, pod.labels, pod.spec, minimum, annotations=pod.annotations
                )
            )
        elif klass == KEDA:
            objects.append(
                scaled_object(
                    pod.name, namespace, isvc, pod.labels, pod.spec, minimum, annotations=pod.annotations
                )
            )
    for pod in canaries:
        objects += _workload(isvc, pod, namespace, pod.canary.replicas)
    if not is_cluster_local(isvc):
        objects += _routes(isvc, stable, canaries, ready, settings)
    return objects


def _workload(isvc: dict, pod: ComponentPod, namespace: str, replicas: int | None) -> list[dict]:
    return [
        deployment(
            pod.name,
            namespace,
            isvc,
            pod.labels,
            pod.annotations,
            pod.pod,
            replicas,
            pod.spec.get("deploymentStrategy"),
            pod.pod_annotations,
        ),
        service(pod.name, namespace, isvc, pod.labels, pod.annotations, pod.ports),
    ]


def _routes(
    isvc: dict,
    stable: list[ComponentPod],
    canaries: list[ComponentPod],
    ready: list[ComponentPod],
    settings: KubeSettings,
) -> list[dict]:
    name, namespace = isvc["metadata"]["name"], namespace_of(isvc)
    metadata = isvc.get("metadata") or {}
    labels = {**(metadata.get("labels") or {}), INFERENCE_SERVICE_LABEL: name}
    annotations = propagated_annotations(metadata.get("annotations"))
    by_component = {pod.component: pod for pod in stable}
    backends = {component: [Backend.of(pod.name, pod.ports)] for component, pod in by_component.items()}
    if ready and "predictor" in backends:
        stable_predictor = by_component["predictor"]
        share = stable_share([pod.canary.percent for pod in ready])
        backends["predictor"] = [Backend.of(stable_predictor.name, stable_predictor.ports, share)]
        backends["predictor"] += [Backend.of(pod.name, pod.ports, pod.canary.percent) for pod in ready]
    entry = entry_component(by_component)
    hosted = _component_hosts(name, by_component, backends)
    # Not KServe's: each canary's own host, as `modelplane up` gives it, to the canary alone whatever its
    # share (a 0% one included). Promoted (`predictor.name` set to it), the host stays, to the new stable.
    hosted += [(pod.name, pod, [Backend.of(pod.name, pod.ports)]) for pod in canaries]
    if not settings.gateway_api:
        hosts = [(host(name, namespace, settings), by_component[entry].name)]
        hosts += [(host(route, namespace, settings), to[0].service) for route, _, to in hosted]
        # KServe's Ingress takes every annotation of the service, the disallowed ones too.
        all_annotations = {k: str(v) for k, v in (metadata.get("annotations") or {}).items()}
        return [ingress(name, namespace, isvc, labels, hosts, settings, all_annotations)]
    routes = [
        http_route(
            route,
            namespace,
            isvc,
            labels,
            host(route, namespace, settings),
            component_backends,
            settings,
            annotations=annotations,
            timeout=_timeout(pod),
            isvc_name=name,
        )
        for route, pod, component_backends in hosted
    ]
    routes.insert(
        0,
        http_route(
            name,
            namespace,
            isvc,
            labels,
            host(name, namespace, settings),
            backends[entry],
            settings,
            annotations=annotations,
            explainer=backends.get("explainer", ()),
            timeout=_timeout(by_component[entry]),
            explainer_timeout=_timeout(by_component.get("explainer")),
            isvc_name=name,
        ),
    )
    return routes


def _component_hosts(
    name: str, by_component: dict[str, ComponentPod], backends: dict[str, list[Backend]]
) -> list[tuple[str, ComponentPod, list[Backend]]]:
    """(route and host name, component pod, backends) of each component's own host: KServe's
    `<isvc>-predictor` (whatever the predictor's name, with the canaries' shares), `-transformer`,
    `-explainer`; and for a named predictor `<isvc>-<name>-predictor`, its Service's name and the host
    the status gives as the predictor's URL, to the stable predictor alone."""
    hosted = [
        (component_name(name, component), pod, backends[component]) for component, pod in by_component.items()
    ]
    predictor = by_component.get("predictor")
    if predictor is not None and predictor.name != component_name(name, "predictor"):
        hosted.append((predictor.name, predictor, [Backend.of(predictor.name, predictor.ports)]))
    return hosted


def _timeout(pod: ComponentPod | None) -> int | None:
    return pod.spec.get("timeout") if pod is not None else None
