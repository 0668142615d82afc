"""A gRPC call's status as HTTP/2 headers: `grpc-status` and the percent-encoded `grpc-message`."""

from __future__ import annotations

from modelplane.protocol.http2.hpack import Headers


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


def status_headers(code: int, message: str, *, trailers_only: bool) -> Headers:
    """The trailers that end a call with `code`; with `trailers_only`, the whole answer (no headers
    were sent before them)."""
    status = [(b"grpc-status", b"%d" % code), (b"grpc-message", encode_message(message))]
    if not trailers_only:
        return status
    return [(b":status", b"200"), (b"content-type", b"application/grpc"), *status]
