"""Admission for the store: `modelplane.api`'s defaulting and validation, as the store's hook.

A `ValidationError` becomes `Invalid` (HTTP 422), worded as Kubernetes words it:
`InferenceService.serving.kserve.io "iris" is invalid: spec.predictor: ...`. What the platform checks
beyond the webhooks' rules (graphs its router could not run, autoscaling annotations) is
`modelplane.control.admission`, which the operator shares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from modelplane.api.admission import admit as api_admit
from modelplane.api.errors import FieldError, ValidationError
from modelplane.api.kinds import CLUSTER_SERVING_RUNTIME, INFERENCE_SERVICE, SERVING_RUNTIME, kind_of
from modelplane.control.admission import admit_with_platform_checks, refusal_message
from modelplane.control.payload_logging import logger_url_errors
from modelplane.control.rolling_update import rolling_update_errors
from modelplane.local.api.errors import Invalid, invalid_cause, invalid_details
from modelplane.local.api.store import Admit, Resource
from modelplane.local.api.unhonored_fields import refused_fields
from modelplane.local.replicas.container_env import env_errors
from modelplane.local.replicas.lifecycle import lifecycle_errors


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
    """The admission the control plane runs: KServe's defaulting and validation, the graph checks, and
    what only this machine needs (a logger URL the gateway can send to, no field it refuses:
    `api/field_dispositions.py`)."""
    return admission_from(_admit_here)


def _admit_here(resource: Resource, **context) -> Resource:
    admitted = admit_with_platform_checks(resource, **context)
    errors = [FieldError(field.path, field.why) for field in refused_fields(admitted)]
    kind = kind_of(admitted)
    if kind == INFERENCE_SERVICE:
        errors += logger_url_errors(admitted)
        errors += rolling_update_errors(admitted)
    if kind in (INFERENCE_SERVICE, SERVING_RUNTIME, CLUSTER_SERVING_RUNTIME):
        errors += list(_container_errors(admitted.get("spec"), "spec"))
    if errors:
        raise ValidationError(errors)
    return admitted


def _container_errors(value: object, path: str) -> Iterator[FieldError]:
    """What the API server refuses in the `env`, `envFrom` and `lifecycle` of every container of a
    resource (beyond what the schema says)."""
    if isinstance(value, dict):
        if isinstance(value.get("env"), list) or isinstance(value.get("envFrom"), list):
            yield from env_errors(value, path)
        if isinstance(value.get("lifecycle"), dict):
            yield from lifecycle_errors(value, path)
        for key, item in value.items():
            yield from _container_errors(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _container_errors(item, f"{path}[{index}]")


def _invalid(resource: Resource, error: ValidationError) -> Invalid:
    kind = kind_of(resource)
    name = (resource.get("metadata") or {}).get("name", "")
    details = invalid_details(kind, name) if kind else {"name": name, "group": "", "kind": ""}
    details["causes"] = [invalid_cause(e.path, e.message) for e in error.errors]
    return Invalid(refusal_message(resource, error), details)
