"""Admission for the store: `modelplane.api`'s defaulting and validation, as the store's hook.

A `ValidationError` becomes `Invalid` (HTTP 422), worded as Kubernetes words it:
`InferenceService.serving.kserve.io "iris" is invalid: spec.predictor: ...`.

An InferenceGraph is also checked for what its router could not run (a cycle of nodes, a `nodeName`
that names no node, a condition that does not parse): `modelplane.graph.validation`.
"""

from __future__ import annotations

from collections.abc import Callable

from modelplane.api.admission import admit as api_admit
from modelplane.api.errors import FieldError, ValidationError
from modelplane.api.kinds import INFERENCE_GRAPH, kind_of
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
    return admission_from(admit_with_graph_checks)


def admit_with_graph_checks(resource: Resource, **context) -> Resource:
    """`modelplane.api.admit`, then, for an InferenceGraph, the structure its router needs."""
    admitted = api_admit(resource, **context)
    if kind_of(admitted) == INFERENCE_GRAPH:
        problems = validate_graph_spec(admitted.get("spec") or {})
        if problems:
            raise ValidationError([FieldError("spec.nodes", problem) for problem in problems])
    return admitted


def _invalid(resource: Resource, error: ValidationError) -> Invalid:
    kind = kind_of(resource)
    name = (resource.get("metadata") or {}).get("name", "")
    what = f"{kind.kind}.{kind.group}" if kind else str(resource.get("kind"))
    details = {
        "name": name,
        "group": kind.group if kind else "",
        "kind": kind.plural if kind else "",
        "causes": [
            {"field": e.path, "message": e.message, "reason": "FieldValueInvalid"} for e in error.errors
        ],
    }
    return Invalid(f'{what} "{name}" is invalid: {error}', details)
