"""Knative mode (KServe's `Serverless`): each component a Knative Service, as KServe's ksvc reconciler
writes it.

The revision template carries the component's pod, its `containerConcurrency`, its `timeout` (as
`timeoutSeconds` and `responseStartTimeoutSeconds`) and Knative's autoscaling annotations: the class
(`kpa.autoscaling.knative.dev` unless the InferenceService names one), `min-scale` (`minReplicas`, 1 by
default, 0 to scale to zero), `max-scale` (`maxReplicas`, when not 0), `metric` and `target`
(`scaleMetric`, `scaleTarget`). An `initial-scale` that is not an integer is left out, as KServe
leaves it out (Knative would refuse the Service).

Traffic: all to the latest revision, until a revision has been rolled out (the status's
`latestRolledoutRevision`) and `canaryTrafficPercent` is set: then the latest revision gets that share
and the rolled-out one, tagged `prev`, the rest. A rolled-out revision of another Knative Service (the
predictor's before `predictor.name` changed, which goes with its revisions) is no `prev`: the new
Knative Service starts as a new one does. With `serving.kserve.io/enable-tag-routing: "true"` the
latest revision is tagged `latest`.
"""

from __future__ import annotations

import hashlib

from modelplane.api.constants import TAG_ROUTING_ANNOTATION
from modelplane.control.autoscaling_settings import INITIAL_SCALE, annotated_initial_scale
from modelplane.control.traffic import traffic_targets
from modelplane.kube.meta import object_metadata
from modelplane.kube.pods import ComponentPod

API_VERSION = "serving.knative.dev/v1"
CLASS = "autoscaling.knative.dev/class"
KPA_CLASS = "kpa.autoscaling.knative.dev"
MIN_SCALE = "autoscaling.knative.dev/min-scale"
MAX_SCALE = "autoscaling.knative.dev/max-scale"
METRIC = "autoscaling.knative.dev/metric"
TARGET = "autoscaling.knative.dev/target"
NAME_LIMIT = 63
# Annotations that belong on the Knative Service itself rather than on its revisions.
SERVICE_ANNOTATIONS = (
    "serving.knative.dev/rollout-duration",
    "serving.knative.openshift.io/enablePassthrough",
)


def knative_service(
    owner: dict,
    pod: ComponentPod,
    namespace: str,
    *,
    rolled_out: str | None = None,
    kind_labels: dict[str, str] | None = None,
    timeout: int | None = None,
) -> dict:
    """The Knative Service of one component (or of a graph's router); `rolled_out` is the revision
    that last had all the traffic, from the status, if any."""
    spec = pod.spec
    left_out = {*SERVICE_ANNOTATIONS, *([INITIAL_SCALE] if dropped_initial_scale(pod.annotations) else [])}
    template_annotations = {k: v for k, v in pod.annotations.items() if k not in left_out}
    template_annotations.update(scaling_annotations(spec, pod.annotations))
    template_annotations.update(pod.pod_annotations)
    revision_spec = dict(pod.pod)
    if spec.get("containerConcurrency") is not None:
        revision_spec["containerConcurrency"] = int(spec["containerConcurrency"])
    timeout = spec.get("timeout") if timeout is None else timeout
    if timeout is not None:
        revision_spec["timeoutSeconds"] = int(timeout)
        revision_spec["responseStartTimeoutSeconds"] = int(timeout)
    service_annotations = {k: v for k, v in pod.annotations.items() if k in SERVICE_ANNOTATIONS}
    if rolled_out is not None and not is_revision_of(pod.name, rolled_out):
        rolled_out = None
    template_labels = {**pod.labels, **(kind_labels or {})}
    owner_annotations = (owner.get("metadata") or {}).get("annotations") or {}
    tag_routing = str(owner_annotations.get(TAG_ROUTING_ANNOTATION, "")).lower() == "true"
    return {
        "apiVersion": API_VERSION,
        "kind": "Service",
        "metadata": object_metadata(pod.name, namespace, owner, pod.labels, service_annotations),
        "spec": {
            "template": {
                "metadata": {"labels": template_labels, "annotations": template_annotations},
                "spec": revision_spec,
            },
            "traffic": traffic(rolled_out, spec.get("canaryTrafficPercent"), tag_routing),
        },
    }


def is_revision_of(ksvc_name: str, revision: str) -> bool:
    """Whether `revision` is one Knative names for the Knative Service `ksvc_name`: `<name>-00001`,
    by Knative's `kmeta.ChildName`, which puts a hash in a name that would be over 63 characters."""
    head, _, generation = revision.rpartition("-")
    if not generation.isdigit():
        return False
    suffix = f"-{generation}"
    if len(ksvc_name) > NAME_LIMIT - len(suffix):
        kept = NAME_LIMIT - 32 - len(suffix)  # what is kept of the name before its md5, in hex
        return head == ksvc_name[:kept] + hashlib.md5(ksvc_name.encode()).hexdigest()
    return head == ksvc_name


def dropped_initial_scale(annotations: dict[str, str]) -> str | None:
    """An `initial-scale` annotation that is not an integer (which KServe drops, as Knative would refuse
    it), if there is one."""
    value = annotations.get(INITIAL_SCALE)
    return value if value is not None and annotated_initial_scale(value) is None else None


def scaling_annotations(spec: dict, annotations: dict[str, str]) -> dict[str, str]:
    """KServe's autoscaling annotations of a revision, from a component's fields."""
    scaling = {CLASS: annotations.get(CLASS) or KPA_CLASS}
    if spec.get("scaleTarget") is not None:
        scaling[TARGET] = str(spec["scaleTarget"])
    if spec.get("scaleMetric"):
        scaling[METRIC] = str(spec["scaleMetric"])
    minimum = spec.get("minReplicas")
    scaling[MIN_SCALE] = str(1 if minimum is None else int(minimum))
    if spec.get("maxReplicas"):
        scaling[MAX_SCALE] = str(int(spec["maxReplicas"]))
    return scaling


def traffic(rolled_out: str | None, canary_percent: int | None, tag_routing: bool) -> list[dict]:
    """`spec.traffic` of a Knative Service (`modelplane.control.traffic`'s split, as Knative targets)."""
    targets = traffic_targets("", True, rolled_out, canary_percent)
    entries = []
    for target in targets:
        if target.latest:
            entry: dict = {"latestRevision": True, "percent": target.percent}
            if tag_routing:
                entry["tag"] = "latest"
        else:
            entry = {"revisionName": target.revision, "latestRevision": False, "percent": target.percent}
            entry["tag"] = "prev"
        entries.append(entry)
    return entries
