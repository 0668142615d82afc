"""OTLP's protobuf messages for traces, written byte by byte (opentelemetry/proto/trace/v1/trace.proto).

A span is encoded once, when it ends, into the bytes it has inside a `ScopeSpans`; an export request is
those bytes joined under the process's resource and scope, encoded once at start. Writing the few
messages a span needs directly costs a fraction of building protobuf objects for them.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

from modelplane.protocol.protobuf_wire import varint

_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_DOUBLE = struct.Struct("<d").pack
_TWO_BYTES = struct.Struct("<BB").pack
_CACHE_LIMIT = 4096

# Span.flags: whether the parent is known to be remote, and whether it is (SpanFlags in trace.proto).
HAS_IS_REMOTE, IS_REMOTE = 0x100, 0x200
_FLAGS = {
    flags: b"\x85\x01" + struct.pack("<I", flags) for flags in (HAS_IS_REMOTE, HAS_IS_REMOTE | IS_REMOTE)
}
STATUS_OK, STATUS_ERROR = 1, 2


def _delimited(tag: bytes, data: bytes) -> bytes:
    return tag + varint(len(data)) + data


def any_value(value: Any) -> bytes:
    """An `AnyValue`: a string, bool, int, float, bytes, or a sequence of these."""
    if isinstance(value, str):
        return _delimited(b"\x0a", value.encode())
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return _delimited(b"\x3a", value)
    if isinstance(value, Sequence):
        return _delimited(b"\x2a", b"".join(_delimited(b"\x0a", any_value(item)) for item in value))
    return _delimited(b"\x0a", str(value).encode())


def key_value(key: str, value: Any) -> bytes:
    return _delimited(b"\x0a", key.encode()) + _delimited(b"\x12", any_value(value))


# KeyValue fields already written, by (key, value): a route's path, a method, a status come back often.
_attribute_fields: dict[tuple[str, Any], tuple[type, bytes]] = {}


def attribute_field(tag: bytes, key: str, value: Any) -> bytes:
    """A `KeyValue` as field `tag` of its message."""
    return _delimited(tag, key_value(key, value))


def _add_attributes(fields: list[bytes], attributes: Mapping[str, Any]) -> None:
    """`KeyValue`s as the `attributes` field (9) of a `Span`, added to its fields."""
    cache = _attribute_fields
    for item in attributes.items():
        try:
            found = cache.get(item)
        except TypeError:  # a list: not hashable, not kept
            fields.append(attribute_field(b"\x4a", *item))
            continue
        value = item[1]
        if found is None or found[0] is not type(value):  # True and 1 are equal keys
            found = (type(value), attribute_field(b"\x4a", item[0], value))
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[item] = found
        fields.append(found[1])


_TIMES = struct.Struct("<BQBQ").pack  # start_time_unix_nano (7) and end_time_unix_nano (8), fixed64
_name_fields: dict[tuple[str, int], bytes] = {}


def _name_and_kind(name: str, kind: int) -> bytes:
    found = _name_fields.get((name, kind))
    if found is None:
        found = _delimited(b"\x2a", name.encode()) + b"\x30" + varint(kind)
        if len(_name_fields) >= _CACHE_LIMIT:
            _name_fields.clear()
        _name_fields[(name, kind)] = found
    return found


def _length(n: int) -> bytes:
    """A length as a varint: a span's is most often two bytes long."""
    if 0x80 <= n < 0x4000:
        return _TWO_BYTES((n & 0x7F) | 0x80, n >> 7)
    return varint(n)


def span_field(span: Any, flags: int) -> bytes:
    """A `Span` (spans.Span), as the `spans` field (2) of a `ScopeSpans`."""
    parts = [b"\x0a\x10", span.trace_id, b"\x12\x08", span.span_id]
    if span.trace_state:
        parts.append(_delimited(b"\x1a", span.trace_state.encode()))
    if span.parent_id:
        parts += (b"\x22\x08", span.parent_id)
    parts += (_name_and_kind(span.name, span.kind), _TIMES(0x39, span.start, 0x41, span.end_time))
    if span.attributes:
        _add_attributes(parts, span.attributes)
    if span.events:
        for event_name, when, event_attributes in span.events:
            event = [b"\x09", _FIXED64(when), _delimited(b"\x12", event_name.encode())]
            if event_attributes:
                event += [attribute_field(b"\x1a", key, value) for key, value in event_attributes.items()]
            parts.append(_delimited(b"\x5a", b"".join(event)))
    if span.status:
        message = _delimited(b"\x12", span.status_message.encode()) if span.status_message else b""
        parts.append(_delimited(b"\x7a", message + b"\x18" + varint(span.status)))
    else:
        parts.append(b"\x7a\x00")  # an unset status, present as the SDK writes it
    parts.append(_FLAGS[flags])
    body = b"".join(parts)
    return b"\x12" + _length(len(body)) + body


def resource_field(attributes: Mapping[str, Any]) -> bytes:
    """A `Resource`, as the `resource` field (1) of a `ResourceSpans`."""
    return _delimited(b"\x0a", b"".join(_delimited(b"\x0a", key_value(k, v)) for k, v in attributes.items()))


def scope_field(name: str, version: str) -> bytes:
    """An `InstrumentationScope`, as the `scope` field (1) of a `ScopeSpans`."""
    scope = _delimited(b"\x0a", name.encode()) + (_delimited(b"\x12", version.encode()) if version else b"")
    return _delimited(b"\x0a", scope)


def export_request(resource: bytes, scope: bytes, spans: list[bytes]) -> bytes:
    """An `ExportTraceServiceRequest` of encoded spans (`span_field`), under one resource and scope."""
    scope_spans = scope + b"".join(spans)
    resource_spans = resource + _delimited(b"\x12", scope_spans)
    return _delimited(b"\x0a", resource_spans)
