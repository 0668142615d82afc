"""What would be refused in the scaling settings one revision ends up with: Knative's webhook on its
class and metric annotations (in Knative mode), and the autoscaler's reading of the rest.

Each problem comes with the annotation (or field) it concerns, so that the caller can say where that
value was set: the service's annotations, a component's own, or its runtime's.

    for key, message in scaling_problems(component_spec, annotations, scaling, mode): ...
"""

from __future__ import annotations

from collections.abc import Iterator

from modelplane.api.constants import (
    KNATIVE_AUTOSCALER_CLASS_ANNOTATION,
    KNATIVE_HPA_CLASS,
    KPA_METRICS,
    STANDARD,
)
from modelplane.control.autoscaling_settings import METRIC, AutoscalingError, revision_scaling
from modelplane.control.hpa_metrics import resource_scaling_spec
from modelplane.control.hpa_settings import resource_scaling

KPA_CLASS = "kpa.autoscaling.knative.dev"
Problem = tuple[str | None, str]  # the annotation or field it concerns (None: the spec), the message


def scaling_problems(component_spec: dict, annotations: dict, scaling: dict, mode: str) -> Iterator[Problem]:
    """What is wrong with a component's scaling, given the annotations its revision gets (`annotations`)
    and those of them that tune its autoscaler (`scaling`, revision_templates.scaling_annotations)."""
    if mode != STANDARD:
        yield from knative_annotation_problems(scaling, component_spec)
    try:
        on_resources = resource_scaling_spec(component_spec, annotations, mode)
        if on_resources is not None:
            resource_scaling({**component_spec, "hpa": on_resources})
        else:
            revision_scaling({**component_spec, "scalingAnnotations": scaling})
    except AutoscalingError as error:
        yield error.key, str(error)


def knative_annotation_problems(annotations: dict, component_spec: dict) -> Iterator[Problem]:
    """Knative's webhook on the class and metric annotations: a class of Knative's own domain is KPA or
    HPA (another domain's autoscaler is left alone), and the KPA scales on concurrency or rps. A
    `scaleMetric` is what KServe writes as the metric annotation, over any the user set."""
    autoscaler = annotations.get(KNATIVE_AUTOSCALER_CLASS_ANNOTATION)
    if (
        autoscaler is not None
        and autoscaler.endswith(".knative.dev")
        and autoscaler
        not in (
            KPA_CLASS,
            KNATIVE_HPA_CLASS,
        )
    ):
        yield (
            KNATIVE_AUTOSCALER_CLASS_ANNOTATION,
            f"invalid value: {autoscaler}: {KNATIVE_AUTOSCALER_CLASS_ANNOTATION}"
            f" (Knative's classes are {KPA_CLASS} and {KNATIVE_HPA_CLASS})",
        )
    if METRIC not in annotations or component_spec.get("scaleMetric"):
        return
    metric = annotations[METRIC]
    autoscaler = autoscaler or KPA_CLASS
    if (autoscaler == KPA_CLASS and metric not in KPA_METRICS) or (
        autoscaler == KNATIVE_HPA_CLASS and not metric
    ):
        allowed = (
            f"{KPA_CLASS} scales on {' or '.join(KPA_METRICS)}; cpu and memory need "
            f"{KNATIVE_AUTOSCALER_CLASS_ANNOTATION}: {KNATIVE_HPA_CLASS}"
            if autoscaler == KPA_CLASS
            else f"{KNATIVE_HPA_CLASS} needs a metric"
        )
        yield METRIC, f"invalid value: {metric}: {METRIC} ({allowed})"
