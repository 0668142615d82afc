"""Protobuf's wire format, read and written by hand where a message is small or its schema is not
compiled into this package (gRPC's health messages, OTLP spans, Kubernetes' objects, OpenAPI v2)."""

from __future__ import annotations

from collections.abc import Iterator

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5
_SMALL = [bytes((n,)) for n in range(128)]


class WireError(ValueError):
    """Bytes that are not a protobuf message."""


def varint(n: int) -> bytes:
    """A non-negative number as a varint."""
    if n < 0x80:
        return _SMALL[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def delimited_field(number: int, payload: bytes) -> bytes:
    """One length-delimited field (a string, bytes or a nested message)."""
    return varint(number << 3 | LENGTH_DELIMITED) + varint(len(payload)) + payload


def read_varint(data: bytes, position: int) -> tuple[int, int]:
    """The varint at `position`, and the position after it."""
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise WireError("a truncated or overlong varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def wire_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field of a message, in order: a varint's value as a
    number, the others' as bytes."""
    position = 0
    while position < len(data):
        key, position = read_varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            value, position = read_varint(data, position)
            yield number, wire, value
            continue
        if wire == LENGTH_DELIMITED:
            size, position = read_varint(data, position)
        elif wire in (FIXED64, FIXED32):
            size = 8 if wire == FIXED64 else 4
        else:
            raise WireError(f"wire type {wire} of field {number} is not one protobuf has")
        if position + size > len(data):
            raise WireError("a field runs past the end of the message")
        yield number, wire, data[position : position + size]
        position += size
