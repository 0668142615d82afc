"""What the gateway records of each request: its metrics, and, where its route has a `logger`, its
payload.

An `ExchangeWatch` follows one request from its head to the end of its answer. The proxy tells it what
passes (`request_body`, `response_head`...) and how the request ended (`end`); the watch counts the
request once it ends and, for a logged route, hands a record of the request (once its body is whole)
and of the answer (once it is complete, whatever its status, the gateway's own 502, 503 and 504
included) to the payload logger. A request whose client leaves before its answer is counted with code
499 and has no response event. With tracing on, each request is a span, the parent of the replica's:
the request goes up with a `traceparent` naming it. A `CallWatch` does the same for a gRPC call.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from modelplane.local.gateway.metrics import CLIENT_CLOSED, UNKNOWN_HOST, GatewayMetrics
from modelplane.local.gateway.revisions import RevisionUpstreams
from modelplane.protocol.grpc.status import decode_message
from modelplane.protocol.http2.hpack import find_header
from modelplane.protocol.random_ids import random_uuid_bytes
from modelplane.telemetry import tracing
from modelplane.telemetry.payload_capture import PayloadCapture, SubmitRecord
from modelplane.telemetry.payload_events import PayloadLogSpec, header_text
from modelplane.telemetry.trace_context import without_trace_headers

if TYPE_CHECKING:
    from modelplane.telemetry.spans import Span

GRPC_CANCELLED = 1  # a call that ended with no status (reset by the client or the replica)
# How a request ended: answered whole, its client left, or the replica failed part-way through the answer.
ANSWERED, CLIENT_GONE, BROKEN = "answered", "client gone", "broken"


# Marks of a health check: Knative's queue-proxy's probes of the container it serves carry one of the
# first two headers, the kubelet's probes its user agent.
PROBE_HEADERS = frozenset({b"k-kubelet-probe", b"k-network-probe"})
REQUEST_ID = b"x-request-id"
KUBE_PROBE_AGENT = b"kube-probe/"


def is_probe(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a request is a probe, which is passed on but is not a payload to log."""
    for name, value in headers:
        lower = name.lower()
        if lower in PROBE_HEADERS or (lower == b"user-agent" and value.startswith(KUBE_PROBE_AGENT)):
            return True
    return False


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
        if payload_log is not None and self.submit is not None and not is_probe(headers):
            capture = PayloadCapture(payload_log, headers, header_text(request_id), self.submit)
        if not tracing.enabled():
            return ExchangeWatch(self.metrics, host or UNKNOWN_HOST, capture)
        path = url.partition(b"?")[0].decode("latin-1")
        span, trace_lines = tracing.enter(headers, method.decode("latin-1"), path, "gateway", host or "")
        if span is not None:
            trace_lines = span.header_lines()
        return ExchangeWatch(self.metrics, host or UNKNOWN_HOST, capture, span, trace_lines)

    def watch_call(
        self,
        host: str | None,
        payload_log: PayloadLogSpec | None,
        path: bytes,
        headers: list[tuple[bytes, bytes]],
    ) -> CallWatch:
        capture = added_id = None
        if payload_log is not None and self.submit is not None and not is_probe(headers):
            # A logged call without an `x-request-id` (or a `ce-id`, which its events would take) gets
            # one, as a REST request does, and its client is told it in the answer's headers: the id
            # of its events.
            request_id = find_header(headers, REQUEST_ID)
            if request_id is None:
                request_id = random_uuid_bytes()
                if find_header(headers, b"ce-id") is None:
                    added_id = request_id
            capture = PayloadCapture(
                payload_log, headers, header_text(request_id), self.submit, path.decode("latin-1")
            )
        if not tracing.enabled():
            return CallWatch(self.metrics, host or UNKNOWN_HOST, capture, added_id=added_id)
        span, unsampled = tracing.enter_call(headers, path.decode("latin-1"), "gateway", host or "")
        trace_headers = span.header_pairs() if span is not None else [unsampled] if unsampled else None
        return CallWatch(self.metrics, host or UNKNOWN_HOST, capture, span, trace_headers, added_id)


class _PayloadWatch:
    """What a request passes to its payload capture, when its route logs."""

    __slots__ = ("_capture",)

    def __init__(self, capture: PayloadCapture | None) -> None:
        self._capture = capture

    def request_body(self, data: bytes) -> None:
        if self._capture is not None:
            self._capture.request_body(data)

    def request_done(self) -> None:
        if self._capture is not None:
            self._capture.request_done()

    def response_body(self, data: bytes) -> None:
        if self._capture is not None:
            self._capture.response_body(data)


class ExchangeWatch(_PayloadWatch):
    __slots__ = ("_metrics", "_host", "_started", "_status", "_span", "_trace_lines", "_ended")

    def __init__(
        self,
        metrics: GatewayMetrics,
        host: str,
        capture: PayloadCapture | None,
        span: Span | None = None,
        trace_lines: bytes | None = None,
    ) -> None:
        super().__init__(capture)
        self._metrics = metrics
        self._host = host
        self._started = time.perf_counter()
        self._status = 0
        self._span = span
        self._trace_lines = trace_lines  # in place of the client's trace headers (tracing.enter)
        self._ended = False

    def upstream_head(self, head: bytes) -> bytes:
        """The request head for the replica: with tracing on, its trace headers name this request's span
        (or carry the decision not to trace it)."""
        if self._trace_lines is None:
            return head
        return tracing.without_trace_lines(head)[:-2] + self._trace_lines + b"\r\n"

    def response_head(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self._status = status
        if self._capture is not None:
            self._capture.response_head(status, headers)

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


class CallWatch(_PayloadWatch):
    """The same for a gRPC call: counted by its gRPC status (from the replica's trailers, or the
    gateway's own), timed from its headers to its end; for a logged route, its messages each way
    (once the request is complete, and once the call has its status); with tracing on, a span."""

    __slots__ = (
        "_metrics",
        "_host",
        "_started",
        "_code",
        "_message",
        "_span",
        "_trace_headers",
        "_added_id",
        "_ended",
    )

    def __init__(
        self,
        metrics: GatewayMetrics,
        host: str,
        capture: PayloadCapture | None = None,
        span: Span | None = None,
        trace_headers: list[tuple[bytes, bytes]] | None = None,
        added_id: bytes | None = None,
    ) -> None:
        super().__init__(capture)
        self._metrics = metrics
        self._host = host
        self._started = time.perf_counter()
        self._code: int | None = None
        self._message = ""
        self._span = span
        self._trace_headers = trace_headers  # in place of the client's (tracing.enter_call)
        self._added_id = [(REQUEST_ID, added_id)] if added_id is not None else None
        self._ended = False

    def upstream_headers(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """The call's headers for the replica: with tracing on, its trace headers name this call's span
        (or carry the decision not to trace it); a logged call has its request id."""
        if self._trace_headers is not None:
            headers = without_trace_headers(headers) + self._trace_headers
        if self._added_id is not None:
            headers = headers + self._added_id
        return headers

    def client_headers(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """The answer's headers for the client: a logged call's has the request id the gateway gave it."""
        if self._added_id is None:
            return headers
        return headers + self._added_id

    def response_head(self, headers: list[tuple[bytes, bytes]]) -> None:
        if self._capture is not None:
            self._capture.response_head(200, headers)

    def status(self, code: int, message: str = "") -> None:
        self._code, self._message = code, message

    def trailers(self, headers: list[tuple[bytes, bytes]]) -> None:
        for name, value in headers:
            if name == b"grpc-status" and value.isdigit():
                self._code = int(value)
            elif name == b"grpc-message" and self._capture is not None:
                self._message = decode_message(value)

    def end(self, revision: RevisionUpstreams | None) -> None:
        """The call is over. Counted once; logged when it has a status (a call reset by either side
        has none)."""
        if self._ended:
            return
        self._ended = True
        name = revision.revision if revision is not None else ""
        code = GRPC_CANCELLED if self._code is None else self._code
        self._metrics.observe_call(self._host, name, code, time.perf_counter() - self._started)
        if self._capture is not None and self._code is not None:
            self._capture.call_answered(self._code, self._message, name)
        if self._span is not None:
            if name:
                self._span.set_attribute("modelplane.revision", name)
            tracing.end_call(self._span, code)
            self._span.end()


def _end_span(span: Span, revision: str, status: int, outcome: str) -> None:
    span.set_attribute("http.response.status_code", status)
    if revision:
        span.set_attribute("modelplane.revision", revision)
    if status >= 500 or outcome is not ANSWERED:
        span.fail(outcome if outcome is not ANSWERED else "")
    span.end()
