"""Every kind the operator reads or writes, as lightkube generic resources: objects stay plain dicts,
as `modelplane.kube` renders them."""

from __future__ import annotations

from lightkube.generic_resource import create_global_resource, create_namespaced_resource

INFERENCE_SERVICES = create_namespaced_resource(
    "serving.kserve.io", "v1beta1", "InferenceService", "inferenceservices"
)
INFERENCE_GRAPHS = create_namespaced_resource(
    "serving.kserve.io", "v1alpha1", "InferenceGraph", "inferencegraphs"
)
SERVING_RUNTIMES = create_namespaced_resource(
    "serving.kserve.io", "v1alpha1", "ServingRuntime", "servingruntimes"
)
CLUSTER_SERVING_RUNTIMES = create_global_resource(
    "serving.kserve.io", "v1alpha1", "ClusterServingRuntime", "clusterservingruntimes"
)
TRAINED_MODELS = create_namespaced_resource("serving.kserve.io", "v1alpha1", "TrainedModel", "trainedmodels")

DEPLOYMENTS = create_namespaced_resource("apps", "v1", "Deployment", "deployments")
SERVICES = create_namespaced_resource("", "v1", "Service", "services")
CONFIG_MAPS = create_namespaced_resource("", "v1", "ConfigMap", "configmaps")
PODS = create_namespaced_resource("", "v1", "Pod", "pods")
SERVICE_ACCOUNTS = create_namespaced_resource("", "v1", "ServiceAccount", "serviceaccounts")
SECRETS = create_namespaced_resource("", "v1", "Secret", "secrets")
EVENTS = create_namespaced_resource("", "v1", "Event", "events")
HPAS = create_namespaced_resource("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers")
SCALED_OBJECTS = create_namespaced_resource("keda.sh", "v1alpha1", "ScaledObject", "scaledobjects")
INGRESSES = create_namespaced_resource("networking.k8s.io", "v1", "Ingress", "ingresses")
HTTP_ROUTES = create_namespaced_resource("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes")
KNATIVE_SERVICES = create_namespaced_resource("serving.knative.dev", "v1", "Service", "services")
LEASES = create_namespaced_resource("coordination.k8s.io", "v1", "Lease", "leases")

# The kinds of the objects the operator makes for a resource (and deletes when it no longer needs them).
MADE = (DEPLOYMENTS, SERVICES, CONFIG_MAPS, HPAS, SCALED_OBJECTS, INGRESSES, HTTP_ROUTES, KNATIVE_SERVICES)


def resource_of(obj: dict) -> type:
    """The class of an object by its apiVersion and kind."""
    api_version, kind = obj["apiVersion"], obj["kind"]
    for resource in (*MADE, PODS, EVENTS, LEASES):
        info = resource._api_info.resource
        if info.api_version == api_version and info.kind == kind:
            return resource
    raise LookupError(f"the operator does not make {kind} {api_version}")
