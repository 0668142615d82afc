"""Tracing in the model server: with the OTEL_* variables set, each inference request (REST or gRPC) is a server
span, the child of the caller's `traceparent`, with the model's stages as its children, exported over
OTLP to a real receiver; a transformer's call to its predictor carries its own span onward."""

from __future__ import annotations

import os

import grpc
import httpx
import pytest

from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import InferenceStub
from tests.server.processes import serve
from tests.telemetry.otlp_receiver import OtlpReceiver

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


@pytest.fixture(scope="module")
def receiver():
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def traced_env(receiver):
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }


def traced_model(env: dict, model_class: str, name: str, grpc: bool = True):
    """A traced `modelplane serve` of one test model, its spans under the service `<name>-predictor`."""
    server = serve(
        "--model-class",
        f"tests/server/models.py:{model_class}",
        "--model-name",
        name,
        grpc=grpc,
        env={**env, "OTEL_SERVICE_NAME": f"{name}-predictor"},
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def predictor(traced_env):
    yield from traced_model(traced_env, "StagesModel", "stages", grpc=False)


@pytest.fixture(scope="module")
def grpc_predictor(traced_env):
    yield from traced_model(traced_env, "EchoModel", "echo")


@pytest.fixture(scope="module")
def transformer(predictor, traced_env):
    server = serve(
        "--model-class",
        "examples/transformer/transformer.py:MillimetresToCentimetres",
        "--model-name",
        "stages",
        f"--predictor-host=127.0.0.1:{predictor.http_port}",
        grpc=False,
        env={**traced_env, "OTEL_SERVICE_NAME": "stages-transformer"},
    )
    yield server
    server.stop()


def test_a_request_is_a_server_span_with_its_stages_as_children(predictor, receiver):
    answer = httpx.post(
        f"{predictor.url}/v1/models/stages:predict",
        json={"instances": [[1, 2]]},
        headers={"traceparent": TRACEPARENT},
    )
    assert answer.status_code == 200, answer.text

    def complete(spans):
        return {"preprocess", "predict", "postprocess"} <= {span.name for span in spans}

    spans = receiver.wait_for_trace(TRACE_ID, complete)
    (server,) = [span for span in spans if span.kind == "server"]
    assert server.parent_id == PARENT_ID
    assert server.name == "POST /v1/models/stages:predict"
    assert server.service == "stages-predictor"
    assert server.attributes["http.response.status_code"] == 200
    stages = {span.name: span for span in spans if span.kind == "internal"}
    assert {stages[name].parent_id for name in ("preprocess", "predict", "postprocess")} == {server.span_id}


def grpc_infer(server, model: str, traceparent: str) -> grpc.StatusCode:
    request = pb.ModelInferRequest(model_name=model)
    request.inputs.add(name="x", datatype="FP32", shape=[1, 2]).contents.fp32_contents.extend([1, 2])
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        try:
            InferenceStub(channel).ModelInfer(request, metadata=[("traceparent", traceparent)], timeout=30)
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def test_a_grpc_call_is_a_server_span_with_its_stages_as_children(grpc_predictor, receiver):
    trace_id = "5bf92f3577b34da6a3ce929d0e0e4736"
    assert grpc_infer(grpc_predictor, "echo", f"00-{trace_id}-{PARENT_ID}-01") == grpc.StatusCode.OK
    spans = receiver.wait_for_trace(trace_id, lambda spans: {"predict"} <= {span.name for span in spans})
    (server,) = [span for span in spans if span.kind == "server"]
    assert (server.name, server.parent_id, server.service) == (
        "inference.GRPCInferenceService/ModelInfer",
        PARENT_ID,
        "echo-predictor",
    )
    assert server.attributes["rpc.system"] == "grpc"
    assert server.attributes["rpc.service"] == "inference.GRPCInferenceService"
    assert server.attributes["rpc.method"] == "ModelInfer"
    assert server.attributes["rpc.grpc.status_code"] == 0
    assert not server.error
    (predict,) = [span for span in spans if span.name == "predict"]
    assert predict.parent_id == server.span_id


def test_a_grpc_call_the_client_got_wrong_is_not_an_error_of_the_server(grpc_predictor, receiver):
    trace_id = "6bf92f3577b34da6a3ce929d0e0e4736"
    answer = grpc_infer(grpc_predictor, "nobody", f"00-{trace_id}-{PARENT_ID}-01")
    assert answer == grpc.StatusCode.NOT_FOUND
    (server,) = receiver.wait_for_trace(trace_id, lambda spans: len(spans) == 1)
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert not server.error


def test_grpc_calls_that_rest_sends_as_a_post_are_traced_and_probes_are_not(grpc_predictor, receiver):
    trace_id, probe_trace = "7bf92f3577b34da6a3ce929d0e0e4736", "8bf92f3577b34da6a3ce929d0e0e4736"
    with grpc.insecure_channel(f"127.0.0.1:{grpc_predictor.grpc_port}") as channel:
        stub = InferenceStub(channel)
        stub.ServerLive(
            pb.ServerLiveRequest(), metadata=[("traceparent", f"00-{probe_trace}-{PARENT_ID}-01")]
        )
        stub.RepositoryIndex(
            pb.RepositoryIndexRequest(), metadata=[("traceparent", f"00-{trace_id}-{PARENT_ID}-01")]
        )
    (index,) = receiver.wait_for_trace(trace_id, lambda spans: len(spans) == 1)
    assert (index.name, index.kind) == ("inference.GRPCInferenceService/RepositoryIndex", "server")
    assert receiver.trace(probe_trace) == []  # the index's span was sent after the probe: none came


def test_a_transformer_calls_its_predictor_within_its_own_span(transformer, receiver):
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    answer = httpx.post(
        f"{transformer.url}/v1/models/stages:predict",
        json={"instances": [[10, 20]]},
        headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"},
    )
    assert answer.status_code == 200, answer.text

    def complete(spans):
        return {"stages-transformer", "stages-predictor"} <= {
            span.service for span in spans if span.kind == "server"
        }

    spans = receiver.wait_for_trace(trace_id, complete)
    by_id = {span.span_id: span for span in spans}
    predictor_server = next(s for s in spans if s.kind == "server" and s.service == "stages-predictor")
    client = by_id[predictor_server.parent_id]
    assert (client.kind, client.service, client.name) == (
        "client",
        "stages-transformer",
        "POST /v1/models/stages:predict",
    )
    predict_stage = by_id[client.parent_id]
    assert (predict_stage.name, predict_stage.service) == ("predict", "stages-transformer")
    transformer_server = by_id[predict_stage.parent_id]
    assert transformer_server.kind == "server" and transformer_server.parent_id == "b7ad6b7169203331"


def test_without_otel_variables_nothing_is_exported(receiver):
    server = serve(
        "--model-class", "tests/server/models.py:StagesModel", "--model-name", "stages", grpc=False
    )
    try:
        trace_id = "11112222333344445555666677778888"
        answer = httpx.post(
            f"{server.url}/v1/models/stages:predict",
            json={"instances": [[1]]},
            headers={"traceparent": f"00-{trace_id}-1111222233334444-01"},
        )
        assert answer.status_code == 200
    finally:
        server.stop()  # a traced server would have sent its last spans by now
    assert receiver.trace(trace_id) == []
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in os.environ


def test_a_request_its_caller_did_not_sample_makes_no_span_and_keeps_its_trace_headers(transformer, receiver):
    trace_id = "99990000111122223333444455556666"
    answer = httpx.post(
        f"{transformer.url}/v1/models/stages:predict",
        json={"instances": [[10, 20]]},
        headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-00"},
    )
    assert answer.status_code == 200, answer.text
    sampled = "0af7651916cd43dd8448eb211c80319d"  # a sampled request after it: once its spans are in,
    httpx.post(  # those of the one before would have been too
        f"{transformer.url}/v1/models/stages:predict",
        json={"instances": [[10, 20]]},
        headers={"traceparent": f"00-{sampled}-b7ad6b7169203331-01"},
    )
    receiver.wait_for_trace(sampled, lambda spans: len({s.service for s in spans}) == 2)
    assert receiver.trace(trace_id) == []


def test_a_models_own_spans_are_children_of_its_stage(receiver, traced_env):
    server = serve(
        "--model-class",
        "tests/server/models.py:OwnSpansModel",
        "--model-name",
        "own",
        grpc=False,
        env={**traced_env, "OTEL_SERVICE_NAME": "own-predictor"},
    )
    try:
        trace_id = "7af7651916cd43dd8448eb211c80319c"
        answer = httpx.post(
            f"{server.url}/v1/models/own:predict",
            json={"instances": [[1], [2], [3]]},
            headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"},
        )
        assert answer.status_code == 200, answer.text
        spans = receiver.wait_for_trace(
            trace_id, lambda spans: {"own work", "predict"} <= {s.name for s in spans}
        )
    finally:
        server.stop()
    by_name = {span.name: span for span in spans}
    assert by_name["own work"].parent_id == by_name["predict"].span_id
    assert by_name["predict"].attributes["model.rows"] == 3  # set through the API's current span


def test_spans_still_waiting_when_the_server_stops_are_sent(receiver):
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "600000"}
    server = serve(
        "--model-class", "tests/server/models.py:StagesModel", "--model-name", "stages", grpc=False, env=env
    )
    trace_id = "21112222333344445555666677778888"
    try:
        answer = httpx.post(
            f"{server.url}/v1/models/stages:predict",
            json={"instances": [[1]]},
            headers={"traceparent": f"00-{trace_id}-1111222233334444-01"},
        )
        assert answer.status_code == 200
        assert receiver.trace(trace_id) == []  # ten minutes before they would go on their own
    finally:
        assert server.stop() == 0
    assert {span.name for span in receiver.trace(trace_id)} == {
        "POST /v1/models/stages:predict",
        "preprocess",
        "predict",
        "postprocess",
    }


def test_the_console_exporter_prints_the_spans():
    server = serve(
        "--model-class",
        "tests/server/models.py:StagesModel",
        "--model-name",
        "stages",
        grpc=False,
        env={"OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "100"},
    )
    trace_id = "31112222333344445555666677778888"
    try:
        answer = httpx.post(
            f"{server.url}/v1/models/stages:predict",
            json={"instances": [[1]]},
            headers={"traceparent": f"00-{trace_id}-1111222233334444-01"},
        )
        assert answer.status_code == 200
    finally:
        server.stop()
    printed = server.log()
    assert f'"trace_id": "0x{trace_id}"' in printed
    assert '"name": "predict"' in printed and '"parent_id": "0x1111222233334444"' in printed
