"""The one entry point for every create and update: default a resource, then check it.

The steps follow the Kubernetes API server with KServe's webhooks installed:
1. drop `key: null` entries, and check field types against the CRD schema (as written);
2. apply the defaulting webhook (InferenceService only; a Secret's `stringData` is folded into `data`);
3. check the defaulted resource against the schema (required fields), and fill the schema's defaults;
4. apply the validating webhook's rules.

Fields the schema does not declare are left in place (see `unknown_fields`): the API server prunes them,
as `modelplane up`'s store does (`schema.drop_unknown_fields`).
"""

from __future__ import annotations

from collections.abc import Iterable

from . import schema
from .config import DEFAULT_CONFIG, AdmissionConfig
from .constants import FRAMEWORK_SHORTHANDS
from .defaults import default_inference_service
from .errors import FieldError, ValidationError
from .kinds import INFERENCE_SERVICE, KINDS, SECRET, kind_of, wrong_version_hint
from .secrets import written_secret
from .validation import semantic_errors


def admit(
    resource: dict,
    *,
    old: dict | None = None,
    existing: Iterable[dict] = (),
    config: AdmissionConfig = DEFAULT_CONFIG,
) -> dict:
    """The resource as it should be stored, or ValidationError listing every problem.

    `old` is the stored version when this is an update. `existing` are the other resources of the
    same kind and scope, which ServingRuntime priorities are checked against. The input is not changed.
    """
    if not isinstance(resource, dict):
        raise ValidationError([FieldError("", "a resource must be an object")])
    kind = kind_of(resource)
    if kind is None:
        raise ValidationError([_unknown_kind_error(resource)])
    resource = schema.prune_nulls(resource)
    _raise_if(
        [e for e in schema.schema_errors(resource, kind) if e.message != "Required value"]
        + _identity_errors(resource, old)
    )
    written = resource
    if kind == INFERENCE_SERVICE:
        resource = default_inference_service(resource, config, old=old)
    elif kind == SECRET:
        resource = written_secret(resource, old)
    _raise_if(_as_written(schema.schema_errors(resource, kind), written, resource))
    schema.apply_schema_defaults(resource, kind)
    old = schema.prune_nulls(old) if old else None
    _raise_if(_as_written(semantic_errors(resource, kind, old=old, existing=existing), written, resource))
    return resource


def unknown_fields(resource: dict) -> list[str]:
    """The paths of the fields in a resource that its schema does not declare (not acted on)."""
    return [field.path for field in unknown_field_details(resource)]


def unknown_field_details(resource: dict) -> list[schema.UnknownField]:
    """The fields a resource's schema does not declare, each with the declared field it most looks like."""
    kind = kind_of(resource)
    return schema.unknown_field_details(resource, kind) if kind is not None else []


def _raise_if(errors: list[FieldError]) -> None:
    if errors:
        raise ValidationError(errors)


def _as_written(errors: list[FieldError], written: dict, defaulted: dict) -> list[FieldError]:
    """Errors about a `model` that defaulting made from a shorthand, pointed at the shorthand the user wrote."""
    predictor = _predictor(written)
    shorthand = next((name for name in FRAMEWORK_SHORTHANDS if isinstance(predictor.get(name), dict)), None)
    if shorthand is None or shorthand in _predictor(defaulted):
        return errors
    model, written_as = "spec.predictor.model", f"spec.predictor.{shorthand}"
    return [
        FieldError(written_as + e.path[len(model) :], e.message)
        if e.path == model or e.path.startswith((model + ".", model + "["))
        else e
        for e in errors
    ]


def _predictor(resource: dict) -> dict:
    predictor = (resource.get("spec") or {}).get("predictor")
    return predictor if isinstance(predictor, dict) else {}


def _identity_errors(resource: dict, old: dict | None) -> list[FieldError]:
    metadata = resource.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
        return [FieldError("metadata.name", "Required value: name is required")]
    if old is not None and old.get("metadata", {}).get("name") != metadata["name"]:
        return [FieldError("metadata.name", "Invalid value: the name of a resource cannot be changed")]
    return []


def _unknown_kind_error(resource: dict) -> FieldError:
    kind, api_version = resource.get("kind"), resource.get("apiVersion")
    hint = wrong_version_hint(resource)
    if hint:
        return FieldError("apiVersion", f'Unsupported value: "{api_version}": {hint}')
    served = ", ".join(k.kind for k in KINDS)
    return FieldError("kind", f'Unsupported value: "{kind}": modelplane serves {served} in serving.kserve.io')
