"""gRPC's standard health service, `grpc.health.v1.Health/Check`: what Kubernetes' gRPC probes call.

Its two messages are small enough to read and write without generated code:

    message HealthCheckRequest { string service = 1; }
    message HealthCheckResponse { ServingStatus status = 1; }   // UNKNOWN 0, SERVING 1, NOT_SERVING 2

A field this module does not know is skipped, as protobuf skips it.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

SERVICE_NAME = "grpc.health.v1.Health"
CHECK = f"/{SERVICE_NAME}/Check"
UNKNOWN, SERVING, NOT_SERVING, SERVICE_UNKNOWN = 0, 1, 2, 3
STATUS_NAMES = {
    UNKNOWN: "UNKNOWN",
    SERVING: "SERVING",
    NOT_SERVING: "NOT_SERVING",
    SERVICE_UNKNOWN: "SERVICE_UNKNOWN",
}


@dataclass(frozen=True)
class HealthCheckRequest:
    service: str = ""

    @classmethod
    def FromString(cls, data: bytes) -> HealthCheckRequest:  # noqa: N802 - protobuf's name
        fields = _fields(data)
        raw = fields.get(1, b"")
        if not isinstance(raw, bytes):
            raise DecodeError("HealthCheckRequest.service is not a string")
        try:
            return cls(raw.decode())
        except UnicodeDecodeError:
            raise DecodeError("HealthCheckRequest.service is not UTF-8") from None

    def SerializeToString(self) -> bytes:  # noqa: N802 - protobuf's name
        encoded = self.service.encode()
        return b"\x0a" + _varint(len(encoded)) + encoded if encoded else b""


@dataclass(frozen=True)
class HealthCheckResponse:
    status: int = UNKNOWN

    @classmethod
    def FromString(cls, data: bytes) -> HealthCheckResponse:  # noqa: N802 - protobuf's name
        status = _fields(data).get(1, UNKNOWN)
        if not isinstance(status, int):
            raise DecodeError("HealthCheckResponse.status is not a number")
        return cls(status)

    def SerializeToString(self) -> bytes:  # noqa: N802 - protobuf's name
        return b"\x08" + _varint(self.status) if self.status else b""


def _fields(data: bytes) -> dict[int, int | bytes]:
    """The last value of each field: varints as numbers, length-delimited ones as bytes."""
    found: dict[int, int | bytes] = {}
    position = 0
    while position < len(data):
        key, position = _read_varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            found[number], position = _read_varint(data, position)
        elif wire_type == 2:
            length, position = _read_varint(data, position)
            if position + length > len(data):
                raise DecodeError("a field runs past the end of the message")
            found[number], position = data[position : position + length], position + length
        elif wire_type in (1, 5):
            position += 8 if wire_type == 1 else 4
        else:
            raise DecodeError(f"unknown wire type {wire_type}")
    if position > len(data):
        raise DecodeError("a field runs past the end of the message")
    return found


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise DecodeError("a truncated or overlong varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
