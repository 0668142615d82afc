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

What a request costs:

- off, one test (`enter` and `start_span` return None at once); the W3C `traceparent` and `tracestate`
  headers pass from hop to hop unchanged, so a trace begun by a client goes on beyond modelplane;
- not sampled, no span at all: whether a request is traced is decided once, where it enters a process
  (`sampling`), from the caller's `traceparent` read as bytes. A caller's "not sampled" is followed and
  its trace headers pass on; a trace that begins here unsampled sends its decision on (flags 00);
- traced, a lean span per hop and per stage (`spans`), encoded for OTLP as it ends, and sent in batches
  from the process's event loop (`span_export`).

The SDK is used where it must be: the resource (as the OTEL_* variables describe it), any exporter but
OTLP/HTTP's, and the tracer provider that a model's own spans go through (children of the stage's span,
which is the current span of the OpenTelemetry context while the stage runs).
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from modelplane.telemetry import trace_context

if TYPE_CHECKING:
    from modelplane.telemetry.spans import Span

logger = logging.getLogger("modelplane.tracing")

EXTRA = "tracing"
SCOPE = ("modelplane", "")
# OTLP's span kinds (the same numbers as spans.INTERNAL, SERVER, CLIENT).
INTERNAL, SERVER, CLIENT = 1, 2, 3
without_trace_lines = trace_context.without_trace_lines
# gRPC status codes that make a server span an error: UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED,
# INTERNAL, UNAVAILABLE, DATA_LOSS.
GRPC_SERVER_ERRORS = frozenset((2, 4, 12, 13, 14, 15))


class _Recorder:
    """What a traced process records with: its sampler, where finished spans go, and the SDK's
    current-span lookup."""

    def __init__(self, sampler: Any, export: Any, provider: Any) -> None:
        from opentelemetry.trace import get_current_span

        from modelplane.telemetry.spans import Span, current

        self.sampler = sampler
        self.own_current = current.get
        self.export = export
        self.finish = export.finish
        self.provider = provider
        self.current_span = get_current_span
        self.span_class = Span


_recorder: _Recorder | None = None


def enabled() -> bool:
    """Whether this process traces."""
    return _recorder is not None


def configure(service_name: str) -> bool:
    """Turns tracing on for this process if the OTEL_* variables ask for it; whether it is on."""
    global _recorder
    if _recorder is not None:
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
    except ImportError as exc:
        logger.warning(
            "OTEL_* asks for traces, but the OpenTelemetry SDK is not installed (%s): "
            'pip install "modelplane[%s]"; running untraced',
            exc,
            EXTRA,
        )
        return False
    protocol = _protocol(environ, exporter_name)
    try:
        exporter = _sdk_exporter(exporter_name, protocol)
    except ImportError as exc:
        logger.warning('the OTLP exporter is not installed (%s): pip install "modelplane[%s]"', exc, EXTRA)
        return False
    from modelplane.telemetry.sampling import sampler_from
    from modelplane.telemetry.span_export import OtlpHttpExport, SdkExport

    resource = Resource.create({SERVICE_NAME: environ.get("OTEL_SERVICE_NAME") or service_name})
    provider = TracerProvider(resource=resource)
    processor = BatchSpanProcessor(exporter)  # the spans a model's own code starts with the SDK
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    export: OtlpHttpExport | SdkExport = SdkExport(processor, resource, SCOPE)
    if _fast_path(exporter_name, protocol, environ):
        try:
            export = OtlpHttpExport(environ, resource.attributes, SCOPE)
        except (ValueError, OSError) as exc:  # an endpoint or a certificate it cannot use
            logger.warning("tracing: %s; the SDK's exporter sends the spans", exc)
    _recorder = _Recorder(sampler_from(environ, provider.sampler), export, provider)
    atexit.register(shutdown)
    logger.info(
        "tracing: spans of %s go to %s",
        resource.attributes[SERVICE_NAME],
        _destination(exporter_name, protocol, environ),
    )
    return True


def shutdown() -> None:
    """Sends the spans still waiting and stops tracing (a process that exits with `os._exit` calls this
    first)."""
    global _recorder
    recorder, _recorder = _recorder, None
    if recorder is not None:
        recorder.export.shutdown()
        recorder.provider.shutdown()


def enter(
    headers: Iterable[tuple[bytes, bytes]], method: str, path: str, hop: str, address: str | None = None
) -> tuple[Span | None, bytes | None]:
    """The server span of a request entering this process, the child of the caller's `traceparent`
    (or the root of a new trace), when the request is traced here; and when it is not, the trace
    header lines to send on in place of the caller's (None: the caller's go on unchanged).

    This is where sampling is decided: a caller's unsampled `traceparent` makes no span, and a trace
    that begins here unsampled sends its decision on, so the hops after this one make none either.
    The span is `<method> <path>`, with the request's method and path, `modelplane.hop` and, given
    one, `server.address` (the host it was sent to) as attributes: built only for a span.
    """
    if _recorder is None:
        return None, None
    span, unsampled = _enter(headers, f"{method} {path}", _http_attributes, (method, path, hop, address))
    if unsampled is None:
        return span, None
    return None, trace_context.header_lines(*unsampled, False, "")


def enter_call(
    headers: Iterable[tuple[bytes, bytes]], path: str, hop: str, address: str | None = None
) -> tuple[Span | None, tuple[bytes, bytes] | None]:
    """`enter` for a gRPC call to `path` (`/<service>/<method>`): the span is `<service>/<method>`,
    with OpenTelemetry's `rpc.*` attributes; a call not traced here whose trace begins here goes on
    with the `traceparent` header given (name, value)."""
    if _recorder is None:
        return None, None
    span, unsampled = _enter(headers, path.lstrip("/"), _rpc_attributes, (path, hop, address))
    if unsampled is None:
        return span, None
    return None, trace_context.header_pair(*unsampled, False)


def _http_attributes(method: str, path: str, hop: str, address: str | None) -> dict[str, Any]:
    attributes = {"http.request.method": method, "url.path": path, "modelplane.hop": hop}
    if address is not None:
        attributes["server.address"] = address
    return attributes


def _rpc_attributes(path: str, hop: str, address: str | None) -> dict[str, Any]:
    service, _, method = path.lstrip("/").rpartition("/")
    attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method, "modelplane.hop": hop}
    if address is not None:
        attributes["server.address"] = address
    return attributes


def _enter(
    headers: Iterable[tuple[bytes, bytes]],
    name: str,
    attributes: Callable[..., dict[str, Any]],
    values: tuple,
) -> tuple[Span | None, tuple[bytes, bytes] | None]:
    """The span, when the request is traced here; else, for a trace that begins here unsampled, the
    ids its `traceparent` goes on with."""
    recorder = _recorder
    traceparent, tracestate = trace_context.incoming(headers)
    parent = trace_context.parse(traceparent, tracestate) if traceparent is not None else None
    sampler = recorder.sampler
    if parent is None:
        trace_id = trace_context.new_trace_id()
        if not sampler.sampled(trace_id, None):
            return None, (trace_id, trace_context.new_span_id())
        parent_id, remote, trace_state = b"", False, ""
    else:
        decision = sampler.follows(parent.sampled)
        if decision is False:  # the caller's decision, and its trace headers, go on
            return None, None
        trace_id, parent_id, remote, trace_state = parent.trace_id, parent.span_id, True, parent.trace_state
        if decision is None and not sampler.sampled(trace_id, parent.sampled, parent_id):
            return None, None
    span = recorder.span_class(
        recorder.finish, name, SERVER, trace_id, parent_id, remote, trace_state, attributes(*values)
    )
    return span, None


def end_call(span: Span, code: int) -> None:
    """Gives a gRPC call's span its status code (a number), and makes it an error where the code says
    the server failed (OpenTelemetry's conventions for server spans)."""
    span.set_attribute("rpc.grpc.status_code", code)
    if code in GRPC_SERVER_ERRORS:
        span.fail()


def traced() -> bool:
    """Whether the request at hand is traced here: it entered with a span (`enter`), current now."""
    recorder = _recorder
    return recorder is not None and recorder.own_current() is not None


def start_span(name: str, kind: int = INTERNAL, attributes: dict[str, Any] | None = None) -> Span | None:
    """A child of the current span, when there is one that records (the request is traced here);
    else None. `with span:` makes it the current span for the block, and ends it."""
    recorder = _recorder
    if recorder is None:
        return None
    parent = recorder.current_span()  # the OpenTelemetry context's: a stage's, or the model's own
    if type(parent) is not recorder.span_class:
        if parent.is_recording():  # a span of the model's own code, started with the SDK's tracer
            context = parent.get_span_context()
            trace_state = context.trace_state.to_header() if context.trace_state else ""
            return recorder.span_class(
                recorder.finish,
                name,
                kind,
                context.trace_id.to_bytes(16, "big"),
                context.span_id.to_bytes(8, "big"),
                False,
                trace_state,
                attributes,
            )
        parent = recorder.own_current()
        if parent is None:
            return None
    return recorder.span_class(
        recorder.finish, name, kind, parent.trace_id, parent.span_id, False, parent.trace_state, attributes
    )


# The OpenTelemetry Python SDK's own names of its OTLP exporters (those `opentelemetry-instrument`
# takes), and the protocol each one speaks.
SDK_OTLP_EXPORTERS = {"otlp_proto_http": "http/protobuf", "otlp_proto_grpc": "grpc"}
PROTOCOLS = ("http/protobuf", "grpc")


def _exporter_name(environ: Mapping[str, str]) -> str | None:
    """The exporter spans go to: `otlp`, one of SDK_OTLP_EXPORTERS, or `console`; None when tracing is
    off. A name it has no exporter for is said in the log, rather than turning tracing off unseen."""
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    setting = environ.get("OTEL_TRACES_EXPORTER", "otlp")
    names = [name.strip().lower() for name in setting.split(",") if name.strip()] or ["otlp"]
    name = names[0]
    if len(names) > 1:
        logger.warning("OTEL_TRACES_EXPORTER=%r: spans go to one exporter, the first (%s)", setting, name)
    if name in ("none", "console"):
        return None if name == "none" else name
    if name != "otlp" and name not in SDK_OTLP_EXPORTERS:
        logger.warning(
            "OTEL_TRACES_EXPORTER=%r: no such exporter here (otlp, %s, console, none); running untraced",
            setting,
            ", ".join(SDK_OTLP_EXPORTERS),
        )
        return None
    if environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return name
    return None


def _protocol(environ: Mapping[str, str], name: str) -> str:
    """The OTLP protocol: the one the exporter's name says, else OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL's,
    `http/protobuf` by default and for a protocol the SDK has no exporter for (`http/json`)."""
    if name in SDK_OTLP_EXPORTERS:
        return SDK_OTLP_EXPORTERS[name]
    setting = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    protocol = (setting or "http/protobuf").strip().lower()
    if protocol not in PROTOCOLS:
        logger.warning("OTLP protocol %r is not one of %s: spans go over http/protobuf", setting, PROTOCOLS)
        return "http/protobuf"
    return protocol


def _fast_path(name: str, protocol: str, environ: Mapping[str, str]) -> bool:
    """Whether modelplane sends the spans itself: OTLP over HTTP, without the SDK's credential
    provider (a `requests` session only the SDK's exporter can use)."""
    if name == "console" or protocol == "grpc":
        return False
    return not any(
        environ.get(f"OTEL_PYTHON_EXPORTER_OTLP_HTTP{kind}_CREDENTIAL_PROVIDER") for kind in ("", "_TRACES")
    )


def _sdk_exporter(name: str, protocol: str) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter()


def _destination(name: str, protocol: str, environ: Mapping[str, str]) -> str:
    if name == "console":
        return "the console"
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return f"{endpoint} (OTLP, {protocol})"
