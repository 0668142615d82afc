"""Structural checks against the CustomResourceDefinitions in `crds/`, as the Kubernetes API server does them.

Four jobs: report type errors with their field path, apply the schema's `default:` values, list the
fields a schema does not know (a caller may warn about them), and drop those fields, as the API server
prunes them from what it stores.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from . import paths
from .errors import FieldError
from .kinds import Kind

if TYPE_CHECKING:
    import jsonschema

_QUANTITY_PATTERN_START = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)"
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


@cache
def crd(kind: Kind) -> dict:
    """The CustomResourceDefinition of a kind."""
    text = (
        resources.files(__package__)
        .joinpath("crds", f"{kind.group or 'core'}_{kind.plural}.json")
        .read_text()
    )
    return json.loads(text)


@cache
def openapi_schema(kind: Kind) -> dict:
    """The OpenAPI v3 schema of the served version of a kind."""
    for version in crd(kind)["spec"]["versions"]:
        if version["name"] == kind.version:
            return version["schema"]["openAPIV3Schema"]
    raise LookupError(f"no schema for {kind.api_version} {kind.kind}")


def _is_int32(value: object) -> bool:
    return not isinstance(value, int) or _INT32[0] <= value <= _INT32[1]


def _is_int64(value: object) -> bool:
    return not isinstance(value, int) or _INT64[0] <= value <= _INT64[1]


def checked_schema(kind: Kind) -> dict:
    """A copy of the schema the API server checks a kind's resources against: the CRD's, with a
    canary's predictor as relaxed as the predictor (below)."""
    schema = copy.deepcopy(openapi_schema(kind))
    _relax_canary_implementations(schema)
    return schema


@cache
def _validator(kind: Kind) -> jsonschema.Draft7Validator:
    import jsonschema  # imported when first needed: it is slow to import, and the CLI rarely needs it

    schema = _accept_numeric_quantities(checked_schema(kind))
    format_checker = jsonschema.FormatChecker(formats=())
    format_checker.checks("int32")(_is_int32)
    format_checker.checks("int64")(_is_int64)
    return jsonschema.Draft7Validator(schema, format_checker=format_checker)


def _accept_numeric_quantities(schema: object) -> object:
    # A resource quantity may be written as a bare number (`cpu: 0.5`), which the API server accepts.
    if isinstance(schema, dict):
        if schema.get("x-kubernetes-int-or-string") and str(schema.get("pattern", "")).startswith(
            _QUANTITY_PATTERN_START
        ):
            schema["anyOf"] = [{"type": "number"}, {"type": "string"}]
        for value in schema.values():
            _accept_numeric_quantities(value)
    elif isinstance(schema, list):
        for value in schema:
            _accept_numeric_quantities(value)
    return schema


def _relax_canary_implementations(schema: dict) -> None:
    # KServe's CRD lets the predictor's implementations (`model`, `sklearn`...) leave out the container
    # `name`, but forgot to do the same for a canary's predictor, which then could not use `model`.
    canary = schema.get("properties", {}).get("spec", {}).get("properties", {}).get("canary")
    if canary is None:
        return
    for implementation in canary["items"]["properties"]["predictor"]["properties"].values():
        implementation.pop("required", None)


def prune_nulls(value: object) -> object:
    """A copy without the `key: null` entries of mappings; the API server drops them the same way."""
    if isinstance(value, dict):
        return {k: prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune_nulls(v) for v in value]
    return value


def schema_errors(resource: dict, kind: Kind) -> list[FieldError]:
    """Every place where the resource does not fit its kind's schema."""
    errors = sorted(_validator(kind).iter_errors(resource), key=lambda e: [str(p) for p in e.absolute_path])
    return [_field_error(e) for e in errors]


def _field_error(error: jsonschema.ValidationError) -> FieldError:
    path = list(error.absolute_path)
    value = error.instance
    keyword = error.validator
    if keyword == "required":
        missing = error.message.split("'")[1]
        return FieldError(paths.join([*path, missing]), "Required value")
    if keyword == "type":
        expected = error.validator_value
        return FieldError(
            paths.join(path), f"Invalid value: {_show(value)}: must be of type {_type_words(expected)}"
        )
    if keyword == "enum":
        supported = ", ".join(_show(v) for v in error.validator_value)
        return FieldError(
            paths.join(path), f"Unsupported value: {_show(value)}: supported values: {supported}"
        )
    if keyword == "pattern":
        return FieldError(
            paths.join(path), f"Invalid value: {_show(value)}: should match '{error.validator_value}'"
        )
    if keyword == "anyOf":
        return FieldError(paths.join(path), f"Invalid value: {_show(value)}: must be an integer or a string")
    if keyword == "format":
        bits = "32" if error.validator_value == "int32" else "64"
        return FieldError(
            paths.join(path), f"Invalid value: {_show(value)}: must fit in a {bits}-bit integer"
        )
    bounds = {
        "minimum": "should be greater than or equal to {}",
        "maximum": "should be less than or equal to {}",
        "minLength": "should be at least {} chars long",
        "maxLength": "should be at most {} chars long",
        "minItems": "should have at least {} items",
        "maxItems": "should have at most {} items",
    }
    if keyword in bounds:
        return FieldError(
            paths.join(path),
            f"Invalid value: {_show(value)}: {bounds[keyword].format(error.validator_value)}",
        )
    return FieldError(paths.join(path), f"Invalid value: {_show(value)}: {error.message}")


def _type_words(expected: object) -> str:
    if isinstance(expected, list):
        return " or ".join(expected)
    return str(expected)


def _show(value: object) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return json.dumps(value)


def apply_schema_defaults(resource: dict, kind: Kind) -> dict:
    """Fill in the `default:` values of the schema where the resource leaves a field out (in place)."""
    _apply_defaults(resource, openapi_schema(kind))
    return resource


def _apply_defaults(value: object, schema: dict) -> None:
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key, sub_schema in properties.items():
            if key not in value and "default" in sub_schema:
                value[key] = copy.deepcopy(sub_schema["default"])
            if key in value:
                _apply_defaults(value[key], sub_schema)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                if key not in properties:
                    _apply_defaults(item, extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _apply_defaults(item, schema["items"])


@dataclass(frozen=True)
class UnknownField:
    """A field the schema does not declare, and the declared field its name is closest to, if any."""

    path: str
    did_you_mean: str | None = None


def unknown_fields(resource: dict, kind: Kind) -> list[str]:
    """The paths of fields the schema does not declare (`drop_unknown_fields` drops them)."""
    return [field.path for field in unknown_field_details(resource, kind)]


def unknown_field_details(resource: dict, kind: Kind) -> list[UnknownField]:
    """The fields the schema does not declare, each with the declared sibling it most looks like."""
    return [
        UnknownField(paths.join(path), _closest(str(path[-1]), declared))
        for path, _holder, declared in _unknown(resource, openapi_schema(kind), [])
    ]


def drop_unknown_fields(resource: dict, kind: Kind) -> dict:
    """Removes (in place) the fields the schema does not declare, as the API server prunes a custom
    resource (and decodes a built-in one): the fields under `x-kubernetes-preserve-unknown-fields`, in
    an open object (such as metadata) or in a map of any values stay."""
    for path, holder, _declared in list(_unknown(resource, openapi_schema(kind), [])):
        del holder[path[-1]]
    metadata = resource.get("metadata")
    if isinstance(metadata, dict):
        for name in _OMITTED_WHEN_EMPTY:
            if metadata.get(name, True) in ({}, []):
                del metadata[name]
    return resource


# ObjectMeta's collections that Kubernetes writes `omitempty`: an empty one is not kept (`kubectl label
# x team-` on the last label leaves no `labels`, and so no owner of them).
_OMITTED_WHEN_EMPTY = ("labels", "annotations", "finalizers", "ownerReferences")


def _unknown(value: object, schema: dict, path: list) -> Iterator[tuple[list, dict, dict]]:
    """Each field the schema does not declare: its path, the mapping that holds it, and the fields
    declared next to it."""
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        if properties is None and extra is None:
            return  # an open object (such as metadata)
        for key, item in value.items():
            if properties and key in properties:
                yield from _unknown(item, properties[key], [*path, key])
            elif isinstance(extra, dict):
                yield from _unknown(item, extra, [*path, key])
            elif not schema.get("x-kubernetes-preserve-unknown-fields") and extra is not True:
                yield [*path, key], value, properties or {}
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from _unknown(item, schema["items"], [*path, index])


def _closest(name: str, declared: dict) -> str | None:
    """The declared name `name` was most likely meant to be: the same but for case, else a close spelling."""
    for candidate in declared:
        if candidate.lower() == name.lower():
            return candidate
    matches = difflib.get_close_matches(name, list(declared), n=1, cutoff=0.75)
    return matches[0] if matches else None
