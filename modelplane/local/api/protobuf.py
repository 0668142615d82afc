"""Kubernetes' protobuf encoding of its own kinds, read for the bodies kubectl sends in it.

`kubectl create configmap`, `create secret` and `create serviceaccount` post their object as
`application/vnd.kubernetes.protobuf`, and `kubectl auth can-i` and `auth whoami` their reviews: the
magic `k8s\\0`, then a `runtime.Unknown` message holding the object's apiVersion and kind and the
object itself, encoded as k8s.io/api's `generated.proto` lays it out. `read_object` turns such a body
into the JSON object the API stores (and the API answers in JSON, which kubectl also takes). A field
these kinds do not have is a 400, not passed over.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from modelplane.local.api.errors import BadRequest, UnsupportedMediaType
from modelplane.protocol.protobuf_wire import LENGTH_DELIMITED, VARINT, WireError, wire_fields

PROTOBUF = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"

# A field's type: one of these names, or a tuple: ("message", fields), ("map", value type),
# ("list", type). `fields` map each field number to its JSON name and type.
STRING, BYTES, RAW, BOOL, INT, TIME = "string", "bytes", "raw", "bool", "int", "time"
SERVER_OWNED = "server-owned"  # a field the server sets: what a client sends is dropped, as Kubernetes does
Fields = dict[int, tuple[str, Any]]

_OWNER_REFERENCE: Fields = {
    1: ("kind", STRING),
    3: ("name", STRING),
    4: ("uid", STRING),
    5: ("apiVersion", STRING),
    6: ("controller", BOOL),
    7: ("blockOwnerDeletion", BOOL),
}
_OBJECT_META: Fields = {
    1: ("name", STRING),
    2: ("generateName", STRING),
    3: ("namespace", STRING),
    4: ("selfLink", STRING),
    5: ("uid", STRING),
    6: ("resourceVersion", STRING),
    7: ("generation", INT),
    8: ("creationTimestamp", TIME),
    9: ("deletionTimestamp", TIME),
    10: ("deletionGracePeriodSeconds", INT),
    11: ("labels", ("map", STRING)),
    12: ("annotations", ("map", STRING)),
    13: ("ownerReferences", ("list", ("message", _OWNER_REFERENCE))),
    14: ("finalizers", ("list", STRING)),
    17: ("managedFields", SERVER_OWNED),
}
_OBJECT_REFERENCE: Fields = {
    1: ("kind", STRING),
    2: ("namespace", STRING),
    3: ("name", STRING),
    4: ("uid", STRING),
    5: ("apiVersion", STRING),
    6: ("resourceVersion", STRING),
    7: ("fieldPath", STRING),
}
_METADATA = ("metadata", ("message", _OBJECT_META))
KINDS: dict[str, Fields] = {
    "ConfigMap": {
        1: _METADATA,
        2: ("data", ("map", STRING)),
        3: ("binaryData", ("map", BYTES)),
        4: ("immutable", BOOL),
    },
    "Secret": {
        1: _METADATA,
        2: ("data", ("map", BYTES)),
        3: ("type", STRING),
        4: ("stringData", ("map", STRING)),
        5: ("immutable", BOOL),
    },
    "ServiceAccount": {
        1: _METADATA,
        2: ("secrets", ("list", ("message", _OBJECT_REFERENCE))),
        3: ("imagePullSecrets", ("list", ("message", {1: ("name", STRING)}))),
        4: ("automountServiceAccountToken", BOOL),
    },
}
_SELECTOR_REQUIREMENT: Fields = {1: ("key", STRING), 2: ("operator", STRING), 3: ("values", ("list", STRING))}
_SELECTOR_ATTRIBUTES: Fields = {
    1: ("rawSelector", STRING),
    2: ("requirements", ("list", ("message", _SELECTOR_REQUIREMENT))),
}
_RESOURCE_ATTRIBUTES: Fields = {
    1: ("namespace", STRING),
    2: ("verb", STRING),
    3: ("group", STRING),
    4: ("version", STRING),
    5: ("resource", STRING),
    6: ("subresource", STRING),
    7: ("name", STRING),
    8: ("fieldSelector", ("message", _SELECTOR_ATTRIBUTES)),
    9: ("labelSelector", ("message", _SELECTOR_ATTRIBUTES)),
}
_ACCESS_REVIEW_SPEC: Fields = {
    1: ("resourceAttributes", ("message", _RESOURCE_ATTRIBUTES)),
    2: ("nonResourceAttributes", ("message", {1: ("path", STRING), 2: ("verb", STRING)})),
}
# The reviews `kubectl auth` sends (k8s.io/api's authorization/v1 and authentication/v1): their status
# is the server's to fill.
KINDS.update(
    {
        "SelfSubjectAccessReview": {
            1: _METADATA,
            2: ("spec", ("message", _ACCESS_REVIEW_SPEC)),
            3: ("status", SERVER_OWNED),
        },
        "SelfSubjectRulesReview": {
            1: _METADATA,
            2: ("spec", ("message", {1: ("namespace", STRING)})),
            3: ("status", SERVER_OWNED),
        },
        "SelfSubjectReview": {1: _METADATA, 2: ("status", SERVER_OWNED)},
    }
)
_UNKNOWN: Fields = {
    1: ("typeMeta", ("message", {1: ("apiVersion", STRING), 2: ("kind", STRING)})),
    2: ("raw", RAW),
    3: ("contentEncoding", STRING),
    4: ("contentType", STRING),
}


class _Malformed(Exception):
    pass


def read_object(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded ConfigMap, Secret or ServiceAccount; BadRequest for a body that
    is not one, UnsupportedMediaType for another kind."""
    if not body.startswith(_MAGIC):
        raise BadRequest("the request body is not Kubernetes protobuf (it does not start with k8s\\0)")
    try:
        envelope = _message(body[len(_MAGIC) :], _UNKNOWN, "Unknown")
        type_meta = envelope.get("typeMeta") or {}
        kind = type_meta.get("kind", "")
        if envelope.get("contentEncoding"):
            raise _Malformed(f"content encoding {envelope['contentEncoding']!r} is not read here")
        if kind not in KINDS:
            raise UnsupportedMediaType(
                f"only {', '.join(KINDS)} may be sent as {PROTOBUF}, not {kind or 'an object of no kind'}: "
                "send JSON or YAML"
            )
        raw = envelope.get("raw", b"")
        return {
            "apiVersion": type_meta.get("apiVersion", ""),
            "kind": kind,
            **_message(raw, KINDS[kind], kind),
        }
    except (_Malformed, WireError, UnicodeDecodeError) as exc:
        raise BadRequest(
            f"the request body is not valid Kubernetes protobuf: {exc or 'it ends too soon'}"
        ) from None


def _message(data: bytes, fields: Fields, name: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for number, wire, value in wire_fields(data):
        if number not in fields:
            raise _Malformed(f"{name} has no field {number}")
        key, kind = fields[number]
        if kind == SERVER_OWNED:
            continue
        if isinstance(kind, tuple) and kind[0] == "map":
            entry = _message(_bytes(value, wire, key), {1: ("key", STRING), 2: ("value", kind[1])}, key)
            result.setdefault(key, {})[entry.get("key", "")] = entry.get("value", "")
        elif isinstance(kind, tuple) and kind[0] == "list":
            result.setdefault(key, []).append(_scalar(value, wire, kind[1], key))
        else:
            result[key] = _scalar(value, wire, kind, key)
    return {key: value for key, value in result.items() if not _omitted(value)}


def _omitted(value: Any) -> bool:
    """Go leaves empty strings, zero numbers and zero times out of the JSON form (omitempty)."""
    return value is None or value == "" or value == b"" or (type(value) is int and value == 0)


def _scalar(value: bytes | int, wire: int, kind: Any, name: str) -> Any:
    if kind == STRING:
        return _bytes(value, wire, name).decode("utf-8")
    if kind == BYTES:
        return base64.b64encode(_bytes(value, wire, name)).decode("ascii")
    if kind == RAW:
        return _bytes(value, wire, name)
    if kind in (BOOL, INT):
        if wire != VARINT:
            raise _Malformed(f"{name} is not a number")
        number = value - (1 << 64) if value >= 1 << 63 else value  # int64, two's complement
        return bool(number) if kind == BOOL else number
    if kind == TIME:
        seconds = _message(_bytes(value, wire, name), {1: ("seconds", INT), 2: ("nanos", INT)}, name).get(
            "seconds"
        )
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if seconds else None
    return _message(_bytes(value, wire, name), kind[1], name)  # ("message", fields)


def _bytes(value: bytes | int, wire: int, name: str) -> bytes:
    if wire != LENGTH_DELIMITED:
        raise _Malformed(f"{name} is not a length-delimited field")
    return value  # type: ignore[return-value]
