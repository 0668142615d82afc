"""The resource metrics a component scales on when a HorizontalPodAutoscaler scales it.

KServe scales a Standard-mode component with an HPA (the `hpa` class, its default) or a KEDA
ScaledObject (`keda`), on cpu and memory; Knative scales on them too under its HPA class
(`autoscaling.knative.dev/class: hpa.autoscaling.knative.dev`). The metrics are written as
Kubernetes' autoscaling/v2 `MetricSpec`s, which the operator puts in the HPA it creates and
`modelplane up` measures itself (control/hpa_settings.py):

- `autoScaling.metrics`: its `Resource` entries, as they are;
- else `scaleMetric` (cpu by default) at `scaleTarget` (cpu: 80% of the request), as a
  `scaleMetricType` target (Utilization by default; memory values are MiB);
- a `Value` target of either as an `AverageValue` one: the API server refuses a resource metric
  without a utilization or an average value, and for a resource the two mean the same;
- under Knative's HPA class, the `metric` and `target` annotations as Knative reads them: cpu at a
  utilization, memory at an average value in MiB.

    resource_scaling_spec(component_spec, annotations, mode)   # the revision template's `hpa`, or None
"""

from __future__ import annotations

import copy
import math

from modelplane.api.constants import (
    AUTOSCALER_CLASS_ANNOTATION,
    HPA_METRICS,
    KNATIVE_AUTOSCALER_CLASS_ANNOTATION,
    KNATIVE_HPA_CLASS,
    STANDARD,
)
from modelplane.control.autoscaling_settings import as_number

DEFAULT_CPU_UTILIZATION = 80
KNATIVE_METRIC = "autoscaling.knative.dev/metric"
KNATIVE_TARGET = "autoscaling.knative.dev/target"
HPA, KEDA = "hpa", "keda"


def hpa_metrics(spec: dict) -> list[dict]:
    """The metrics of the HPA KServe makes for a Standard-mode component (empty: the HPA's default,
    cpu at 80%)."""
    metrics = (spec.get("autoScaling") or {}).get("metrics") or []
    if metrics:
        return [
            {
                "type": "Resource",
                "resource": {"name": m["resource"]["name"], "target": _target(m["resource"])},
            }
            for m in metrics
            if m.get("type") == "Resource" and isinstance(m.get("resource"), dict)
        ]
    metric = spec.get("scaleMetric") or "cpu"
    target = spec.get("scaleTarget")
    if metric not in HPA_METRICS:  # concurrency or rps, which an HPA cannot measure
        metric, target = "cpu", None
    if metric == "memory" and target is None:
        return []
    metric_type = spec.get("scaleMetricType") or "Utilization"
    value = DEFAULT_CPU_UTILIZATION if target is None else int(target)
    return [
        {
            "type": "Resource",
            "resource": {"name": metric, "target": _simple_target(metric, metric_type, value)},
        }
    ]


def knative_hpa_metrics(spec: dict, annotations: dict) -> list[dict]:
    """The metrics Knative's HPA class gives a revision: cpu at a utilization (`ceil(target)`%), memory
    at an average of `target` MiB per replica; without a target, the HPA's default."""
    metric = spec.get("scaleMetric") or annotations.get(KNATIVE_METRIC) or "cpu"
    target = spec.get("scaleTarget")
    if target is None and KNATIVE_TARGET in annotations:
        target = as_number(KNATIVE_TARGET, annotations[KNATIVE_TARGET])
    if target is None or metric not in HPA_METRICS:
        return []
    if metric == "cpu":
        return [_resource("cpu", {"type": "Utilization", "averageUtilization": math.ceil(target)})]
    return [_resource("memory", {"type": "AverageValue", "averageValue": f"{int(target)}Mi"})]


def resource_scaling_spec(spec: dict, annotations: dict, mode: str) -> dict | None:
    """What a revision template records when an HPA-like autoscaler scales the component on its cpu or
    memory (`{"class", "metrics", "behavior"}`), or None when it scales on its requests or not at all.

    In Standard mode that is a component with a cpu or memory `scaleMetric`, any `autoScaling.metrics`,
    or an `hpa` or `keda` class named in the annotation (KServe's HPA default, cpu at 80%, applies to a
    component that names neither a class nor a metric only on a cluster: `modelplane up` scales such a
    component on its requests, as it does one whose KEDA metrics are all queries); in Knative mode, the
    HPA class."""
    if mode == STANDARD:
        autoscaler = annotations.get(AUTOSCALER_CLASS_ANNOTATION)
        if autoscaler not in (None, HPA, KEDA):
            return None
        asked = (
            autoscaler is not None
            or spec.get("scaleMetric") in HPA_METRICS
            or bool((spec.get("autoScaling") or {}).get("metrics"))
        )
        if not asked:
            return None
        metrics = hpa_metrics(spec)
        if not metrics and (spec.get("autoScaling") or {}).get("metrics"):
            return None  # KEDA's queries and pod metrics only: nothing here measures them
        found: dict = {"class": autoscaler or HPA, "metrics": metrics}
    elif annotations.get(KNATIVE_AUTOSCALER_CLASS_ANNOTATION) == KNATIVE_HPA_CLASS:
        found = {"class": KNATIVE_HPA_CLASS, "metrics": knative_hpa_metrics(spec, annotations)}
    else:
        return None
    behavior = (spec.get("autoScaling") or {}).get("behavior")
    if behavior:
        found["behavior"] = copy.deepcopy(behavior)
    return found


def _resource(name: str, target: dict) -> dict:
    return {"type": "Resource", "resource": {"name": name, "target": target}}


def _simple_target(metric: str, metric_type: str, value: int) -> dict:
    if metric_type == "Utilization":
        return {"type": "Utilization", "averageUtilization": value}
    quantity = f"{value}Mi" if metric == "memory" else str(value)
    return {"type": "AverageValue", "averageValue": quantity}


def _target(resource: dict) -> dict:
    """A KServe MetricTarget as Kubernetes' (a Value, or an amount given as `value`, as an AverageValue)."""
    target = resource.get("target") or {}
    if (target.get("type") or "Utilization") == "Utilization":
        return {"type": "Utilization", "averageUtilization": target.get("averageUtilization")}
    return {"type": "AverageValue", "averageValue": str(target.get("averageValue", target.get("value")))}
