"""End to end: gRPC `ModelInfer` through the gateway port of `modelplane up`, routed by `:authority`."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton
from prometheus_client.parser import text_string_to_metric_families

from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import InferenceStub
from tests.e2e.platform_process import REPO_ROOT, PlatformProcess, running_platform

SERVICE = "sklearn-iris"
TF_SERVICE = "tensorflow-grpc"
GRPC_TRANSFORMED = "iris-mm-grpc"
IRIS = np.array([[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]], dtype=np.float32)


@pytest.fixture(scope="module")
def platform(tmp_path_factory, example_models):
    home = tmp_path_factory.mktemp("mp-grpc-home")
    example_models(home / "pvc" / "examples")
    with running_platform(home) as platform:
        platform.cli("apply", "-f", str(REPO_ROOT / "examples" / "sklearn-iris.yaml"))
        platform.apply(  # the TensorFlow example, asking for TF Serving's gRPC API (KServe's grpc-v1)
            {
                "apiVersion": "serving.kserve.io/v1beta1",
                "kind": "InferenceService",
                "metadata": {"name": TF_SERVICE},
                "spec": {
                    "predictor": {
                        "tensorflow": {
                            "storageUri": "pvc://examples/tensorflow-iris",
                            "protocolVersion": "grpc-v1",
                        }
                    }
                },
            }
        )
        platform.apply(  # the transformer example, speaking gRPC to its predictor (KServe's grpc-v2)
            {
                "apiVersion": "serving.kserve.io/v1beta1",
                "kind": "InferenceService",
                "metadata": {"name": GRPC_TRANSFORMED},
                "spec": {
                    "transformer": {
                        "containers": [
                            {
                                "name": "kserve-container",
                                "image": "modelplane:latest",
                                "command": [
                                    "modelplane",
                                    "serve",
                                    "--model-class",
                                    "/mnt/models/transformer.py:MillimetresToCentimetres",
                                    "--protocol",
                                    "grpc-v2",
                                ],
                                "env": [{"name": "STORAGE_URI", "value": "pvc://examples/transformer"}],
                            }
                        ]
                    },
                    "predictor": {"sklearn": {"storageUri": "pvc://examples/sklearn-iris"}},
                },
            }
        )
        platform.wait_ready(SERVICE, TF_SERVICE, GRPC_TRANSFORMED)
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


def test_tf_serving_predict_through_the_gateway_for_a_grpc_v1_service(platform):
    from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

    assert (
        json.loads(platform.cli("get", "isvc", TF_SERVICE, "-o", "json").stdout)["status"][
            "clusterServingRuntimeName"
        ]
        == "modelplane-tensorflowserver"
    )
    options = [("grpc.default_authority", f"{TF_SERVICE}.default.localhost")]
    with grpc.insecure_channel(gateway_target(platform), options=options) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        metadata = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        metadata.model_spec.name = TF_SERVICE
        signatures = get_model_metadata_pb2.SignatureDefMap()
        stub.GetModelMetadata(metadata).metadata["signature_def"].Unpack(signatures)
        default = signatures.signature_def["serving_default"]
        (input_name,), (output_name,) = list(default.inputs), list(default.outputs)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = TF_SERVICE
        tensor = request.inputs[input_name]
        tensor.dtype = default.inputs[input_name].dtype
        tensor.tensor_shape.dim.add(size=2)
        tensor.tensor_shape.dim.add(size=4)
        tensor.float_val.extend(IRIS.flatten().tolist())
        response = stub.Predict(request)
    assert response.model_spec.version.value == 1
    scores = np.array(response.outputs[output_name].float_val).reshape(2, 3)
    assert scores.argmax(axis=1).tolist() == [1, 1]


def test_a_transformer_told_grpc_v2_reaches_its_predictor_over_grpc_through_the_gateway(platform):
    """Its `--predictor_host` names the predictor's service; the call goes to the gateway as gRPC with
    that host as the authority, and the gateway counts a gRPC call to the predictor's revision."""
    predictor_host = f"{GRPC_TRANSFORMED}-predictor.default.localhost"

    def grpc_calls() -> float:
        text = httpx.get(platform.api_url + "/metrics", timeout=30).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "modelplane_gateway_grpc_calls_total"
            and sample.labels.get("host") == predictor_host
            and sample.labels.get("grpc_code") == "0"
        )

    before = grpc_calls()
    millimetres = [68, 28, 48, 14, 60, 34, 45, 16]
    body = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": millimetres}]}
    host = f"{GRPC_TRANSFORMED}.default.localhost"
    answer = platform.request("POST", host, f"/v2/models/{GRPC_TRANSFORMED}/infer", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == [1, 1]
    assert grpc_calls() == before + 1
