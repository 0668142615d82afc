"""A gRPC call's status as HTTP/2 headers: `grpc-status` and the percent-encoded `grpc-message`."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from modelplane.protocol.http2.hpack import Decoder, Headers

# The HTTP status that says what a gRPC status code says (as gRPC's HTTP gateways map them).
HTTP_STATUS = {
    0: 200,  # OK
    1: 499,  # CANCELLED
    2: 500,  # UNKNOWN
    3: 400,  # INVALID_ARGUMENT
    4: 504,  # DEADLINE_EXCEEDED
    5: 404,  # NOT_FOUND
    6: 409,  # ALREADY_EXISTS
    7: 403,  # PERMISSION_DENIED
    8: 429,  # RESOURCE_EXHAUSTED
    9: 400,  # FAILED_PRECONDITION
    10: 409,  # ABORTED
    11: 400,  # OUT_OF_RANGE
    12: 501,  # UNIMPLEMENTED
    13: 500,  # INTERNAL
    14: 503,  # UNAVAILABLE
    15: 500,  # DATA_LOSS
    16: 401,  # UNAUTHENTICATED
}


def encode_message(text: str) -> bytes:
    """`grpc-message` as gRPC sends it: UTF-8, with every byte outside printable ASCII (and "%")
    percent-encoded."""
    out = bytearray()
    for byte in text.encode():
        if 0x20 <= byte <= 0x7E and byte != 0x25:
            out.append(byte)
        else:
            out += b"%%%02X" % byte
    return bytes(out)


def decode_message(value: bytes) -> str:
    """A `grpc-message` as text."""
    return unquote_to_bytes(value).decode("utf-8", "replace")


def status_headers(code: int, message: str, *, trailers_only: bool) -> Headers:
    """The trailers that end a call with `code`; with `trailers_only`, the whole answer (no headers
    were sent before them)."""
    status = [(b"grpc-status", b"%d" % code), (b"grpc-message", encode_message(message))]
    if not trailers_only:
        return status
    return [(b":status", b"200"), (b"content-type", b"application/grpc"), *status]


def call_status(block: bytes) -> tuple[int, str]:
    """The status code and message an HPACK block of trailers (or a trailers-only answer) carries;
    UNKNOWN (2) when it carries none."""
    code, message = 2, ""
    for name, value in Decoder().decode(block):
        if name == b"grpc-status" and value.isdigit():
            code = int(value)
        elif name == b"grpc-message":
            message = decode_message(value)
    return code, message
