"""Autoscaling rules for a component, which depend on the deployment mode and autoscaler class."""

from __future__ import annotations

from collections.abc import Iterator

from .. import paths
from ..constants import (
    AUTOSCALER_CLASS_ANNOTATION,
    DEPLOYMENT_MODE_ANNOTATION,
    HPA_METRICS,
    KNATIVE_AUTOSCALER_CLASS_ANNOTATION,
    KNATIVE_HPA_CLASS,
    KPA_METRICS,
    STANDARD,
)
from ..errors import FieldError
from ..quantity import MEBIBYTE, parse_quantity
from .common import dicts, mapping

TARGET_UTILIZATION_MESSAGE = "the target utilization percentage should be a [1-100] integer"
_SOURCES = {
    "External": ("external", "metricSpec.External is not set for external metric source type"),
    "PodMetric": ("podmetric", "metricSpec.PodMetric is not set for pod metric source type"),
}


def autoscaling_errors(annotations: dict, component: dict, path: list) -> Iterator[FieldError]:
    """Standard mode checks HPA or KEDA settings (only when the class annotation names one); any other
    mode checks Knative's KPA settings, or HPA ones under the Knative HPA class."""
    if annotations.get(DEPLOYMENT_MODE_ANNOTATION) == STANDARD:
        autoscaler_class = annotations.get(AUTOSCALER_CLASS_ANNOTATION)
        if autoscaler_class == "hpa":
            yield from _hpa_errors(component, path)
        elif autoscaler_class == "keda":
            yield from _keda_errors(component, path)
    elif annotations.get(KNATIVE_AUTOSCALER_CLASS_ANNOTATION) == KNATIVE_HPA_CLASS:
        yield from _hpa_errors(component, path)
    else:
        yield from _kpa_errors(component, path)


def _hpa_errors(component: dict, path: list) -> Iterator[FieldError]:
    metric = component.get("scaleMetric", "cpu")
    if metric not in HPA_METRICS:
        yield FieldError(paths.join([*path, "scaleMetric"]), f"[{metric}] is not a supported metric")
        return
    target = component.get("scaleTarget")
    if target is not None:
        # KServe rejects any target above 100, for memory too.
        if (metric == "cpu" and target < 1) or target > 100:
            yield FieldError(paths.join([*path, "scaleTarget"]), TARGET_UTILIZATION_MESSAGE)
            return
        if metric == "memory" and target < 1:
            yield FieldError(
                paths.join([*path, "scaleTarget"]), "the target memory should be greater than 1 MiB"
            )
            return
    for index, metric_spec in enumerate(dicts(mapping(component.get("autoScaling")).get("metrics"))):
        where = paths.join([*path, "autoScaling", "metrics", index])
        metric_type = metric_spec.get("type")
        if metric_type != "Resource":
            yield FieldError(
                where,
                f"invalid HPA metric source type with value [{metric_type}],valid metric source types are Resource",
            )
        elif "resource" not in metric_spec:
            yield FieldError(where, "metricSpec.Resource is not set for resource metric source type")


def _keda_errors(component: dict, path: list) -> Iterator[FieldError]:
    if "scaleMetric" in component:
        yield FieldError(paths.join([*path, "scaleMetric"]), "ScaleMetric is not supported for KEDA")
        return
    for index, metric_spec in enumerate(dicts(mapping(component.get("autoScaling")).get("metrics"))):
        where = [*path, "autoScaling", "metrics", index]
        message = _keda_metric_problem(metric_spec)
        if message:
            yield FieldError(paths.join(where), message)


def _keda_metric_problem(metric_spec: dict) -> str | None:
    metric_type = metric_spec.get("type")
    if metric_type == "Resource":
        resource = metric_spec.get("resource")
        if resource is None:
            return "metricSpec.Resource is not set for resource metric source type"
        target = mapping(resource.get("target"))
        name = resource.get("name")
        if name == "cpu":
            if target.get("type") != "Utilization":
                return "the cpu target value type should be Utilization"
        elif name == "memory":
            if target.get("type") not in ("AverageValue", "Utilization"):
                return "the memory target value type should be AverageValue or Utilization"
            if target.get("type") == "AverageValue":
                amount = parse_quantity(target.get("averageValue"))
                if amount is None or amount < MEBIBYTE:
                    return "the memory target value should be greater than 1 MiB"
        else:
            return f"resource type {name} is not supported"
        return _target_problem(target)
    if metric_type in _SOURCES:
        field, missing = _SOURCES[metric_type]
        source = metric_spec.get(field)
        if source is None:
            return missing
        if not mapping(source.get("metric")).get("query"):
            return "the query should not be empty"
        target = mapping(source.get("target"))
        if target.get("value") is None:
            return "the target threshold value should not be empty"
        return _target_problem(target)
    return f"unknown KEDA metric type with value [{metric_type}].Valid types are Resource,External,PodMetric"


def _target_problem(target: dict) -> str | None:
    target_type = target.get("type")
    if target_type == "Utilization":
        utilization = target.get("averageUtilization")
        if utilization is None:
            return "the AverageUtilization type should be set"
        if not 1 <= utilization <= 100:
            return TARGET_UTILIZATION_MESSAGE
    elif target_type == "AverageValue" and target.get("averageValue") is None:
        return "the AverageValue type should be set"
    elif target_type == "Value" and target.get("value") is None:
        return "the Value type should be set"
    return None


def _kpa_errors(component: dict, path: list) -> Iterator[FieldError]:
    if "deploymentStrategy" in component:
        yield FieldError(
            paths.join([*path, "deploymentStrategy"]),
            "customizing deploymentStrategy is only supported for raw deployment mode",
        )
        return
    metric = component.get("scaleMetric", "concurrency")
    if metric not in KPA_METRICS:
        hint = ""
        if metric in HPA_METRICS:
            hint = (
                f" by Knative's default autoscaler ({', '.join(KPA_METRICS)}); {metric} needs the "
                f'{DEPLOYMENT_MODE_ANNOTATION}: "{STANDARD}" mode or the '
                f'{KNATIVE_AUTOSCALER_CLASS_ANNOTATION}: "{KNATIVE_HPA_CLASS}" annotation'
            )
        yield FieldError(paths.join([*path, "scaleMetric"]), f"[{metric}] is not a supported metric{hint}")
        return
    target = component.get("scaleTarget")
    if target is not None and metric == "rps" and target < 1:
        yield FieldError(paths.join([*path, "scaleTarget"]), "the target for rps should be greater than 1")
