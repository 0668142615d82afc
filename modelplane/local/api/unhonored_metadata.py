"""An InferenceService's annotations and labels that KServe or Knative act on and `modelplane up` does not,
and the ones under their prefixes that neither knows (a misspelt key): accepted, as annotations are
free-form, and said on `apply` and in the status.

Only keys under KServe's and Knative's prefixes are looked at; a team's own annotations are theirs.
"""

from __future__ import annotations

import difflib

from modelplane.api import paths
from modelplane.api.constants import (
    AUTOSCALER_CLASS_ANNOTATION,
    DEPLOYMENT_MODE_ANNOTATION,
    GPU_RESOURCE_TYPES_ANNOTATION,
    TAG_ROUTING_ANNOTATION,
)
from modelplane.api.scraping import SCRAPE_ANNOTATION
from modelplane.api.service_account_credentials import STORAGE_SECRET_ANNOTATION
from modelplane.control import autoscaling_settings as scaling
from modelplane.control.modelmesh import RUNTIME_ANNOTATION as MESH_RUNTIME
from modelplane.control.modelmesh import SCHEMA_PATH_ANNOTATION as MESH_SCHEMA_PATH
from modelplane.control.modelmesh import SECRET_KEY_ANNOTATION as MESH_SECRET_KEY
from modelplane.kube.render import STOP_ANNOTATION
from modelplane.local.api.field_dispositions import ONE_MACHINE, REVISION_ANNOTATIONS

KSERVE, KNATIVE_AUTOSCALING = "serving.kserve.io/", scaling.PREFIX
KNATIVE_ONLY = ("serving.knative.dev/", "features.knative.dev/", "queue.sidecar.serving.knative.dev/")
KSERVE_INTERNAL = "internal.serving.kserve.io/"

# What `modelplane up` reads from an InferenceService's annotations.
ACTED_ON = frozenset(
    {
        DEPLOYMENT_MODE_ANNOTATION,
        AUTOSCALER_CLASS_ANNOTATION,
        TAG_ROUTING_ANNOTATION,
        STOP_ANNOTATION,
        SCRAPE_ANNOTATION,
        STORAGE_SECRET_ANNOTATION,
        *REVISION_ANNOTATIONS,
    }
)

GKE_ACCELERATOR_ANNOTATION = "serving.kserve.io/gke-accelerator"
METRIC_AGGREGATION_ANNOTATION = "serving.kserve.io/enable-metric-aggregation"
VISIBILITY_LABELS = ("networking.kserve.io/visibility", "networking.knative.dev/visibility")
_REPLICAS_FROM_SPEC = (
    "KServe writes the replica bounds from the component's minReplicas and maxReplicas over it: set those"
)
# What KServe or Knative does with these, and why one machine does not.
_NOT_ACTED_ON = {
    GKE_ACCELERATOR_ANNOTATION: (
        f"{ONE_MACHINE}: KServe makes it the GPU pods' cloud.google.com/gke-accelerator node selector"
    ),
    # KServe's queue-proxy extension serves the queue-proxy's and the model container's metrics on one
    # port of each pod (9088).
    METRIC_AGGREGATION_ANNOTATION: (
        "there is no pod to serve aggregated metrics on: modelplane up's own /metrics has the gateway's "
        f"metrics of every revision, and the replicas' with {SCRAPE_ANNOTATION}"
    ),
    GPU_RESOURCE_TYPES_ANNOTATION: "replicas get GPUs by nvidia.com/gpu alone, the GPUs this machine has",
    KSERVE + "disable-auto-update": (
        "a change to its runtime rolls out a new revision all the same, as KServe does without it"
    ),
    KSERVE + "nodegroup": "models are cached in the platform's own cache: there is no LocalModelCache",
    KSERVE
    + "disable-localmodel": "models are cached in the platform's own cache: there is no LocalModelCache",
    KNATIVE_AUTOSCALING + "min-scale": _REPLICAS_FROM_SPEC,
    KNATIVE_AUTOSCALING + "max-scale": _REPLICAS_FROM_SPEC,
    KNATIVE_AUTOSCALING + "minScale": _REPLICAS_FROM_SPEC,
    KNATIVE_AUTOSCALING + "maxScale": _REPLICAS_FROM_SPEC,
    KNATIVE_AUTOSCALING + "target-burst-capacity": (
        "the gateway holds every request for a revision with no replica free, as Knative's activator "
        "does with target-burst-capacity -1"
    ),
    "serving.knative.dev/rollout-duration": (
        "a new revision takes its share of the traffic at once when it is ready: there is no gradual rollout"
    ),
}
# ModelMesh Serving's annotations: what a ModelMesh service does with them; KServe reads none of them.
_MESH_ACTED_ON = frozenset({MESH_SECRET_KEY, MESH_RUNTIME, MESH_SCHEMA_PATH})
_MESH_ONLY = "a ModelMesh Serving annotation, read only for a service of deploymentMode ModelMesh"
_CLUSTER_LOCAL = "the gateway serves every service on the address it listens on (modelplane up --host), cluster-local or not"
_KNOWN = sorted(ACTED_ON | set(_NOT_ACTED_ON) | _MESH_ACTED_ON)


def unhonored_metadata(annotations: dict, labels: dict, model_mesh: bool = False) -> list[tuple[str, str]]:
    """(path, why) for each of an InferenceService's annotations and labels above; `model_mesh`: the
    service is a ModelMesh model."""
    found = []
    for key, value in annotations.items():
        why = _mesh_annotation(str(key), model_mesh) or _annotation_not_acted_on(str(key), value)
        if why:
            found.append((paths.join(["metadata", "annotations", key]), why))
    for label in VISIBILITY_LABELS:
        if labels.get(label) == "cluster-local":
            found.append((paths.join(["metadata", "labels", label]), _CLUSTER_LOCAL))
    return found


def _mesh_annotation(key: str, model_mesh: bool) -> str | None:
    if key in _MESH_ACTED_ON and not model_mesh:
        return _MESH_ONLY
    return None


def _annotation_not_acted_on(key: str, value: object) -> str | None:
    if key in _MESH_ACTED_ON:
        return None  # a ModelMesh service's (`_mesh_annotation` says the others')
    if key == scaling.INITIAL_SCALE:
        return scaling.ignored_initial_scale(value)
    if key in ACTED_ON:
        return None
    if key == METRIC_AGGREGATION_ANNOTATION and str(value).lower() != "true":
        return None  # "false" asks for nothing
    if key in _NOT_ACTED_ON:
        return _NOT_ACTED_ON[key]
    if key.startswith(KSERVE_INTERNAL):
        return "KServe's controller writes these for its pod webhook; nothing here reads them"
    if key.startswith(KNATIVE_ONLY):
        return "Knative's; there is no Knative here, and modelplane up does not read it"
    for prefix in (KSERVE, KNATIVE_AUTOSCALING):
        if key.startswith(prefix):
            return f"modelplane up does not read this annotation{_did_you_mean(prefix, key)}"
    return None


def _did_you_mean(prefix: str, key: str) -> str:
    """The known key of the same prefix whose name is closest to this one's, if any is close."""
    names = [known[len(prefix) :] for known in _KNOWN if known.startswith(prefix)]
    close = difflib.get_close_matches(key[len(prefix) :], names, n=1, cutoff=0.75)
    return f": did you mean {prefix}{close[0]}?" if close else ""
