"""End to end: gRPC `ModelInfer` through the gateway port of `modelplane up`, routed by `:authority`."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton

from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import InferenceStub
from tests.e2e.platform_process import REPO_ROOT, PlatformProcess, running_platform

SERVICE = "sklearn-iris"
IRIS = np.array([[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]], dtype=np.float32)


@pytest.fixture(scope="module")
def platform(tmp_path_factory, example_models):
    home = tmp_path_factory.mktemp("mp-grpc-home")
    example_models(home / "pvc" / "examples")
    with running_platform(home) as platform:
        platform.cli("apply", "-f", str(REPO_ROOT / "examples" / "sklearn-iris.yaml"))
        platform.cli("wait", "--for=condition=Ready", f"isvc/{SERVICE}", "--timeout=300s")
        yield platform


def gateway_target(platform: PlatformProcess) -> str:
    return urlsplit(platform.gateway_url).netloc


def test_model_infer_through_the_gateway_with_the_service_host_as_authority(platform):
    options = [("grpc.default_authority", f"{SERVICE}.default.localhost")]
    with grpc.insecure_channel(gateway_target(platform), options=options) as channel:
        stub = InferenceStub(channel)
        assert stub.ModelReady(pb.ModelReadyRequest(name=SERVICE)).ready
        request = pb.ModelInferRequest(model_name=SERVICE)
        tensor = request.inputs.add(name="input-0", datatype="FP32", shape=[2, 4])
        tensor.contents.fp32_contents.extend(IRIS.flatten().tolist())
        response = stub.ModelInfer(request)
    assert response.model_name == SERVICE
    output = response.outputs[0]
    assert list(output.shape) == [2]
    assert list(output.contents.int64_contents or output.contents.int_contents) == [1, 1]


def test_tritonclient_through_the_gateway_and_the_grpc_url_in_the_status(platform):
    status = json.loads(platform.cli("get", "isvc", SERVICE, "-o", "json").stdout)["status"]
    port = urlsplit(platform.gateway_url).port
    grpc_url = status["components"]["predictor"]["grpcUrl"]
    assert grpc_url == f"grpc://{SERVICE}-predictor.default.localhost:{port}"
    client = triton.InferenceServerClient(
        gateway_target(platform), channel_args=[("grpc.default_authority", urlsplit(grpc_url).netloc)]
    )
    try:
        tensor = triton.InferInput("input-0", list(IRIS.shape), "FP32")
        tensor.set_data_from_numpy(IRIS)
        result = client.infer(SERVICE, [tensor])
        assert result.as_numpy(result.get_response().outputs[0].name).tolist() == [1, 1]
    finally:
        client.close()
