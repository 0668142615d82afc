"""The OpenAPI v3 documents of the control-plane API, built from the kinds' CRD schemas.

    GET /openapi/v3                                  which group-versions have a document
    GET /openapi/v3/apis/serving.kserve.io/v1beta1   that group-version's paths and schemas
    GET /openapi/v3/api/v1                           the core group's (Event)

kubectl reads them before `apply`, `create`, `replace` and `edit`: when the PATCH operation of the
object's kind (found by its `x-kubernetes-group-version-kind`) takes a `fieldValidation` query
parameter, kubectl leaves the checking of unknown fields to the server (`api_field_validation.py`)
instead of downloading the OpenAPI v2 document to check them itself. `kubectl explain` reads the
schemas, as it does from a Kubernetes API server serving KServe's CRDs.

The documents depend only on the CRDs, so each is built once; the discovery document links them by
content hash, as Kubernetes does, so a client may cache a linked document for good.

`GET /openapi/v2`, the same schemas in Swagger 2.0, is api/openapi_v2.py.
"""

from __future__ import annotations

import copy
import hashlib
from functools import cache
from typing import Any

import orjson

from modelplane.api.kinds import KINDS, Kind
from modelplane.api.schema import openapi_schema
from modelplane.local.api.patch import MERGE_PATCH

ROOT_PATH = "/openapi/v3"

_META = "io.k8s.apimachinery.pkg.apis.meta.v1"
_OBJECT_META = f"{_META}.ObjectMeta"
_OWNER_REFERENCE = f"{_META}.OwnerReference"
_LIST_META = f"{_META}.ListMeta"
_STATUS = f"{_META}.Status"
_WATCH_EVENT = f"{_META}.WatchEvent"


def group_version_path(kind: Kind) -> str:
    """`apis/serving.kserve.io/v1beta1`, or `api/v1` for the core group: where the document of a
    kind's group-version is, under `/openapi/v3/`."""
    return f"apis/{kind.group}/{kind.version}" if kind.group else f"api/{kind.version}"


def discovery() -> dict[str, Any]:
    """`GET /openapi/v3`: each served group-version and the URL of its document."""
    return {
        "paths": {
            path: {"serverRelativeURL": f"{ROOT_PATH}/{path}?hash={_hash(path)}"}
            for path in sorted({group_version_path(k) for k in KINDS})
        }
    }


def document_bytes(path: str) -> bytes | None:
    """The JSON document of a group-version (`apis/serving.kserve.io/v1beta1`), None if none is served."""
    return _document_bytes(path.strip("/"))


def document_hash(path: str) -> str:
    """The content hash the discovery document puts in the link to a group-version's document."""
    return _hash(path.strip("/"))


@cache
def _document_bytes(path: str) -> bytes | None:
    kinds = [k for k in KINDS if group_version_path(k) == path]
    if not kinds:
        return None
    return orjson.dumps(group_version_document(kinds), option=orjson.OPT_SORT_KEYS)


@cache
def _hash(path: str) -> str:
    return hashlib.sha512(_document_bytes(path) or b"").hexdigest().upper()


def group_version_document(kinds: list[Kind]) -> dict[str, Any]:
    """The OpenAPI 3.0 document of kinds that share a group-version."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = meta_schemas()
    for kind in kinds:
        paths.update(_paths(kind))
        schemas[schema_name(kind)] = resource_schema(kind, openapi_schema(kind))
        schemas[schema_name(kind) + "List"] = list_schema(kind)
    return {
        "openapi": "3.0.0",
        "info": {"title": "modelplane", "version": kinds[0].api_version},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def schema_name(kind: Kind) -> str:
    """The component name Kubernetes gives a kind's schema: `io.kserve.serving.v1beta1.InferenceService`
    (its group reversed), `io.k8s.api.core.v1.Event` for the core group."""
    if not kind.group:
        return f"io.k8s.api.core.{kind.version}.{kind.kind}"
    return ".".join([*reversed(kind.group.split(".")), kind.version, kind.kind])


def _gvk(kind: Kind) -> dict[str, str]:
    return {"group": kind.group, "version": kind.version, "kind": kind.kind}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def resource_schema(kind: Kind, schema: dict[str, Any]) -> dict[str, Any]:
    """A kind's schema as the documents hold it: its metadata Kubernetes' ObjectMeta, tagged with the
    kind's group-version-kind."""
    schema = copy.deepcopy(schema)
    properties = schema.setdefault("properties", {})
    properties["metadata"] = {"allOf": [_ref(_OBJECT_META)], "description": "Standard object's metadata."}
    schema["x-kubernetes-group-version-kind"] = [_gvk(kind)]
    return schema


def list_schema(kind: Kind) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"{kind.kind}List is a list of {kind.kind}",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"allOf": [_ref(_LIST_META)]},
            "items": {"type": "array", "items": _ref(schema_name(kind))},
        },
        "x-kubernetes-group-version-kind": [{**_gvk(kind), "kind": f"{kind.kind}List"}],
    }


# ---- paths ----


def _query(name: str, description: str, schema_type: str = "string") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": schema_type},
    }


_DRY_RUN = _query("dryRun", "When present (`All`), the change is checked and answered, and not stored.")
_FIELD_MANAGER = _query(
    "fieldManager",
    "The name of the writer, kept in metadata.managedFields with the fields it owns (required for server-side "
    "apply; other writes default to the User-Agent's first word).",
)
_FIELD_VALIDATION = _query(
    "fieldValidation",
    "How the server treats fields the schema does not declare: Ignore (keep them), Warn (keep them and "
    "send a Warning header; the default) or Strict (refuse the request with 400, naming each).",
)
_LIST_PARAMETERS = [
    _query(
        "labelSelector",
        "Only objects whose labels match (=, ==, !=, key, !key, in, notin, >, <; comma-joined).",
    ),
    _query(
        "fieldSelector",
        "Only objects whose fields match (metadata.name, metadata.namespace; for events also "
        "involvedObject.*, reason, type, source, reportingComponent; =, !=).",
    ),
    _query("resourceVersion", "With watch: the version to resume after."),
    _query("timeoutSeconds", "With watch: end the stream after this many seconds.", "integer"),
    _query("watch", "Stream changes (one JSON event per line) instead of listing.", "boolean"),
]
_WRITE_PARAMETERS = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]


def _path_parameter(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _paths(kind: Kind) -> dict[str, Any]:
    base = f"/apis/{kind.group}/{kind.version}" if kind.group else f"/api/{kind.version}"
    scoped = f"{base}/namespaces/{{namespace}}/{kind.plural}" if kind.namespaced else f"{base}/{kind.plural}"
    scope_parameters = [_path_parameter("namespace")] if kind.namespaced else []
    name_parameters = [_path_parameter("name"), *scope_parameters]
    paths = {
        scoped: {
            "parameters": scope_parameters,
            "get": _operation(kind, "list", schema_name(kind) + "List", _LIST_PARAMETERS),
            "post": _operation(kind, "post", schema_name(kind), _WRITE_PARAMETERS, body="application/json"),
        },
        f"{scoped}/{{name}}": _object_operations(kind, name_parameters, ""),
    }
    if kind.has_status_subresource:
        paths[f"{scoped}/{{name}}/status"] = _object_operations(kind, name_parameters, " status")
    if kind.namespaced:  # every namespace at once
        paths[f"{base}/{kind.plural}"] = {
            "get": _operation(kind, "list", schema_name(kind) + "List", _LIST_PARAMETERS)
        }
    return paths


def _object_operations(kind: Kind, parameters: list[dict[str, Any]], what: str) -> dict[str, Any]:
    name = schema_name(kind)
    operations = {
        "parameters": parameters,
        "get": _operation(kind, "get", name, [], what),
        "put": _operation(kind, "put", name, _WRITE_PARAMETERS, what, body="application/json"),
        "patch": _operation(kind, "patch", name, _WRITE_PARAMETERS, what, body=MERGE_PATCH),
    }
    if not what:
        operations["delete"] = _operation(kind, "delete", _STATUS, [_DRY_RUN])
    return operations


def _operation(
    kind: Kind,
    action: str,
    answer: str,
    parameters: list[dict[str, Any]],
    what: str = "",
    *,
    body: str | None = None,
) -> dict[str, Any]:
    verb = {"list": "list", "post": "create", "get": "read", "put": "replace", "patch": "patch"}.get(
        action, action
    )
    plural = action == "list"
    operation: dict[str, Any] = {
        "description": f"{verb} {'' if plural else 'the '}{kind.plural if plural else kind.singular}{what}",
        "operationId": f"{verb}{kind.kind}{what.strip().title()}",
        "parameters": parameters,
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": _ref(answer)}}},
        },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(kind),
    }
    if action == "post":
        operation["responses"]["201"] = operation["responses"].pop("200") | {"description": "Created"}
    if body is not None:
        schema = {"type": "object"} if body == MERGE_PATCH else _ref(schema_name(kind))
        operation["requestBody"] = {"required": True, "content": {body: {"schema": schema}}}
    return operation


# ---- Kubernetes' metadata types, as much of them as modelplane keeps ----


def meta_schemas() -> dict[str, Any]:
    string = {"type": "string"}
    string_map = {"type": "object", "additionalProperties": {"type": "string", "default": ""}}
    return {
        _OBJECT_META: {
            "type": "object",
            "description": "ObjectMeta is metadata that all persisted resources must have.",
            "properties": {
                "name": string | {"description": "Unique within a namespace (a DNS-1123 subdomain)."},
                "generateName": string | {"description": "A prefix the server completes to a unique name."},
                "namespace": string | {"description": "The namespace (a DNS-1123 label)."},
                "labels": string_map | {"description": "Keys and values to select objects by."},
                "annotations": string_map | {"description": "Keys and values tools keep on the object."},
                "uid": string | {"description": "Set by the server on create; never changes."},
                "resourceVersion": string | {"description": "Set by the server on every write."},
                "generation": {
                    "type": "integer",
                    "format": "int64",
                    "description": "1 on create; one more each time the spec changes.",
                },
                "creationTimestamp": string | {"format": "date-time", "description": "Set on create."},
                "ownerReferences": {
                    "type": "array",
                    "items": {"default": {}, "allOf": [_ref(_OWNER_REFERENCE)]},
                    "description": "The objects this one depends on: it is deleted with the last of them.",
                },
                "finalizers": {
                    "type": "array",
                    "items": {"type": "string", "default": ""},
                    "description": "Stored, not acted on: a delete removes the object at once.",
                },
            },
        },
        _OWNER_REFERENCE: {
            "type": "object",
            "description": "An object this one depends on, matched by its uid.",
            "required": ["apiVersion", "kind", "name", "uid"],
            "properties": {
                "apiVersion": string | {"description": "The owner's API version."},
                "kind": string | {"description": "The owner's kind."},
                "name": string | {"description": "The owner's name."},
                "uid": string | {"description": "The owner's uid: what a delete of the owner matches."},
                "controller": {"type": "boolean", "description": "Whether the owner is the controller."},
                "blockOwnerDeletion": {"type": "boolean", "description": "Accepted; changes nothing."},
            },
            "x-kubernetes-map-type": "atomic",
        },
        _LIST_META: {
            "type": "object",
            "properties": {"resourceVersion": string, "continue": string},
        },
        _STATUS: {
            "type": "object",
            "description": "Status is a return value for calls that don't return other objects.",
            "properties": {
                "apiVersion": string,
                "kind": string,
                "status": string,
                "message": string,
                "reason": string,
                "code": {"type": "integer", "format": "int32"},
                "details": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
            "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "Status"}],
        },
        _WATCH_EVENT: {
            "type": "object",
            "required": ["type", "object"],
            "properties": {
                "type": string,
                "object": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        },
    }
