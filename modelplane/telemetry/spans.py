"""The spans modelplane records: OpenTelemetry spans (the API's `Span`), kept lean.

A span holds its ids as bytes, its attributes as a dict and its times as integers, and is handed, when it
ends, to its recorder (which encodes it for OTLP, or gives the SDK's exporter a `ReadableSpan` of it).
Being an API span, it can be the current span of the OpenTelemetry context: a model's own code sees a
stage's span there, and the spans it starts with the SDK's tracer are its children.
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags, TraceState

from modelplane.telemetry import trace_context
from modelplane.telemetry.otlp_wire import STATUS_ERROR, STATUS_OK

# OTLP's span kinds (trace.proto), and the API's names for them.
INTERNAL, SERVER, CLIENT = 1, 2, 3
API_KINDS = {
    INTERNAL: trace_api.SpanKind.INTERNAL,
    SERVER: trace_api.SpanKind.SERVER,
    CLIENT: trace_api.SpanKind.CLIENT,
}
# modelplane's current span (a request's, a router node's...), where the OpenTelemetry context holds no
# span that records: setting it costs a fraction of attaching an OpenTelemetry context.
current: ContextVar[Span | None] = ContextVar("modelplane_current_span", default=None)
_STATUS_CODES = {StatusCode.UNSET: 0, StatusCode.OK: STATUS_OK, StatusCode.ERROR: STATUS_ERROR}
_NO_EVENTS: tuple = ()  # a span's events until it has one: most have none, and need no list
_random_bits = random.getrandbits  # a span id from 64 of them: two fifths cheaper than randbytes(8)
_time_ns = time.time_ns


class Span(trace_api.Span):
    """One recorded operation of a traced request."""

    __slots__ = (
        "trace_id",
        "span_id",
        "parent_id",
        "remote_parent",
        "trace_state",
        "name",
        "kind",
        "start",
        "end_time",
        "attributes",
        "events",
        "status",
        "status_message",
        "_finish",
        "_context",
        "_token",
        "_shared",
        "_shared_token",
    )

    def __init__(
        self,
        finish: Callable[[Span], None],
        name: str,
        kind: int,
        trace_id: bytes,
        parent_id: bytes,
        remote_parent: bool,
        trace_state: str,
        attributes: dict[str, Any] | None,
    ) -> None:
        self._finish = finish
        self.name = name
        self.kind = kind
        self.trace_id = trace_id
        self.span_id = _random_bits(64).to_bytes(8, "big")
        self.parent_id = parent_id
        self.remote_parent = remote_parent
        self.trace_state = trace_state
        self.attributes = attributes
        self.events: list[tuple[str, int, Mapping[str, Any] | None]] | tuple = _NO_EVENTS
        self.status = 0
        self.status_message = ""
        self.end_time = 0
        self._context: SpanContext | None = None
        self._shared = False  # (_token and _shared_token are set where they are used, on entering)
        self.start = _time_ns()

    def header_lines(self) -> bytes:
        """The `traceparent` (and `tracestate`) lines that make the next hop's span a child of this one."""
        return trace_context.header_lines(self.trace_id, self.span_id, True, self.trace_state)

    def header_pairs(self) -> list[tuple[bytes, bytes]]:
        """The same as HTTP/2 headers (name, value)."""
        pairs = [trace_context.header_pair(self.trace_id, self.span_id, True)]
        if self.trace_state:
            pairs.append((trace_context.TRACESTATE, self.trace_state.encode("latin-1")))
        return pairs

    def trace_headers(self) -> dict[str, str]:
        headers = {"traceparent": f"00-{self.trace_id.hex()}-{self.span_id.hex()}-01"}
        if self.trace_state:
            headers["tracestate"] = self.trace_state
        return headers

    def fail(self, description: str = "") -> None:
        """Marks the span an error (a 5xx, an answer cut short)."""
        self.status, self.status_message = STATUS_ERROR, description

    # -- as the current span ---------------------------------------------------------------------

    def shared(self) -> Span:
        """`with span.shared():` makes it the current span of the OpenTelemetry context too, for the
        block: the model's own code (a stage) sees it there, and its spans become its children."""
        self._shared = True
        return self

    def __enter__(self) -> Span:
        """Makes it the current span until the block ends, and ends it then; an exception that
        escapes the block is recorded and makes it an error."""
        self._token = current.set(self)
        if self._shared:
            self._shared_token = context_api.attach(trace_api.set_span_in_context(self))
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._shared:
            context_api.detach(self._shared_token)
        current.reset(self._token)
        if exc is not None:
            self.record_exception(exc, escaped=True)
            self.fail(f"{type(exc).__name__}: {exc}")
        if not self.end_time:  # end(), without its call
            self.end_time = _time_ns()
            self._finish(self)

    # -- the OpenTelemetry API ---------------------------------------------------------------------

    def end(self, end_time: int | None = None) -> None:
        if self.end_time:
            return
        self.end_time = end_time or _time_ns()
        self._finish(self)

    def get_span_context(self) -> SpanContext:
        if self._context is None:
            self._context = SpanContext(
                int.from_bytes(self.trace_id, "big"),
                int.from_bytes(self.span_id, "big"),
                is_remote=False,
                trace_flags=TraceFlags(TraceFlags.SAMPLED),
                trace_state=TraceState.from_header([self.trace_state]) if self.trace_state else None,
            )
        return self._context

    def is_recording(self) -> bool:
        return not self.end_time

    def set_attribute(self, key: str, value: Any) -> None:
        if self.attributes is None:
            self.attributes = {}
        self.attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(
        self, name: str, attributes: Mapping[str, Any] | None = None, timestamp: int | None = None
    ) -> None:
        if self.events is _NO_EVENTS:
            self.events = []
        self.events.append((name, timestamp or _time_ns(), dict(attributes) if attributes else None))

    def update_name(self, name: str) -> None:
        self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if isinstance(status, Status):
            status, description = status.status_code, status.description
        if self.status == STATUS_OK:  # OK is final, as the specification says
            return
        self.status = _STATUS_CODES[status]
        self.status_message = (description or "") if status is StatusCode.ERROR else ""

    def record_exception(
        self,
        exception: BaseException,
        attributes: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        kind = type(exception)
        module = kind.__module__
        recorded = {
            "exception.type": f"{module}.{kind.__qualname__}"
            if module and module != "builtins"
            else kind.__qualname__,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
            **(attributes or {}),
        }
        self.add_event("exception", recorded, timestamp)
