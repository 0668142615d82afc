"""Which exporter the OTEL_* variables choose, as the OpenTelemetry Python SDK names them, and that a
choice modelplane cannot act on is said in the log rather than turning tracing off unseen."""

import logging

import pytest

from modelplane.telemetry import tracing

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}


@pytest.mark.parametrize(
    ("exporter", "protocol"), [("otlp_proto_http", "http/protobuf"), ("otlp_proto_grpc", "grpc")]
)
def test_the_sdks_own_otlp_exporter_names_trace_over_their_protocol(exporter, protocol):
    environ = {**ENDPOINT, "OTEL_TRACES_EXPORTER": exporter, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    name = tracing._exporter_name(environ)
    assert name == exporter
    assert tracing._protocol(environ, name) == protocol


def test_an_exporter_there_is_none_of_is_a_warning(caplog):
    with caplog.at_level(logging.WARNING, "modelplane.tracing"):
        assert tracing._exporter_name({**ENDPOINT, "OTEL_TRACES_EXPORTER": "zipkin"}) is None
    assert "'zipkin'" in caplog.text and "untraced" in caplog.text


def test_of_several_exporters_the_first_is_used_and_the_others_are_a_warning(caplog):
    with caplog.at_level(logging.WARNING, "modelplane.tracing"):
        assert tracing._exporter_name({**ENDPOINT, "OTEL_TRACES_EXPORTER": "otlp, console"}) == "otlp"
    assert "the first (otlp)" in caplog.text


def test_none_and_no_endpoint_are_off_without_a_word(caplog):
    with caplog.at_level(logging.WARNING, "modelplane.tracing"):
        assert tracing._exporter_name({**ENDPOINT, "OTEL_TRACES_EXPORTER": "none"}) is None
        assert tracing._exporter_name({"OTEL_TRACES_EXPORTER": "otlp"}) is None
    assert caplog.text == ""


def test_a_protocol_without_an_exporter_is_a_warning_and_http_protobuf(caplog):
    with caplog.at_level(logging.WARNING, "modelplane.tracing"):
        assert tracing._protocol({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "otlp") == "http/protobuf"
    assert "'http/json'" in caplog.text
