"""modelplane's own spans, as the OpenTelemetry SDK would have made them: their OTLP encoding is the
SDK's, byte for byte once parsed; a `traceparent` is read as the W3C specification says; a trace id
ratio samples the traces the SDK's sampler samples."""

from __future__ import annotations

import random

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from modelplane.telemetry import otlp_wire, trace_context
from modelplane.telemetry.sampling import sampler_from
from modelplane.telemetry.span_export import readable
from modelplane.telemetry.spans import CLIENT, INTERNAL, SERVER, Span

RESOURCE = Resource.create({"service.name": "iris-predictor", "k8s.namespace.name": "default"})
SCOPE = ("modelplane", "")


def ended(
    name: str, kind: int, parent: bytes, remote: bool, attributes: dict | None, trace_state: str = ""
) -> Span:
    span = Span(lambda _: None, name, kind, random.randbytes(16), parent, remote, trace_state, attributes)
    span.end()
    return span


def test_spans_encode_as_the_sdk_encodes_them():
    error = ended("predict", INTERNAL, random.randbytes(8), False, {"modelplane.model": "iris"})
    error.add_event("retry", {"attempt": 2})
    error.record_exception(ValueError("bad input"))
    error.fail("ValueError: bad input")
    spans = [
        ended(
            "POST /v1/models/iris:predict",
            SERVER,
            random.randbytes(8),
            True,
            {"url.path": "/v1/models/iris:predict", "code": 200, "ok": True, "ratio": 0.5, "big": -(2**40)},
            trace_state="vendor=a,other=b",
        ),
        ended(
            "POST http://iris.default.localhost/", CLIENT, b"", False, {"hosts": ["a", "b"], "ids": [1, 2]}
        ),
        ended("postprocess", INTERNAL, random.randbytes(8), False, None),
        error,
    ]
    ours = otlp_wire.export_request(
        otlp_wire.resource_field(RESOURCE.attributes),
        otlp_wire.scope_field(*SCOPE),
        [otlp_wire.span_field(span, 0x300 if span.remote_parent else 0x100) for span in spans],
    )
    sdks = encode_spans([readable(span, RESOURCE, InstrumentationScope(*SCOPE)) for span in spans])
    assert ExportTraceServiceRequest.FromString(ours) == sdks


TRACE, SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


@pytest.mark.parametrize(
    ("traceparent", "sampled"),
    [
        (f"00-{TRACE}-{SPAN}-01", True),
        (f"00-{TRACE}-{SPAN}-00", False),
        (f" 00-{TRACE}-{SPAN}-03 ", True),
        (f"01-{TRACE}-{SPAN}-01-a-later-version", True),
    ],
)
def test_a_valid_traceparent_names_its_parent(traceparent, sampled):
    parent = trace_context.parse(traceparent.encode(), b"vendor=a")
    assert (parent.trace_id.hex(), parent.span_id.hex(), parent.sampled) == (TRACE, SPAN, sampled)
    assert parent.trace_state == "vendor=a"


@pytest.mark.parametrize(
    "traceparent",
    [
        f"ff-{TRACE}-{SPAN}-01",  # the version no one may use
        f"00-{TRACE}-{SPAN}-01-more",  # version 00 has nothing after its flags
        f"00-{TRACE.upper()}-{SPAN}-01",  # lower case only
        f"00-{'0' * 32}-{SPAN}-01",
        f"00-{TRACE}-{'0' * 16}-01",
        f"00-{TRACE[:-1]}-{SPAN}-01",
        "not a traceparent",
    ],
)
def test_an_invalid_traceparent_begins_a_trace(traceparent):
    assert trace_context.parse(traceparent.encode(), None) is None


def test_a_trace_id_ratio_samples_what_the_sdks_sampler_samples():
    ours = sampler_from(
        {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}
    )
    sdks = ParentBased(TraceIdRatioBased(0.25))
    trace_ids = [random.randbytes(16) for _ in range(2000)]
    decisions = [ours.sampled(trace_id, None) for trace_id in trace_ids]
    assert decisions == [
        sdks.should_sample(None, int.from_bytes(trace_id, "big"), "request").decision.is_sampled()
        for trace_id in trace_ids
    ]
    assert 300 < sum(decisions) < 700
    assert ours.follows(False) is False and ours.follows(True) is True  # a caller's decision is followed


def test_a_sampler_modelplane_does_not_know_is_the_sdks():
    asked = []

    class Counting(ParentBased):
        def should_sample(self, parent_context, trace_id, name, *rest, **more):
            asked.append(trace_id)
            return super().should_sample(parent_context, trace_id, name, *rest, **more)

    sampler = sampler_from({"OTEL_TRACES_SAMPLER": "my_own"}, Counting(ALWAYS_ON))
    assert sampler.follows(False) is None  # the SDK's sampler decides, with the caller's span in hand
    assert sampler.sampled(random.randbytes(16), None) is True
    assert sampler.sampled(random.randbytes(16), False, random.randbytes(8)) is False
    assert sampler.sampled(random.randbytes(16), True, random.randbytes(8)) is True
    assert len(asked) == 3
