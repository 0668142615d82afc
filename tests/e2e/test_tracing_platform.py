"""End to end: one request's trace across every process of `modelplane up` (the gateway, an
InferenceGraph's router, a transformer and its predictor), each exporting its spans over OTLP to a
real receiver, and the tree they form; and a gRPC call's, through the gateway to the predictor."""

from __future__ import annotations

import grpc
import httpx
import pytest
import yaml

from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import InferenceStub
from tests.e2e.platform_process import REPO_ROOT, PlatformProcess, kill_leftovers
from tests.telemetry.otlp_receiver import OtlpReceiver

TRACE_ID = "5bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "10f067aa0ba902b7"


class Traced(PlatformProcess):
    """`modelplane up` (and so every replica) told by the OTEL_* variables to send spans to `endpoint`."""

    endpoint = ""

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}


@pytest.fixture(scope="module")
def receiver():
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def platform(tmp_path_factory, example_models, receiver):
    home = tmp_path_factory.mktemp("mp-traced")
    example_models(home / "pvc" / "examples")
    transformer = yaml.safe_load((REPO_ROOT / "examples" / "transformer-predictor.yaml").read_text())
    transformer["metadata"]["name"] = "traced"
    graph = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": "traced-graph"},
        "spec": {
            "nodes": {
                "root": {"routerType": "Sequence", "steps": [{"name": "iris", "serviceName": "traced"}]}
            }
        },
    }
    manifest = home / "traced.yaml"
    manifest.write_text(yaml.safe_dump_all([transformer, graph]))
    platform = Traced(home)
    platform.endpoint = receiver.endpoint
    platform.start()
    try:
        platform.cli("apply", "-f", str(manifest))
        platform.cli("wait", "--for=condition=Ready", "isvc/traced", "--timeout=300s")
        platform.cli("wait", "--for=condition=Ready", "ig/traced-graph", "--timeout=300s")
        yield platform
    finally:
        platform.stop()
        assert kill_leftovers(home) == [], "replicas outlived modelplane up"


def test_one_request_is_one_trace_across_gateway_router_transformer_and_predictor(platform, receiver):
    answer = httpx.post(
        platform.gateway_url + "/",
        json={"instances": [[68, 28, 48, 14]]},
        headers={"host": "traced-graph.default.localhost", "traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01"},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"predictions": [1]}
    services = {"modelplane-gateway", "traced-graph-router", "traced-transformer", "traced-predictor"}

    def complete(spans) -> bool:
        servers = [span for span in spans if span.kind == "server"]
        return {span.service for span in servers} == services and len(servers) == 6

    spans = receiver.wait_for_trace(TRACE_ID, complete)
    by_id = {span.span_id: span for span in spans}
    # Every span's parent is in the trace, but the root's: the client's span.
    roots = [span for span in spans if span.parent_id not in by_id]
    assert [(root.service, root.parent_id) for root in roots] == [("modelplane-gateway", CLIENT_SPAN)]

    def chain(span) -> list[tuple[str, str, str]]:
        found = []
        while span is not None:
            found.append((span.service, span.kind, span.name))
            span = by_id.get(span.parent_id)
        return list(reversed(found))

    predictor_stage = next(s for s in spans if s.service == "traced-predictor" and s.name == "predict")
    model = "/v1/models/traced:predict"
    assert chain(predictor_stage) == [
        ("modelplane-gateway", "server", "POST /"),
        ("traced-graph-router", "server", "POST /"),
        ("traced-graph-router", "internal", "node root"),
        ("traced-graph-router", "client", f"POST {_step_url(spans)}"),
        ("modelplane-gateway", "server", f"POST {model}"),
        ("traced-transformer", "server", f"POST {model}"),
        ("traced-transformer", "internal", "predict"),
        ("traced-transformer", "client", f"POST {model}"),
        ("modelplane-gateway", "server", f"POST {model}"),
        ("traced-predictor", "server", f"POST {model}"),
        ("traced-predictor", "internal", "predict"),
    ]
    preprocess = next(s for s in spans if s.service == "traced-transformer" and s.name == "preprocess")
    assert by_id[preprocess.parent_id].kind == "server"
    gateway_hops = [s for s in spans if s.service == "modelplane-gateway"]
    assert {s.attributes["modelplane.revision"] for s in gateway_hops} == {
        "traced-graph-router-00001",
        "traced-transformer-00001",
        "traced-predictor-00001",
    }


def test_a_grpc_call_is_traced_by_the_gateway_and_the_predictor(platform, receiver):
    trace_id = "6cf92f3577b34da6a3ce929d0e0e4736"
    request = pb.ModelInferRequest(model_name="traced")
    request.inputs.add(name="x", datatype="FP32", shape=[1, 4]).contents.fp32_contents.extend(
        [6.8, 2.8, 4.8, 1.4]
    )
    target = platform.gateway_url.removeprefix("http://")
    options = [("grpc.default_authority", "traced-predictor.default.localhost")]
    with grpc.insecure_channel(target, options=options) as channel:
        answer = InferenceStub(channel).ModelInfer(
            request, metadata=[("traceparent", f"00-{trace_id}-{CLIENT_SPAN}-01")], timeout=120
        )
    assert list(answer.outputs[0].contents.int64_contents or answer.outputs[0].contents.int_contents) == [1]

    def complete(spans) -> bool:
        return {"modelplane-gateway", "traced-predictor"} <= {s.service for s in spans} and any(
            s.name == "predict" for s in spans
        )

    spans = receiver.wait_for_trace(trace_id, complete)
    by_id = {span.span_id: span for span in spans}
    predict = next(s for s in spans if s.name == "predict")
    predictor = by_id[predict.parent_id]
    gateway = by_id[predictor.parent_id]
    call = "inference.GRPCInferenceService/ModelInfer"
    assert (predictor.service, predictor.kind, predictor.name) == ("traced-predictor", "server", call)
    assert (gateway.service, gateway.kind, gateway.name) == ("modelplane-gateway", "server", call)
    assert gateway.parent_id == CLIENT_SPAN
    assert gateway.attributes["modelplane.revision"] == "traced-predictor-00001"
    assert gateway.attributes["rpc.grpc.status_code"] == 0


def _step_url(spans) -> str:
    (step,) = [s for s in spans if s.service == "traced-graph-router" and s.kind == "client"]
    return step.attributes["url.full"]
