"""An InferenceGraph on the cluster: its router, running `modelplane router` in modelplane's image
with the graph's spec, each `serviceName` resolved to that InferenceService's in-cluster URL and the
path of its protocol (`/v1/models/<model>:predict` or `/v2/models/<model>/infer`, as
`modelplane.control.graph_plan` reads them).

Standard mode: a Deployment, a Service and an autoscaler named after the graph (as KServe's raw graph
reconciler), and a route in to `<graph>-<namespace>.<domain>`, which KServe does not make. Knative mode:
a Knative Service named after the graph.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

from modelplane.api.constants import KNATIVE
from modelplane.control.graph_plan import model_name, protocol
from modelplane.control.hpa_metrics import HPA, KEDA
from modelplane.control.trained_models import is_mms_predictor
from modelplane.graph.headers import PROPAGATE_HEADERS_ENV
from modelplane.kube.autoscalers import autoscaler_class, horizontal_pod_autoscaler, scaled_object
from modelplane.kube.knative import knative_service
from modelplane.kube.meta import (
    INFERENCE_GRAPH_LABEL,
    KIND_LABEL,
    component_name,
    is_cluster_local,
    namespace_of,
    propagated_annotations,
)
from modelplane.kube.pods import ComponentPod, scrape_annotations
from modelplane.kube.routes import Backend, host, http_route, ingress
from modelplane.kube.settings import KubeSettings
from modelplane.kube.workloads import deployment, service

ROUTER_PORT = 8080
READY_PATH = "/readyz"
_SCALING = ("minReplicas", "maxReplicas", "scaleMetric", "scaleTarget", "timeout")
_POD_FIELDS = ("affinity", "tolerations", "nodeSelector", "nodeName", "serviceAccountName")
_RESTRICTED = {
    "privileged": False,
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def service_address(isvc: dict, settings: KubeSettings) -> str:
    """Where an InferenceService answers inside the cluster, in either mode: its entry component's
    Service (the transformer's if it has one, else the predictor's; in Knative mode, the Service Knative
    makes for the component's Knative Service)."""
    spec = isvc.get("spec") or {}
    name = isvc["metadata"]["name"]
    if isinstance(spec.get("transformer"), dict):
        entry = component_name(name, "transformer")
    else:
        entry = component_name(name, "predictor", (spec.get("predictor") or {}).get("name"))
    return f"{settings.url_scheme}://{entry}.{namespace_of(isvc)}.svc.{settings.cluster_domain}"


def service_endpoint(isvc: dict, settings: KubeSettings) -> str:
    """A step's URL for an InferenceService: its address and the path of its protocol and model (none
    for a multi-model predictor, as in KServe)."""
    address = service_address(isvc, settings)
    if is_mms_predictor(isvc):
        return address
    model = model_name(isvc)
    path = f"/v2/models/{model}/infer" if protocol(isvc) == "v2" else f"/v1/models/{model}:predict"
    return address + path


def resolved_graph(ig: dict, endpoint_of: Callable[[str], str]) -> dict:
    """The graph's spec with a `serviceUrl` for each `serviceName` step that has none."""
    graph = copy.deepcopy(ig.get("spec") or {})
    for node in (graph.get("nodes") or {}).values():
        for step in (node or {}).get("steps") or []:
            if step.get("serviceName") and not step.get("serviceUrl"):
                step["serviceUrl"] = endpoint_of(step["serviceName"])
    return graph


def router_pod(ig: dict, graph: dict, mode: str, settings: KubeSettings) -> ComponentPod:
    """The router's pod, as a component pod of its own."""
    spec = ig.get("spec") or {}
    name = ig["metadata"]["name"]
    probe: dict = {"path": READY_PATH}
    if mode != KNATIVE:
        probe["port"] = ROUTER_PORT
    container: dict = {
        "image": settings.image,
        "command": ["modelplane", "router"],
        "args": ["--graph-json", json.dumps(graph, sort_keys=True, separators=(",", ":"))],
        "resources": copy.deepcopy(spec.get("resources") or settings.router_resources),
        "readinessProbe": {
            "httpGet": probe,
            "initialDelaySeconds": 5,
            "timeoutSeconds": 2,
            "periodSeconds": 5,
            "successThreshold": 1,
            "failureThreshold": 3,
        },
        "securityContext": copy.deepcopy(_RESTRICTED),
    }
    if settings.router_propagate_headers:
        container["env"] = [
            {"name": PROPAGATE_HEADERS_ENV, "value": ",".join(settings.router_propagate_headers)}
        ]
    if mode != KNATIVE:  # KServe names the container only in Standard mode
        container = {"name": name, **container}
    pod = {k: copy.deepcopy(spec[k]) for k in _POD_FIELDS if spec.get(k) not in (None, "", {}, [])}
    pod["automountServiceAccountToken"] = False
    pod["containers"] = [container]
    metadata = ig.get("metadata") or {}
    labels = {**(metadata.get("labels") or {}), INFERENCE_GRAPH_LABEL: name}
    annotations = propagated_annotations(metadata.get("annotations"))
    scaling = {k: spec[k] for k in _SCALING if spec.get(k) is not None}
    scraped = scrape_annotations(annotations, ROUTER_PORT)
    return ComponentPod("router", name, scaling, pod, labels, annotations, None, pod_annotations=scraped)


def graph_objects(
    ig: dict, mode: str, settings: KubeSettings, endpoint_of: Callable[[str], str]
) -> list[dict]:
    """The objects of an admitted InferenceGraph in `mode`."""
    namespace = namespace_of(ig)
    pod = router_pod(ig, resolved_graph(ig, endpoint_of), mode, settings)
    if mode == KNATIVE:
        kind = {KIND_LABEL: ig["kind"]}
        return [knative_service(ig, pod, namespace, kind_labels=kind, timeout=pod.spec.get("timeout"))]
    objects = [
        deployment(
            pod.name, namespace, ig, pod.labels, pod.annotations, pod.pod, pod_annotations=pod.pod_annotations
        ),
        service(pod.name, namespace, ig, pod.labels, pod.annotations, []),
    ]
    klass = autoscaler_class(ig)
    if klass == HPA:
        objects.append(
            horizontal_pod_autoscaler(
                pod.name, namespace, ig, pod.labels, pod.spec, annotations=pod.annotations
            )
        )
    elif klass == KEDA:
        objects.append(
            scaled_object(pod.name, namespace, ig, pod.labels, pod.spec, annotations=pod.annotations)
        )
    if not is_cluster_local(ig):
        hostname = host(pod.name, namespace, settings)
        if settings.gateway_api:
            objects.append(
                http_route(
                    pod.name,
                    namespace,
                    ig,
                    pod.labels,
                    hostname,
                    [Backend(pod.name)],
                    settings,
                    annotations=pod.annotations,
                    timeout=pod.spec.get("timeout"),
                )
            )
        else:
            objects.append(
                ingress(
                    pod.name, namespace, ig, pod.labels, [(hostname, pod.name)], settings, pod.annotations
                )
            )
    return objects
