"""Standard mode's autoscaler of a component, chosen by `serving.kserve.io/autoscalerClass`: an HPA
(`hpa`, the default), a KEDA ScaledObject (`keda`), or none (`external`, `none`), as KServe makes them.

- HPA: min `max(1, minReplicas)` (an HPA cannot scale to zero), max `max(maxReplicas, min)`; the
  metrics of `autoScaling.metrics`, else `scaleMetric` (cpu by default) at `scaleTarget` (cpu: 80%),
  as `control/hpa_metrics.py` writes them.
- KEDA: min `minReplicas` (0 allowed), max as the HPA's; a trigger per metric: cpu and memory,
  Prometheus and Graphite queries (`autoScaling.metrics[].external`), OpenTelemetry pod metrics
  (`podmetric`, through KEDA's OpenTelemetry scaler, the query narrowed to the component's pods).
- Both carry the component's annotations (KEDA's `autoscaling.keda.sh/paused-replicas`...).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from modelplane.api.constants import AUTOSCALER_CLASS_ANNOTATION, DEFAULT_MIN_REPLICAS
from modelplane.control.hpa_metrics import DEFAULT_CPU_UTILIZATION, HPA, hpa_metrics
from modelplane.kube.meta import object_metadata

EXTERNAL, NONE = "external", "none"
OTEL_SCALER_ADDRESS = "keda-otel-scaler.keda.svc:4318"
# KServe's `autoscaler` defaults in inferenceservice-config.
SCALE_UP_WINDOW, SCALE_DOWN_WINDOW = 0, 300


def autoscaler_class(resource: dict) -> str:
    annotations = (resource.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(AUTOSCALER_CLASS_ANNOTATION) or HPA)


def replica_bounds(spec: dict, floor: int = 1) -> tuple[int, int]:
    """(min, max) of an HPA or ScaledObject: min at least `floor`, max at least min."""
    low = spec.get("minReplicas")
    low = DEFAULT_MIN_REPLICAS if low is None else int(low)
    low = max(floor, low)
    high = max(int(spec.get("maxReplicas") or 0), low)
    return low, high


def horizontal_pod_autoscaler(
    name: str,
    namespace: str,
    owner: dict,
    labels: dict,
    spec: dict,
    min_replicas: int | None = None,
    *,
    annotations: Mapping[str, str] | None = None,
) -> dict:
    low, high = replica_bounds(spec)
    if min_replicas is not None:
        low = max(1, min_replicas)
        high = max(high, low)
    body: dict = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicas": low,
        "maxReplicas": high,
        "metrics": hpa_metrics(spec),
    }
    behavior = (spec.get("autoScaling") or {}).get("behavior")
    if behavior:
        body["behavior"] = copy.deepcopy(behavior)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": object_metadata(name, namespace, owner, labels, annotations),
        "spec": body,
    }


def scaled_object(
    name: str,
    namespace: str,
    owner: dict,
    labels: dict,
    spec: dict,
    min_replicas: int | None = None,
    *,
    annotations: Mapping[str, str] | None = None,
) -> dict:
    low, high = replica_bounds(spec, floor=0)
    if min_replicas is not None:
        low = min_replicas
        high = max(high, low, 1)
    behavior = (spec.get("autoScaling") or {}).get("behavior") or {
        "scaleUp": {"stabilizationWindowSeconds": SCALE_UP_WINDOW},
        "scaleDown": {"stabilizationWindowSeconds": SCALE_DOWN_WINDOW},
    }
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": object_metadata(name, namespace, owner, labels, annotations),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicaCount": low,
            "maxReplicaCount": max(high, 1),
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": copy.deepcopy(behavior)}},
            "triggers": _keda_triggers(spec, namespace, name),
        },
    }


def _keda_triggers(spec: dict, namespace: str, name: str) -> list[dict]:
    metrics = (spec.get("autoScaling") or {}).get("metrics") or []
    if not metrics:
        target = spec.get("scaleTarget")
        value = DEFAULT_CPU_UTILIZATION if target is None else int(target)
        return [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": str(value)}}]
    triggers = []
    for metric in metrics:
        kind = metric.get("type")
        if kind == "Resource" and isinstance(metric.get("resource"), dict):
            resource = metric["resource"]
            target = resource.get("target") or {}
            metric_type = target.get("type") or "Utilization"
            value = (
                target.get("averageUtilization")
                if metric_type == "Utilization"
                else target.get("averageValue", target.get("value"))
            )
            triggers.append(
                {"type": resource["name"], "metricType": metric_type, "metadata": {"value": str(value)}}
            )
        elif kind == "External" and isinstance(metric.get("external"), dict):
            triggers.append(_external_trigger(metric["external"]))
        elif kind == "PodMetric" and isinstance(metric.get("podmetric"), dict):
            triggers.append(_pod_metric_trigger(metric["podmetric"], namespace, name))
    return triggers


def _external_trigger(external: dict) -> dict:
    source = external.get("metric") or {}
    target = external.get("target") or {}
    metadata = {
        "serverAddress": str(source.get("serverAddress", "")),
        "query": str(source.get("query", "")),
        "threshold": str(target.get("value", target.get("averageValue", ""))),
    }
    backend = source.get("backend") or "prometheus"
    if backend == "prometheus" and source.get("namespace"):
        metadata["namespace"] = str(source["namespace"])
    authentication = external.get("authenticationRef") or {}
    if authentication.get("authModes"):
        metadata["authModes"] = str(authentication["authModes"])
    trigger: dict = {"type": backend, "metadata": metadata}
    reference = authentication.get("authenticationRef") or {}
    if reference.get("name"):
        trigger["authenticationRef"] = {"name": reference["name"]}
    return trigger


def _pod_metric_trigger(pod_metric: dict, namespace: str, name: str) -> dict:
    source = pod_metric.get("metric") or {}
    target = pod_metric.get("target") or {}
    metadata = {
        "scalerAddress": str(source.get("serverAddress") or OTEL_SCALER_ADDRESS),
        "metricQuery": _component_query(str(source.get("query") or ""), namespace, name),
        "targetValue": str(target.get("value", target.get("averageValue", ""))),
    }
    if source.get("operationOverTime"):
        metadata["operationOverTime"] = str(source["operationOverTime"])
    return {"type": "external", "metadata": metadata}


def _component_query(query: str, namespace: str, deployment: str) -> str:
    """KServe's `getKedaMetrics`: the query summed over the component's Deployment only."""
    return f'sum({query}{{namespace="{namespace}", deployment="{deployment}"}})'
