"""Admission as both platforms run it: `modelplane.api`'s defaulting and validation, then what the
platform itself needs of a resource.

An InferenceGraph is also checked for what its router could not run (a cycle of nodes, a `nodeName`
that names no node, a condition Go can never match): `modelplane.graph.validation`. An
InferenceService's autoscaling annotations are checked as the autoscaler reads them (a `window` of 2s
is refused here rather than ignored later).

A refusal reads as Kubernetes words it: `InferenceService.serving.kserve.io "iris" is invalid: ...`
(`refusal_message`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from modelplane.api.admission import admit
from modelplane.api.constants import (
    KNATIVE_AUTOSCALER_CLASS_ANNOTATION,
    KNATIVE_HPA_CLASS,
    KPA_METRICS,
    STANDARD,
)
from modelplane.api.errors import FieldError, ValidationError
from modelplane.api.kinds import INFERENCE_GRAPH, INFERENCE_SERVICE, kind_of
from modelplane.api.validation.inference_service import timeout_errors
from modelplane.control.autoscaling_settings import METRIC, PREFIX, AutoscalingError, revision_scaling
from modelplane.control.hpa_metrics import resource_scaling_spec
from modelplane.control.hpa_settings import resource_scaling
from modelplane.control.modelmesh import deployment_mode
from modelplane.control.progress_deadline import ProgressDeadlineError, annotated_progress_deadline
from modelplane.control.revision_templates import COMPONENTS, component_annotations, scaling_annotations
from modelplane.graph.validation import validate_graph_spec


def admit_with_platform_checks(resource: dict, **context) -> dict:
    """`modelplane.api.admit`, then what the platform needs: for an InferenceGraph, the structure its
    router needs; for an InferenceService, autoscaling settings the autoscaler can use."""
    admitted = admit(resource, **context)
    kind = kind_of(admitted)
    if kind == INFERENCE_GRAPH:
        spec = admitted.get("spec") or {}
        problems = validate_graph_spec(spec)
        if problems:
            raise ValidationError([FieldError("spec.nodes", problem) for problem in problems])
        _raise_if_any(
            [*_replica_range_errors(spec), *timeout_errors(spec.get("timeout"), ["spec", "timeout"])]
        )
        _raise_if_any(_autoscaling_errors(admitted, {"spec": spec}))
    elif kind == INFERENCE_SERVICE:
        spec = admitted.get("spec") or {}
        scaled = {f"spec.{component}": spec.get(component) for component in COMPONENTS}
        _raise_if_any(
            itertools.chain(
                _autoscaling_errors(admitted, scaled), _progress_deadline_errors(admitted, scaled)
            )
        )
    return admitted


def _progress_deadline_errors(resource: dict, scaled: dict[str, object]) -> Iterator[FieldError]:
    metadata = resource.get("metadata") or {}
    for path, given in _annotated(metadata, scaled):
        try:
            annotated_progress_deadline(given)
        except ProgressDeadlineError as error:
            yield FieldError(path, str(error))
            return


def _annotated(metadata: dict, scaled: dict[str, object]) -> Iterator[tuple[str, dict]]:
    """The service's annotations (at `metadata.annotations`), then each component's merged with them
    (at its own `annotations`, where it has some): what each component's revision is annotated with."""
    yield "metadata.annotations", metadata.get("annotations") or {}
    for path, spec in scaled.items():
        if isinstance(spec, dict) and isinstance(spec.get("annotations"), dict) and spec["annotations"]:
            yield f"{path}.annotations", component_annotations(metadata, spec)


KPA_CLASS = "kpa.autoscaling.knative.dev"


def knative_annotation_errors(annotations: dict, path: str = "metadata.annotations") -> Iterator[FieldError]:
    """Knative's webhook on the class and metric annotations: a class of Knative's own domain is KPA or
    HPA (another domain's autoscaler is left alone), and the KPA scales on concurrency or rps."""
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
        yield FieldError(
            path,
            f"invalid value: {autoscaler}: {KNATIVE_AUTOSCALER_CLASS_ANNOTATION}"
            f" (Knative's classes are {KPA_CLASS} and {KNATIVE_HPA_CLASS})",
        )
    if METRIC not in annotations:
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
        yield FieldError(path, f"invalid value: {metric}: {METRIC} ({allowed})")


def refusal_message(resource: dict, error: ValidationError) -> str:
    """`<Kind>.<group> "<name>" is invalid: <every problem>`, as the Kubernetes API server says it."""
    kind = kind_of(resource)
    name = (resource.get("metadata") or {}).get("name", "")
    what = kind.group_kind if kind else str(resource.get("kind"))
    return f'{what} "{name}" is invalid: {error}'


def _replica_range_errors(spec: dict) -> Iterator[FieldError]:
    """An InferenceGraph's minReplicas above its maxReplicas (0 is no maximum). KServe's webhook checks
    this for an InferenceService only; a graph's goes on to Knative (or an HPA), which refuses it, and
    the graph is never Ready. The InferenceService's message says it here too."""
    min_replicas, max_replicas = spec.get("minReplicas"), spec.get("maxReplicas")
    if isinstance(min_replicas, int) and isinstance(max_replicas, int) and 0 < max_replicas < min_replicas:
        yield FieldError("spec.minReplicas", "'MinReplicas' cannot be greater than MaxReplicas")


def _autoscaling_errors(resource: dict, scaled: dict[str, object]) -> Iterator[FieldError]:
    """What the autoscaler would refuse in each scaled part of `resource` (by path), or in its
    annotations."""
    metadata = resource.get("metadata") or {}
    mode = deployment_mode(resource)
    if mode != STANDARD:
        said = set()  # a component's annotations hold the service's: each problem once, where it is first
        for where, given in _annotated(metadata, scaled):
            for error in knative_annotation_errors(given, where):
                if error.message not in said:
                    said.add(error.message)
                    yield error
    for path, spec in scaled.items():
        if not isinstance(spec, dict):
            continue
        merged = component_annotations(metadata, spec)
        own = isinstance(spec.get("annotations"), dict) and any(
            k.startswith(PREFIX) for k in spec["annotations"]
        )
        try:
            on_resources = resource_scaling_spec(spec, merged, mode)
            if on_resources is not None:
                resource_scaling({**spec, "hpa": on_resources})
            else:
                revision_scaling({**spec, "scalingAnnotations": scaling_annotations(metadata, mode, spec)})
        except AutoscalingError as error:
            at = (
                (f"{path}.annotations" if own else "metadata.annotations")
                if str(error).startswith(PREFIX)
                else path
            )
            yield FieldError(at, str(error))


def _raise_if_any(errors: Iterator[FieldError]) -> None:
    found = list(errors)
    if found:
        raise ValidationError(found)
