"""Names, labels, annotations and owner references of the objects created for a resource, as KServe's
controller writes them.

Objects of a component are `<isvc>-predictor` (`<isvc>-<name>-predictor` when `predictor.name` is
set, and for each Standard-mode canary), `<isvc>-transformer` and `<isvc>-explainer`. They carry the
labels `serving.kserve.io/inferenceservice: <isvc>` and `component: <component>`; their pods (and a
Deployment's selector) `app: isvc.<object name>`.
"""

from __future__ import annotations

from collections.abc import Mapping

from modelplane.api.kinds import INFERENCE_SERVICE, TRAINED_MODEL

INFERENCE_SERVICE_LABEL = "serving.kserve.io/inferenceservice"
INFERENCE_GRAPH_LABEL = "serving.kserve.io/inferencegraph"
KIND_LABEL = "serving.kserve.io/kind"
COMPONENT_LABEL = "component"
APP_LABEL = "app"
VISIBILITY_LABEL = "networking.kserve.io/visibility"
KNATIVE_VISIBILITY_LABEL = "networking.knative.dev/visibility"
CLUSTER_LOCAL = "cluster-local"

# The finalizers the operator puts on the resources it reconciles (KServe's names).
FINALIZERS = {
    INFERENCE_SERVICE.kind: "inferenceservice.finalizers",
    TRAINED_MODEL.kind: "trainedmodel.finalizer",
}

# KServe's default `serviceAnnotationDisallowedList`: not copied from an InferenceService to its objects.
DISALLOWED_ANNOTATIONS = frozenset(
    {
        "autoscaling.knative.dev/min-scale",
        "autoscaling.knative.dev/max-scale",
        "internal.serving.kserve.io/storage-initializer-sourceuri",
        "kubectl.kubernetes.io/last-applied-configuration",
        "modelFormat",
    }
)


def component_name(isvc_name: str, component: str, predictor_name: str | None = None) -> str:
    """`iris-predictor`, `iris-v2-predictor` (a named predictor or a canary), `iris-transformer`."""
    return f"{isvc_name}-{predictor_name}-{component}" if predictor_name else f"{isvc_name}-{component}"


def app_label(object_name: str) -> str:
    return f"isvc.{object_name}"


def propagated_annotations(annotations: Mapping[str, str] | None) -> dict[str, str]:
    """A resource's annotations that its objects get too."""
    return {k: str(v) for k, v in (annotations or {}).items() if k not in DISALLOWED_ANNOTATIONS}


def owner_references(owner: dict) -> list[dict]:
    """The controller reference to `owner`, so its objects go when it goes; none when the owner has
    no `uid` yet (a resource read from a file: Kubernetes refuses a reference without one)."""
    metadata = owner.get("metadata") or {}
    if not metadata.get("uid"):
        return []
    return [
        {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": metadata["name"],
            "uid": metadata["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def object_metadata(
    name: str,
    namespace: str,
    owner: dict,
    labels: Mapping[str, str],
    annotations: Mapping[str, str] | None = None,
) -> dict:
    metadata: dict = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if annotations:
        metadata["annotations"] = dict(annotations)
    references = owner_references(owner)
    if references:
        metadata["ownerReferences"] = references
    return metadata


def namespace_of(resource: dict) -> str:
    return (resource.get("metadata") or {}).get("namespace") or "default"


def is_cluster_local(resource: dict) -> bool:
    labels = (resource.get("metadata") or {}).get("labels") or {}
    return CLUSTER_LOCAL in (labels.get(VISIBILITY_LABEL), labels.get(KNATIVE_VISIBILITY_LABEL))
