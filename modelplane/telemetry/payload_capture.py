"""What a logged request and its answer leave for the payload logger: their bodies as they pass (up to
16 MiB each; past that, the event says the size and carries no data), and the two records made of
them. A body sent compressed (`Content-Encoding: gzip` or `deflate`) is logged decoded, as its content
type describes it. The gateway feeds one per logged request and gRPC call (local/gateway/observe.py),
and so does `modelplane serve` when it logs itself (server/payload_logging.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson

from modelplane.protocol.content_coding import content_codings, decoded_body
from modelplane.protocol.errors import ModelplaneError, PayloadTooLarge
from modelplane.protocol.grpc.status import HTTP_STATUS
from modelplane.telemetry.payload_events import PayloadLogSpec, PayloadRecord, header_text

# A body larger than this is not kept for its event: the event says so and carries no data.
MAX_CAPTURED_BYTES = 16 * 1024 * 1024

SubmitRecord = Callable[[PayloadRecord], None]


class PayloadCapture:
    """The bodies of one logged request and its answer, and the records made of them."""

    __slots__ = (
        "_spec",
        "_id",
        "_request_content_type",
        "_request_codings",
        "_metadata",
        "_arrived",
        "_submit",
        "_request",
        "_request_size",
        "_status",
        "_content_type",
        "_response_codings",
        "_response",
        "_response_size",
        "_grpc_method",
        "_request_logged",
    )

    def __init__(
        self,
        spec: PayloadLogSpec,
        headers: list[tuple[bytes, bytes]],
        request_id: str,
        submit: SubmitRecord,
        grpc_method: str | None = None,
    ) -> None:
        self._spec = spec
        event_id = content_type = None
        coded = False
        for name, value in headers:
            lower = name.lower()
            if lower == b"content-type" and content_type is None:
                content_type = value.decode("latin-1")
            elif lower == b"ce-id" and event_id is None:
                event_id = header_text(value)
            elif lower == b"content-encoding":
                coded = True
        # KServe's agent takes the request's ce-id; without one, the request id ties the two events
        # to the request (and to the x-request-id its client sees).
        self._id = event_id or request_id
        self._request_content_type = content_type
        self._request_codings = content_codings(headers) if coded else None
        self._metadata = spec.metadata(headers)  # the same on both events
        self._arrived = time.time_ns()
        self._submit = submit
        self._request: list[bytes] = []
        self._request_size = 0
        self._status = 0
        self._content_type: str | None = None
        self._response_codings: list[bytes] | None = None
        self._response: list[bytes] = []
        self._response_size = 0
        self._grpc_method = grpc_method  # a gRPC call's `/<service>/<method>`; None for HTTP
        self._request_logged = False

    def request_body(self, data: bytes) -> None:
        self._request_size += len(data)
        if self._request_size <= MAX_CAPTURED_BYTES:
            self._request.append(data)

    def request_left_out(self, size: int) -> None:
        """The request's body of `size` bytes was not read: its event says the size and carries no data."""
        self._request, self._request_size = [], size

    def request_done(self) -> None:
        if self._request_logged or not self._spec.logs_requests:
            return
        self._request_logged = True
        self._submit(
            self._record(
                True,
                self._arrived,
                self._request_content_type,
                self._request,
                self._request_size,
                self._request_codings,
            )
        )

    def response_head(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self._status = status
        self._content_type = _header(headers, b"content-type")
        self._response_codings = content_codings(headers) or None
        self._response, self._response_size = [], 0  # a response retried from the start

    def response_body(self, data: bytes) -> None:
        self._response_size += len(data)
        if self._response_size <= MAX_CAPTURED_BYTES:
            self._response.append(data)

    def gateway_answer(self, status: int, message: str) -> None:
        self._status = status
        self._content_type = "application/json"
        self._response_codings = None
        body = orjson.dumps({"error": message})
        self._response, self._response_size = [body], len(body)

    def answered(self, revision: str) -> None:
        if not self._spec.logs_responses:
            return
        record = self._response_record(revision)
        record.status = self._status
        self._submit(record)

    def call_answered(self, code: int, message: str, revision: str) -> None:
        """A gRPC call ended with status `code` (the replica's, or the gateway's own): its request's
        event, if the call ended before the request did, and its answer's."""
        self.request_done()
        if not self._spec.logs_responses:
            return
        record = self._response_record(revision)
        record.status = HTTP_STATUS.get(code, 500)
        record.grpc_status = code
        record.grpc_message = message or None
        self._submit(record)

    def _response_record(self, revision: str) -> PayloadRecord:
        """The record of the answer as captured, ending now."""
        record = self._record(
            False,
            time.time_ns(),
            self._content_type,
            self._response,
            self._response_size,
            self._response_codings,
        )
        record.revision = revision or None
        return record

    def _record(
        self,
        is_request: bool,
        when_ns: int,
        content_type: str | None,
        chunks: list[bytes],
        size: int,
        codings: list[bytes] | None,
    ) -> PayloadRecord:
        if size > MAX_CAPTURED_BYTES or (size and not chunks):  # over the limit, or not read at all
            data, omitted = b"", size
        else:
            data, omitted = chunks[0] if len(chunks) == 1 else b"".join(chunks), None
            if codings:
                data, omitted = _decoded(data, codings)
        # By position: what each field is, PayloadRecord says.
        return PayloadRecord(
            self._spec,
            is_request,
            self._id,
            when_ns,
            content_type,
            data,
            self._metadata,
            None,
            None,
            omitted,
            self._grpc_method,
        )


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _decoded(data: bytes, codings: list[bytes]) -> tuple[bytes, int | None]:
    """A compressed body, decoded, and None; one over the limit once decoded is left out (its size as
    it passed); one that cannot be decoded (the server refuses it too) is kept as it passed."""
    try:
        return decoded_body(data, codings, MAX_CAPTURED_BYTES), None
    except PayloadTooLarge:
        return b"", len(data)
    except ModelplaneError:
        return data, None
