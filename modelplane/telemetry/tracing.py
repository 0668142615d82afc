"""OpenTelemetry traces across modelplane's processes: the gateway, the model server (its stages as
child spans), transformers' calls to their predictors, and the graph router's steps.

Tracing is on in a process when the standard variables say where spans go: `OTEL_EXPORTER_OTLP_ENDPOINT`
(or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) for OTLP, over `http/protobuf` unless
`OTEL_EXPORTER_OTLP_PROTOCOL` (or `..._TRACES_PROTOCOL`) says `grpc`; `OTEL_TRACES_EXPORTER=console`
prints them instead, `none` (or `OTEL_SDK_DISABLED=true`) turns tracing off. The service name is
`OTEL_SERVICE_NAME`, else the process's own (`modelplane-gateway`, the replica's component...), and
`OTEL_RESOURCE_ATTRIBUTES` adds to the resource, as the SDK reads them. It needs the OpenTelemetry
SDK (`pip install "modelplane[tracing]"`); without it a process that is asked to trace says so once
and runs untraced.

Off, tracing costs a request one `tracer() is None` test: the W3C `traceparent` and `tracestate`
headers still pass from hop to hop unchanged, so a trace begun by a client goes on beyond modelplane.
Tracing every request costs much (OpenTelemetry's SDK is Python too); a sampler
(`OTEL_TRACES_SAMPLER=parentbased_traceidratio`, `OTEL_TRACES_SAMPLER_ARG=0.1`) picks the requests to
trace where they enter, and with the default parent-based sampler a hop whose caller did not sample the
request (`traceparent` flags 00) makes no span at all and passes the caller's trace headers on.
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

logger = logging.getLogger("modelplane.tracing")

TRACE_HEADERS = (b"traceparent", b"tracestate")
EXTRA = "tracing"

_tracer: Any = None
_provider: Any = None
_propagator: Any = None
_parent_based = False  # the sampler follows the caller's decision
_current_span: Any = None


def tracer() -> Any:
    """The process's tracer, or None when tracing is off."""
    return _tracer


def configure(service_name: str) -> bool:
    """Turns tracing on for this process if the OTEL_* variables ask for it; whether it is on."""
    global _tracer, _provider, _propagator, _parent_based, _current_span
    if _tracer is not None:
        return True
    environ = os.environ
    exporter_name = _exporter_name(environ)
    if exporter_name is None:
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError as exc:
        logger.warning(
            "OTEL_* asks for traces, but the OpenTelemetry SDK is not installed (%s): "
            'pip install "modelplane[%s]"; running untraced',
            exc,
            EXTRA,
        )
        return False
    try:
        exporter = _exporter(exporter_name, environ)
    except ImportError as exc:
        logger.warning('the OTLP exporter is not installed (%s): pip install "modelplane[%s]"', exc, EXTRA)
        return False
    resource = Resource.create({SERVICE_NAME: environ.get("OTEL_SERVICE_NAME") or service_name})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _parent_based = type(provider.sampler).__name__.startswith("ParentBased")
    _current_span = trace.get_current_span
    _provider = provider
    _propagator = TraceContextTextMapPropagator()
    _tracer = provider.get_tracer("modelplane")
    atexit.register(shutdown)
    logger.info(
        "tracing: spans of %s go to %s",
        resource.attributes[SERVICE_NAME],
        _destination(exporter_name, environ),
    )
    return True


def shutdown() -> None:
    """Sends the spans still buffered and stops tracing (a process that exits with `os._exit` calls
    this first)."""
    global _tracer, _provider
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()


def unsampled(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether the caller chose not to trace this request (its `traceparent`'s sampled flag is off) and
    the sampler follows the caller: then this hop makes no span, and passes the trace headers on."""
    if not _parent_based:
        return False
    for name, value in headers:
        if name.lower() == b"traceparent":
            return _sampled_flag_off(value.decode("latin-1"))
    return False


def recording() -> bool:
    """Whether the current span records: the request is traced here (so its parts are spans too)."""
    return _current_span is not None and _current_span().is_recording()


def _sampled_flag_off(traceparent: str) -> bool:
    try:
        return not int(traceparent.strip()[-2:], 16) & 1
    except ValueError:  # not a traceparent: the SDK starts a trace of its own
        return False


def context_from(headers: Iterable[tuple[bytes, bytes]]) -> Any:
    """The trace context a request's `traceparent` and `tracestate` carry (a root context without them)."""
    carrier = {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in headers
        if name.lower() in TRACE_HEADERS
    }
    return _propagator.extract(carrier)


def trace_headers(context: Any = None) -> dict[str, str]:
    """`traceparent` (and `tracestate`) naming the current span, or the span of `context`."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=context)
    return carrier


def header_lines(context: Any = None) -> bytes:
    """The same, as HTTP header lines."""
    return "".join(f"{name}: {value}\r\n" for name, value in trace_headers(context).items()).encode("latin-1")


def context_of(span: Any) -> Any:
    """A context whose current span is `span` (to inject it, or to start its children)."""
    from opentelemetry.trace import set_span_in_context

    return set_span_in_context(span)


def without_trace_lines(block: bytes) -> bytes:
    """A block of `Name: value\r\n` header lines without its traceparent and tracestate."""
    if b"trace" not in block.lower():
        return block
    lines = block.split(b"\r\n")
    kept = [line for line in lines if line.split(b":", 1)[0].strip().lower() not in TRACE_HEADERS]
    return b"\r\n".join(kept)


def _exporter_name(environ: Mapping[str, str]) -> str | None:
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    name = environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")[0].strip().lower()
    if name == "console":
        return name
    if name != "otlp":
        return None
    if environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return name
    return None


def _protocol(environ: Mapping[str, str]) -> str:
    return (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).lower()


def _exporter(name: str, environ: Mapping[str, str]) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if _protocol(environ) == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter()


def _destination(name: str, environ: Mapping[str, str]) -> str:
    if name == "console":
        return "the console"
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return f"{endpoint} (OTLP, {_protocol(environ)})"
