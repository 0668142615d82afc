"""Admission as both platforms run it: `modelplane.api`'s defaulting and validation, then what the
platform itself needs of a resource.

An InferenceGraph is also checked for what its router could not run (a cycle of nodes, a `nodeName`
that names no node, a condition Go can never match): `modelplane.graph.validation`. An
InferenceService's autoscaling annotations are checked as the autoscaler reads them (a `window` of 2s
is refused here rather than ignored later), in the values each component's revision gets: a service's
annotation that a component sets for itself does not reach it (`scaling_checks.py`).

A refusal reads as Kubernetes words it: `InferenceService.serving.kserve.io "iris" is invalid: ...`
(`refusal_message`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

from modelplane.api.admission import admit
from modelplane.api.errors import FieldError, ValidationError
from modelplane.api.kinds import INFERENCE_GRAPH, INFERENCE_SERVICE, kind_of
from modelplane.api.validation.inference_service import timeout_errors
from modelplane.control.modelmesh import deployment_mode
from modelplane.control.progress_deadline import (
    PROGRESS_DEADLINE_ANNOTATION,
    ProgressDeadlineError,
    annotated_progress_deadline,
)
from modelplane.control.revision_templates import COMPONENTS, component_annotations, scaling_annotations
from modelplane.control.scaling_checks import scaling_problems
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
    problems = []
    for path, spec in _components(scaled):
        try:
            annotated_progress_deadline(component_annotations(metadata, spec))
        except ProgressDeadlineError as error:
            problems.append((*_set_at(metadata, path, spec, PROGRESS_DEADLINE_ANNOTATION), str(error)))
    return _said_once(problems)


def _components(scaled: dict[str, object]) -> Iterator[tuple[str, dict]]:
    return ((path, spec) for path, spec in scaled.items() if isinstance(spec, dict))


def _set_at(metadata: dict, path: str, spec: dict, key: str | None) -> tuple[str, str | None]:
    """Where the value a component's revision gets for `key` was set: the component's own annotations,
    the service's (with the component that inherits it), or else the component's fields."""
    own = spec.get("annotations") if isinstance(spec.get("annotations"), dict) else {}
    if key in own:
        return f"{path}.annotations", None
    if key in (metadata.get("annotations") or {}):
        return "metadata.annotations", path.removeprefix("spec").removeprefix(".") or None
    return path, None


def _said_once(problems: Iterable[tuple[str, str | None, str]]) -> Iterator[FieldError]:
    """Each (path, inheriting component, message) once at its path; a value of the service's that
    several components inherit names them all."""
    heirs: dict[tuple[str, str], list[str]] = {}
    for path, heir, message in problems:
        names = heirs.setdefault((path, message), [])
        if heir:
            names.append(heir)
    for (path, message), names in heirs.items():
        yield FieldError(
            path, f"{message} (inherited by the {' and the '.join(names)})" if names else message
        )


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
    """What Knative's webhook or the autoscaler would refuse in the scaling settings each scaled part
    of `resource` (by path) ends up with: a service's annotation that every component sets for itself
    reaches no revision, and is not judged."""
    metadata = resource.get("metadata") or {}
    mode = deployment_mode(resource)
    problems = []
    for path, spec in _components(scaled):
        annotations = component_annotations(metadata, spec)
        scaling = scaling_annotations(metadata, mode, spec)
        for key, message in scaling_problems(spec, annotations, scaling, mode):
            problems.append((*_set_at(metadata, path, spec, key), message))
    return _said_once(problems)


def _raise_if_any(errors: Iterator[FieldError]) -> None:
    found = list(errors)
    if found:
        raise ValidationError(found)
