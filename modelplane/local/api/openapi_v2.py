"""The OpenAPI v2 (Swagger 2.0) document of the control-plane API: the kinds' schemas as definitions.

    GET /openapi/v2   protobuf (gnostic's `openapi.v2.Document`) when asked for first, as kubectl asks; else JSON

Each schema is the one the server checks a kind against (api/schema.py), turned into v2 as Kubernetes
publishes a CRD's (apiextensions-apiserver's ToStructuralOpenAPIV2), so that kubectl reads it as it
reads KServe's on a cluster: `kubectl explain --output=plaintext-openapiv2`, and the check of fields
kubectl makes itself where the server cannot be asked to (each item of a `kind: List` file; any file
for a kubectl older than 1.27). It declares no paths: kubectl finds its patch types in v3.

The protobuf form carries what kubectl reads of a schema: its reference, type, format, description,
required fields, properties, items, additional properties, pattern, enum and `x-` extensions.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

from modelplane.api.kinds import KINDS
from modelplane.api.schema import checked_schema
from modelplane.local.api.openapi import list_schema, meta_schemas, resource_schema, schema_name
from modelplane.protocol.protobuf_wire import delimited_field, varint

V2_PATH = "/openapi/v2"
V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"  # as kubectl asks for it
_V2_PROTOBUF_ANSWER = b"application/com.github.proto-openapi.spec.v2.v1.0+protobuf"  # as Kubernetes answers
_TITLE, _VERSION = "modelplane", "v2"
_V3_REFERENCE, _V2_REFERENCE = "#/components/schemas/", "#/definitions/"
_JUNCTORS = ("allOf", "anyOf", "oneOf", "not")


def v2_document(accept: str | None) -> tuple[bytes, bytes]:
    """The document and its media type: protobuf when the client asks for it before JSON."""
    for media_range in (accept or "").split(","):
        media_type = media_range.split(";")[0].strip().lower()
        if media_type == V2_PROTOBUF:
            return _protobuf_document(), _V2_PROTOBUF_ANSWER
        if media_type in ("application/json", "*/*"):
            break
    return _json_document(), b"application/json"


@cache
def definitions() -> dict[str, dict[str, Any]]:
    """Every definition, by the name Kubernetes gives it (`io.kserve.serving.v1beta1.InferenceService`)."""
    schemas = meta_schemas()
    for kind in KINDS:
        schemas[schema_name(kind)] = resource_schema(kind, checked_schema(kind))
        schemas[schema_name(kind) + "List"] = list_schema(kind)
    return {name: v2_schema(schema) for name, schema in sorted(schemas.items())}


def v2_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A v3 structural schema as v2 has it, as Kubernetes converts one: references into `#/definitions/`;
    no junctors, defaults or nullable; untyped, and without properties or items, where unknown fields
    are kept or an array has no items (kubectl cannot read those typed)."""
    reference = _reference(schema)
    if reference is not None:
        described = {"description": schema["description"]} if "description" in schema else {}
        return {"$ref": _V2_REFERENCE + reference.removeprefix(_V3_REFERENCE), **described}
    out = {key: value for key, value in schema.items() if key not in (*_JUNCTORS, "default", "nullable")}
    if schema.get("nullable"):
        for key in ("type", "items", "properties"):
            out.pop(key, None)
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        out.pop("items", None)
        out.pop("properties", None)
        if out.get("type") == "object":
            del out["type"]
    if out.get("type") == "array" and "items" not in out:
        del out["type"]
    if "properties" in out:
        properties = out["properties"]
        out["properties"] = {name: v2_schema(value) for name, value in properties.items()}
        nullable = {name for name, value in properties.items() if value.get("nullable")}
        if "required" in out and nullable:
            out["required"] = [name for name in out["required"] if name not in nullable]
    if isinstance(out.get("items"), dict):
        out["items"] = v2_schema(out["items"])
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = v2_schema(out["additionalProperties"])
    if not out.get("required"):
        out.pop("required", None)
    return out


def _reference(schema: dict[str, Any]) -> str | None:
    """The schema a v3 schema only refers to (`$ref`, or an `allOf` of that one reference)."""
    if "$ref" in schema:
        return schema["$ref"]
    junction = schema.get("allOf")
    if isinstance(junction, list) and len(junction) == 1 and "$ref" in junction[0]:
        return junction[0]["$ref"]
    return None


@cache
def _json_document() -> bytes:
    document = {
        "swagger": "2.0",
        "info": {"title": _TITLE, "version": _VERSION},
        "paths": {},
        "definitions": definitions(),
    }
    return orjson.dumps(document)


# ---- gnostic's openapi.v2 messages (openapiv2/OpenAPIv2.proto), as much of them as kubectl reads ----


@cache
def _protobuf_document() -> bytes:
    info = _text(1, _TITLE) + _text(2, _VERSION)
    named = b"".join(
        delimited_field(1, _text(1, name) + delimited_field(2, _schema_message(schema)))
        for name, schema in definitions().items()
    )
    return _text(1, "2.0") + delimited_field(2, info) + delimited_field(9, named)  # Document


def _schema_message(schema: dict[str, Any]) -> bytes:
    out = bytearray()
    for number, key in ((1, "$ref"), (2, "format"), (4, "description"), (13, "pattern")):
        if isinstance(schema.get(key), str):
            out += _text(number, schema[key])
    for name in schema.get("required", []):
        out += _text(19, name)
    for value in schema.get("enum", []):
        out += delimited_field(20, _any(value))
    additional = schema.get("additionalProperties")
    if isinstance(additional, dict):
        out += delimited_field(21, delimited_field(1, _schema_message(additional)))
    elif isinstance(additional, bool):
        out += delimited_field(
            21, varint(2 << 3) + varint(int(additional))
        )  # AdditionalPropertiesItem.boolean
    if isinstance(schema.get("type"), str):
        out += delimited_field(22, _text(1, schema["type"]))  # TypeItem
    if isinstance(schema.get("items"), dict):
        out += delimited_field(23, delimited_field(1, _schema_message(schema["items"])))  # ItemsItem
    if "properties" in schema:
        named = b"".join(
            delimited_field(1, _text(1, name) + delimited_field(2, _schema_message(value)))
            for name, value in schema["properties"].items()
        )
        out += delimited_field(25, named)  # Properties
    for key, value in schema.items():
        if key.startswith("x-"):
            out += delimited_field(31, _text(1, key) + delimited_field(2, _any(value)))  # NamedAny
    return bytes(out)


def _any(value: Any) -> bytes:
    """An `openapi.v2.Any` holding a value as YAML (JSON, which YAML reads), as kubectl reads one."""
    return _text(2, orjson.dumps(value).decode())


def _text(number: int, value: str) -> bytes:
    return delimited_field(number, value.encode())
