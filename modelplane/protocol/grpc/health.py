"""gRPC's standard health service, `grpc.health.v1.Health/Check`: what Kubernetes' gRPC probes call.

Its two messages are small enough to read and write without generated code:

    message HealthCheckRequest { string service = 1; }
    message HealthCheckResponse { ServingStatus status = 1; }   // UNKNOWN 0, SERVING 1, NOT_SERVING 2

A field this module does not know is skipped, as protobuf skips it.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from modelplane.protocol.protobuf_wire import LENGTH_DELIMITED, VARINT, WireError, varint, wire_fields

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
        return b"\x0a" + varint(len(encoded)) + encoded if encoded else b""


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
        return b"\x08" + varint(self.status) if self.status else b""


def _fields(data: bytes) -> dict[int, int | bytes]:
    """The last value of each field: varints as numbers, length-delimited ones as bytes."""
    try:
        return {
            number: value for number, wire, value in wire_fields(data) if wire in (VARINT, LENGTH_DELIMITED)
        }
    except WireError as exc:
        raise DecodeError(str(exc)) from None
