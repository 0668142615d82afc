"""Admission for the store: `modelplane.api`'s defaulting and validation, as the store's hook.

A `ValidationError` becomes `Invalid` (HTTP 422), worded as Kubernetes words it:
`InferenceService.serving.kserve.io "iris" is invalid: spec.predictor: ...`.

An InferenceGraph is also checked for what its router could not run (a cycle of nodes, a `nodeName`
that names no node, a condition that does not parse): `modelplane.graph.validation`. An
InferenceService's autoscaling annotations are checked as the autoscaler reads them (a `window` of 2s
is refused here rather than ignored later).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from modelplane.api.admission import admit as api_admit
from modelplane.api.errors import FieldError, ValidationError
from modelplane.api.kinds import INFERENCE_GRAPH, INFERENCE_SERVICE, kind_of
from modelplane.control.autoscaling_settings import PREFIX, AutoscalingError, revision_scaling
from modelplane.control.revision_templates import COMPONENTS, scaling_annotations
from modelplane.graph.validation import validate_graph_spec
from modelplane.local.api_errors import Invalid
from modelplane.local.store import Admit, Resource


def admission_from(admit: Callable[..., Resource] = api_admit) -> Admit:
    """The store hook that runs `admit(resource, old=..., existing=...)` (by default
    `modelplane.api.admit`) and turns its ValidationError into Invalid."""

    def hook(resource: Resource, old: Resource | None, existing: list[Resource]) -> Resource:
        try:
            return admit(resource, old=old, existing=existing)
        except ValidationError as error:
            raise _invalid(resource, error) from None

    return hook


def default_admission() -> Admit:
    """The admission the control plane runs: KServe's defaulting and validation, and the graph checks."""
    return admission_from(admit_with_platform_checks)


def admit_with_platform_checks(resource: Resource, **context) -> Resource:
    """`modelplane.api.admit`, then what the platform needs: for an InferenceGraph, the structure its
    router needs; for an InferenceService, autoscaling settings the autoscaler can use."""
    admitted = api_admit(resource, **context)
    kind = kind_of(admitted)
    if kind == INFERENCE_GRAPH:
        problems = validate_graph_spec(admitted.get("spec") or {})
        if problems:
            raise ValidationError([FieldError("spec.nodes", problem) for problem in problems])
        _raise_if_any(_autoscaling_errors(admitted, {"spec": admitted.get("spec")}))
    elif kind == INFERENCE_SERVICE:
        spec = admitted.get("spec") or {}
        scaled = {f"spec.{component}": spec.get(component) for component in COMPONENTS}
        _raise_if_any(_autoscaling_errors(admitted, scaled))
    return admitted


def _autoscaling_errors(resource: Resource, scaled: dict[str, object]) -> Iterator[FieldError]:
    """What the autoscaler would refuse in each scaled part of `resource` (by path), or in its
    annotations."""
    annotations = scaling_annotations(resource.get("metadata") or {})
    for path, spec in scaled.items():
        if not isinstance(spec, dict):
            continue
        try:
            revision_scaling({**spec, "scalingAnnotations": annotations})
        except AutoscalingError as error:
            yield FieldError("metadata.annotations" if str(error).startswith(PREFIX) else path, str(error))


def _raise_if_any(errors: Iterator[FieldError]) -> None:
    found = list(errors)
    if found:
        raise ValidationError(found)


def _invalid(resource: Resource, error: ValidationError) -> Invalid:
    kind = kind_of(resource)
    name = (resource.get("metadata") or {}).get("name", "")
    what = kind.group_kind if kind else str(resource.get("kind"))
    details = {
        "name": name,
        "group": kind.group if kind else "",
        "kind": kind.plural if kind else "",
        "causes": [
            {"field": e.path, "message": e.message, "reason": "FieldValueInvalid"} for e in error.errors
        ],
    }
    return Invalid(f'{what} "{name}" is invalid: {error}', details)
