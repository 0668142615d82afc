"""What the gateway records of each request: its metrics, and, where its route has a `logger`, its
payload.

An `ExchangeWatch` follows one request from its head to the end of its answer. The proxy tells it what
passes (`request_body`, `response_head`...) and how the request ended (`end`); the watch counts the
request once it ends and, for a logged route, hands a record of the request (once its body is whole)
and of the answer (once it is complete, whatever its status, the gateway's own 502, 503 and 504
included) to the payload logger. A request whose client leaves before its answer is counted with code
499 and has no response event. With tracing on, each request is a span, the parent of the replica's:
the request goes up with a `traceparent` naming it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from modelplane.local.gateway.metrics import CLIENT_CLOSED, UNKNOWN_HOST, GatewayMetrics
from modelplane.local.gateway.revisions import RevisionUpstreams
from modelplane.telemetry import tracing
from modelplane.telemetry.payload_events import PayloadLogSpec, PayloadRecord

if TYPE_CHECKING:
    from modelplane.telemetry.spans import Span

# A body larger than this is not kept for its event: the event says so and carries no data.
MAX_CAPTURED_BYTES = 16 * 1024 * 1024

SubmitRecord = Callable[[PayloadRecord], None]
GRPC_CANCELLED = 1  # a call that ended with no status (reset by the client or the replica)
# How a request ended: answered whole, its client left, or the replica failed part-way through the answer.
ANSWERED, CLIENT_GONE, BROKEN = "answered", "client gone", "broken"


class GatewayObserver:
    """Makes the watch of each request; `submit` takes payload records (None: nothing is logged)."""

    def __init__(self, metrics: GatewayMetrics | None = None, submit: SubmitRecord | None = None) -> None:
        self.metrics = metrics or GatewayMetrics()
        self.submit = submit

    def watch(
        self,
        host: str | None,
        payload_log: PayloadLogSpec | None,
        method: bytes,
        url: bytes,
        headers: list[tuple[bytes, bytes]],
        request_id: bytes,
    ) -> ExchangeWatch:
        capture = None
        if payload_log is not None and self.submit is not None:
            capture = PayloadCapture(payload_log, headers, request_id.decode("latin-1"), self.submit)
        if not tracing.enabled():
            return ExchangeWatch(self.metrics, host or UNKNOWN_HOST, capture)
        path = url.partition(b"?")[0].decode("latin-1")
        span, trace_lines = tracing.enter(headers, method.decode("latin-1"), path, "gateway", host or "")
        if span is not None:
            trace_lines = span.header_lines()
        return ExchangeWatch(self.metrics, host or UNKNOWN_HOST, capture, span, trace_lines)

    def watch_call(self, host: str | None) -> CallWatch:
        return CallWatch(self.metrics, host or UNKNOWN_HOST)


class ExchangeWatch:
    __slots__ = ("_metrics", "_host", "_started", "_status", "_capture", "_span", "_trace_lines", "_ended")

    def __init__(
        self,
        metrics: GatewayMetrics,
        host: str,
        capture: PayloadCapture | None,
        span: Span | None = None,
        trace_lines: bytes | None = None,
    ) -> None:
        self._metrics = metrics
        self._host = host
        self._started = time.perf_counter()
        self._status = 0
        self._capture = capture
        self._span = span
        self._trace_lines = trace_lines  # in place of the client's trace headers (tracing.enter)
        self._ended = False

    def upstream_head(self, head: bytes) -> bytes:
        """The request head for the replica: with tracing on, its trace headers name this request's span
        (or carry the decision not to trace it)."""
        if self._trace_lines is None:
            return head
        return tracing.without_trace_lines(head)[:-2] + self._trace_lines + b"\r\n"

    def request_body(self, data: bytes) -> None:
        if self._capture is not None:
            self._capture.request_body(data)

    def request_done(self) -> None:
        if self._capture is not None:
            self._capture.request_done()

    def response_head(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self._status = status
        if self._capture is not None:
            self._capture.response_head(status, headers)

    def response_body(self, data: bytes) -> None:
        if self._capture is not None:
            self._capture.response_body(data)

    def gateway_answer(self, status: int, message: str) -> None:
        """The gateway answered itself (no route, no replica in time, a replica that failed)."""
        self._status = status
        if self._capture is not None:
            self._capture.gateway_answer(status, message)

    def upstream_error(self, revision: RevisionUpstreams | None, reason: str) -> None:
        if revision is not None:
            self._metrics.upstream_error(revision.revision, reason)

    def end(self, revision: RevisionUpstreams | None, outcome: str) -> None:
        """The request is over (`ANSWERED`, `CLIENT_GONE`, `BROKEN`). Counted once; only a whole
        answer is logged."""
        if self._ended:
            return
        self._ended = True
        status = CLIENT_CLOSED if outcome is CLIENT_GONE or not self._status else self._status
        name = revision.revision if revision is not None else ""
        self._metrics.observe(self._host, name, status, time.perf_counter() - self._started)
        if self._capture is not None and outcome is ANSWERED and self._status:
            self._capture.answered(name)
        if self._span is not None:
            _end_span(self._span, name, status, outcome)


class CallWatch:
    """The same for a gRPC call: counted by its gRPC status (from the replica's trailers, or the
    gateway's own), timed from its headers to its end. gRPC calls are not payload-logged (KServe's
    agent logs REST only)."""

    __slots__ = ("_metrics", "_host", "_started", "_code", "_ended")

    def __init__(self, metrics: GatewayMetrics, host: str) -> None:
        self._metrics = metrics
        self._host = host
        self._started = time.perf_counter()
        self._code: int | None = None
        self._ended = False

    def status(self, code: int) -> None:
        self._code = code

    def trailers(self, headers: list[tuple[bytes, bytes]]) -> None:
        for name, value in headers:
            if name == b"grpc-status" and value.isdigit():
                self._code = int(value)

    def end(self, revision: RevisionUpstreams | None) -> None:
        if self._ended:
            return
        self._ended = True
        name = revision.revision if revision is not None else ""
        code = GRPC_CANCELLED if self._code is None else self._code
        self._metrics.observe_call(self._host, name, code, time.perf_counter() - self._started)


class PayloadCapture:
    """The bodies of one logged request and its answer, and the records made of them."""

    __slots__ = (
        "_spec",
        "_id",
        "_request_content_type",
        "_metadata",
        "_arrived",
        "_submit",
        "_request",
        "_request_size",
        "_status",
        "_content_type",
        "_response",
        "_response_size",
    )

    def __init__(
        self, spec: PayloadLogSpec, headers: list[tuple[bytes, bytes]], request_id: str, submit: SubmitRecord
    ) -> None:
        self._spec = spec
        event_id = content_type = None
        for name, value in headers:
            lower = name.lower()
            if lower == b"content-type" and content_type is None:
                content_type = value.decode("latin-1")
            elif lower == b"ce-id" and event_id is None:
                event_id = value.decode("latin-1")
        # KServe's agent takes the request's ce-id; without one, the request id ties the two events
        # to the request (and to the x-request-id its client sees).
        self._id = event_id or request_id
        self._request_content_type = content_type
        self._metadata = spec.metadata(headers)  # the same on both events
        self._arrived = time.time_ns()
        self._submit = submit
        self._request: list[bytes] = []
        self._request_size = 0
        self._status = 0
        self._content_type: str | None = None
        self._response: list[bytes] = []
        self._response_size = 0

    def request_body(self, data: bytes) -> None:
        self._request_size += len(data)
        if self._request_size <= MAX_CAPTURED_BYTES:
            self._request.append(data)

    def request_done(self) -> None:
        if not self._spec.logs_requests:
            return
        self._submit(
            self._record(
                True,
                self._arrived,
                self._request_content_type,
                self._request,
                self._request_size,
            )
        )

    def response_head(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self._status = status
        self._content_type = _header(headers, b"content-type")
        self._response, self._response_size = [], 0  # a response retried from the start

    def response_body(self, data: bytes) -> None:
        self._response_size += len(data)
        if self._response_size <= MAX_CAPTURED_BYTES:
            self._response.append(data)

    def gateway_answer(self, status: int, message: str) -> None:
        self._status = status
        self._content_type = "application/json"
        body = orjson.dumps({"error": message})
        self._response, self._response_size = [body], len(body)

    def answered(self, revision: str) -> None:
        if not self._spec.logs_responses:
            return
        record = self._record(False, time.time_ns(), self._content_type, self._response, self._response_size)
        record.status = self._status
        record.revision = revision or None
        self._submit(record)

    def _record(
        self, is_request: bool, when_ns: int, content_type: str | None, chunks: list[bytes], size: int
    ) -> PayloadRecord:
        omitted = size if size > MAX_CAPTURED_BYTES else None
        data = b"" if omitted else (chunks[0] if len(chunks) == 1 else b"".join(chunks))
        spec = self._spec
        return PayloadRecord(
            spec,
            is_request,
            self._id,
            when_ns,
            content_type,
            data,
            self._metadata,
            omitted=omitted,
        )


def _end_span(span: Span, revision: str, status: int, outcome: str) -> None:
    span.set_attribute("http.response.status_code", status)
    if revision:
        span.set_attribute("modelplane.revision", revision)
    if status >= 500 or outcome is not ANSWERED:
        span.fail(outcome if outcome is not ANSWERED else "")
    span.end()


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None
