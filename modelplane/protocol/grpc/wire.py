"""gRPC's unary calls over modelplane's HTTP/2 server (gRPC's PROTOCOL-HTTP2 specification).

A call is a POST to `/<service>/<method>` with `content-type: application/grpc`; its body is one
length-prefixed message (a flag byte saying whether it is compressed, then four bytes of length). The
answer is the same framing, followed by trailers carrying `grpc-status` and `grpc-message`; a call that
fails before it has an answer gets the status in its only header block ("trailers-only").
"""

from __future__ import annotations

import asyncio
import re
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from modelplane.protocol.errors import ModelplaneError
from modelplane.protocol.grpc.status import call_status, status_headers
from modelplane.protocol.http2 import hpack
from modelplane.protocol.http2.hpack import Headers
from modelplane.protocol.http2.server import H2Request, H2Response

Metadata = dict[str, str]
UnaryHandler = Callable[[Any, Metadata], Awaitable[Any]]

_PREFIX = struct.Struct(">BL")
_OK_HEADERS = hpack.encode([(b":status", b"200"), (b"content-type", b"application/grpc")])
_OK_TRAILERS = hpack.encode([(b"grpc-status", b"0")])
_ENCODINGS = b"identity,gzip,deflate"
_TIMEOUT = re.compile(rb"^(\d{1,8})([HMSmun])$")
_TIMEOUT_UNITS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}
# Headers of the transport itself, not the call's metadata.
_NOT_METADATA = frozenset(
    (b"te", b"content-type", b"grpc-timeout", b"grpc-encoding", b"grpc-accept-encoding")
)


class GrpcStatus(Exception):
    """Ends a call with a status other than OK."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class UnaryMethod:
    request_class: type
    handler: UnaryHandler


class UnaryService:
    """Answers the unary methods it is given, each a coroutine `(request message, metadata) -> response`.
    A call to another method is UNIMPLEMENTED, with the message `not_served` has for its path, if any."""

    def __init__(
        self,
        methods: dict[str, UnaryMethod],
        max_message_length: int,
        not_served: dict[str, str] | None = None,
        max_send_length: int | None = None,
    ) -> None:
        self._methods = {path.encode(): method for path, method in methods.items()}
        self._not_served = {path.encode(): message for path, message in (not_served or {}).items()}
        self.max_message_length = max_message_length  # of a request; of a response too unless told
        self.max_send_length = max_send_length or max_message_length

    def answer_from_headers(self, headers: Headers) -> H2Response | None:
        """The answer to a call that its headers settle (the wrong content type, a method not served),
        or None. The HTTP/2 server sends it without waiting for the body: a streaming call's client
        keeps its side open, and would wait for an answer as long as it does."""
        return self._refusal(
            hpack.find_header(headers, b":path"), hpack.find_header(headers, b"content-type")
        )

    def _refusal(self, path: bytes | None, content_type: bytes | None) -> H2Response | None:
        if content_type is None or not content_type.startswith(b"application/grpc"):
            return _http_error(415, b"gRPC calls need content-type application/grpc\n")
        if path in self._methods:
            return None
        message = self._not_served.get(path) or f"Method not found: {(path or b'').decode('latin-1')}"
        return status_response(grpc.StatusCode.UNIMPLEMENTED, message)

    async def __call__(self, request: H2Request) -> H2Response:
        path = content_type = timeout = encoding = None
        metadata: Metadata = {}
        for name, value in request.headers:
            if name[0] == 58:  # b":": pseudo-headers
                if name == b":path":
                    path = value
            elif name == b"content-type":
                content_type = value
            elif name == b"grpc-timeout":
                timeout = value
            elif name == b"grpc-encoding":
                encoding = value
            elif name not in _NOT_METADATA and not name.endswith(b"-bin"):
                metadata[name.decode("latin-1")] = value.decode("latin-1")
        refusal = self._refusal(path, content_type)
        if refusal is not None:
            return refusal
        method = self._methods[path]
        try:
            message = method.request_class.FromString(self._message(request.body, encoding))
        except GrpcStatus as status:
            return status_response(status.code, status.message)
        except DecodeError as exc:
            return status_response(
                grpc.StatusCode.INVALID_ARGUMENT, f"the request message cannot be parsed: {exc}"
            )
        try:
            if timeout is None:
                answer = await method.handler(message, metadata)
            else:
                async with asyncio.timeout(_seconds(timeout)):
                    answer = await method.handler(message, metadata)
        except GrpcStatus as status:
            return status_response(status.code, status.message)
        except ModelplaneError as exc:
            return status_response(exc.grpc_code, exc.message)
        except TimeoutError:
            return status_response(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        payload = answer.SerializeToString()
        if len(payload) > self.max_send_length:
            return status_response(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the response message is {len(payload)} bytes, above the limit of {self.max_send_length}",
            )
        return H2Response(_OK_HEADERS, _PREFIX.pack(0, len(payload)) + payload, _OK_TRAILERS)

    def _message(self, body: bytes, encoding: bytes | None) -> bytes:
        if len(body) < 5:
            raise GrpcStatus(grpc.StatusCode.INVALID_ARGUMENT, "the call carries no request message")
        compressed, length = _PREFIX.unpack_from(body)
        if len(body) != 5 + length:
            raise GrpcStatus(
                grpc.StatusCode.INVALID_ARGUMENT, "a unary call carries exactly one request message"
            )
        if length > self.max_message_length:
            raise self.too_large(length)
        payload = body[5:]
        if not compressed:
            return payload
        if encoding in (None, b"identity"):
            raise GrpcStatus(grpc.StatusCode.INTERNAL, "a compressed message without a grpc-encoding")
        if encoding not in (b"gzip", b"deflate"):
            raise GrpcStatus(
                grpc.StatusCode.UNIMPLEMENTED, f"unknown grpc-encoding {encoding.decode('latin-1')}"
            )
        inflater = zlib.decompressobj(31 if encoding == b"gzip" else 15)
        try:
            plain = inflater.decompress(payload, self.max_message_length + 1)
        except zlib.error as exc:
            raise GrpcStatus(grpc.StatusCode.INTERNAL, f"the message cannot be decompressed: {exc}") from None
        if len(plain) > self.max_message_length:
            raise self.too_large(len(plain))
        return plain

    def too_large(self, size: int) -> GrpcStatus:
        return GrpcStatus(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"the request message is {size} bytes, above the limit of {self.max_message_length}",
        )

    def too_large_body(self, body_size: int, headers: Headers) -> H2Response:
        """The answer to a call whose body, length prefix and message, is `body_size` bytes (as its
        prefix declares, or as much as has come): too large."""
        status = self.too_large(body_size - _PREFIX.size)
        return status_response(status.code, status.message)


def declared_body_size(start: bytes) -> int | None:
    """The size of a unary call's body as its message's length prefix declares it, once the prefix
    has come: a call declaring too large a message is refused before the message arrives, as grpcio
    refuses it."""
    if len(start) < _PREFIX.size:
        return None
    return _PREFIX.size + _PREFIX.unpack_from(start)[1]


def response_status(response: H2Response) -> tuple[int, str]:
    """The status code and message of an answer (in its trailers, or a trailers-only answer's headers)."""
    if response.trailers is _OK_TRAILERS:
        return 0, ""
    return call_status(response.headers if response.trailers is None else response.trailers)


def status_response(code: grpc.StatusCode, message: str) -> H2Response:
    """A trailers-only answer: the status in the one and only header block."""
    headers = status_headers(code.value[0], message, trailers_only=True)
    return H2Response(hpack.encode([*headers, (b"grpc-accept-encoding", _ENCODINGS)]))


def _http_error(status: int, body: bytes) -> H2Response:
    return H2Response(hpack.encode([(b":status", b"%d" % status), (b"content-type", b"text/plain")]), body)


def _seconds(timeout: bytes) -> float:
    match = _TIMEOUT.match(timeout)
    if match is None:
        raise GrpcStatus(grpc.StatusCode.INVALID_ARGUMENT, f"bad grpc-timeout {timeout.decode('latin-1')}")
    return int(match.group(1)) * _TIMEOUT_UNITS[match.group(2)]
