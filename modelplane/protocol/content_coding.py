"""Request bodies sent with a `Content-Encoding`: gzip and deflate are undone (tritonclient compresses
request bodies with either), `identity` is no coding, and any other is refused with 415, since a body
read as it came would be misread."""

from __future__ import annotations

import dataclasses
import zlib

from modelplane.protocol.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from modelplane.protocol.http_server import HttpRequest

# The `Accept-Encoding` a 415 names (RFC 9110 §15.5.16): the codings a request body may have.
ACCEPTED_CODINGS = b"gzip, deflate"
# zlib's window bits for each coding: gzip's header and trailer, or zlib's (HTTP's "deflate").
_WINDOW_BITS = {b"gzip": 31, b"deflate": 15}


class UnsupportedContentEncoding(UnsupportedMediaType):
    """A request body in a coding the server cannot undo."""


def decoded_request(request: HttpRequest, max_size: int) -> HttpRequest:
    """`request` with its body decoded, or itself when it has no coding; PayloadTooLarge when the decoded
    body is over `max_size` bytes (decoding stops there: a small body cannot make a large one)."""
    codings = content_codings(request.headers)
    if not codings:
        return request
    headers = [(name, value) for name, value in request.headers if name != b"content-encoding"]
    return dataclasses.replace(request, headers=headers, body=decoded_body(request.body, codings, max_size))


def decoded_body(body: bytes, codings: list[bytes], max_size: int) -> bytes:
    """`body` with `codings` (a `Content-Encoding`'s, `content_codings`) undone; PayloadTooLarge past
    `max_size` bytes, InvalidInput or UnsupportedContentEncoding when it cannot be decoded."""
    for coding in reversed(codings):  # the codings are listed in the order they were applied
        body = _decoded(body, coding, max_size)
    return body


def content_codings(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    """The codings the `Content-Encoding` headers (in any case) name, `identity` left out."""
    codings = []
    for name, value in headers:
        if name.lower() == b"content-encoding":
            codings += [coding.strip().lower() for coding in value.split(b",")]
    return [coding for coding in codings if coding and coding != b"identity"]


def _decoded(body: bytes, coding: bytes, max_size: int) -> bytes:
    window_bits = _WINDOW_BITS.get(coding)
    if window_bits is None:
        raise UnsupportedContentEncoding(
            f"the request body's content-encoding {coding.decode('latin-1')!r} is not supported "
            f"(accepted: {ACCEPTED_CODINGS.decode()}, identity)"
        )
    name = coding.decode()
    parts = []
    size = 0
    while True:  # a gzip body may be several members, one after the other
        inflater = zlib.decompressobj(window_bits)
        try:
            part = inflater.decompress(body, max_size - size + 1)
        except zlib.error as exc:
            raise InvalidInput(f"the request body is not valid {name}: {exc}") from None
        size += len(part)
        if size > max_size:
            raise PayloadTooLarge(f"the request body exceeds {max_size} bytes once decoded ({name})")
        if not inflater.eof:
            raise InvalidInput(f"the request body is not valid {name}: it is cut short")
        parts.append(part)
        body = inflater.unused_data
        if not body or coding != b"gzip":
            break
    if body:
        raise InvalidInput(f"the request body is not valid {name}: bytes follow its end")
    return parts[0] if len(parts) == 1 else b"".join(parts)
