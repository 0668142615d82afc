"""V2 gRPC against a real server process, with grpcio stubs and tritonclient."""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import httpx
import ml_dtypes
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from google.protobuf.message import DecodeError
from tritonclient.utils import InferenceServerException

from modelplane.local.replicas.container_probes import ProbeSpec, check
from modelplane.protocol.grpc import health
from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import InferenceStub
from tests.server.conftest import IRIS_ROWS, iris_array
from tests.server.processes import serve

Tensor = pb.ModelInferRequest.InferInputTensor


@pytest.fixture()
def iris_stub(iris_server):
    with grpc.insecure_channel(f"127.0.0.1:{iris_server.grpc_port}") as channel:
        yield InferenceStub(channel)


@pytest.fixture()
def models_stub(test_models_server):
    with grpc.insecure_channel(f"127.0.0.1:{test_models_server.grpc_port}") as channel:
        yield InferenceStub(channel)


def iris_request(**kwargs) -> pb.ModelInferRequest:
    contents = pb.InferTensorContents(fp32_contents=np.ravel(IRIS_ROWS).tolist())
    return pb.ModelInferRequest(
        model_name="iris",
        inputs=[Tensor(name="input-0", datatype="FP32", shape=[2, 4], contents=contents)],
        **kwargs,
    )


def test_health_and_metadata(iris_stub):
    assert iris_stub.ServerLive(pb.ServerLiveRequest()).live
    assert iris_stub.ServerReady(pb.ServerReadyRequest()).ready
    assert iris_stub.ModelReady(pb.ModelReadyRequest(name="iris")).ready
    metadata = iris_stub.ServerMetadata(pb.ServerMetadataRequest())
    assert metadata.name == "modelplane"
    assert "model_repository_extension" in metadata.extensions
    assert iris_stub.ModelMetadata(pb.ModelMetadataRequest(name="iris")).name == "iris"


def test_grpcs_health_service_answers_as_kubernetes_grpc_probes_ask(iris_server):
    with grpc.insecure_channel(f"127.0.0.1:{iris_server.grpc_port}") as channel:
        check = channel.unary_unary(
            health.CHECK,
            request_serializer=health.HealthCheckRequest.SerializeToString,
            response_deserializer=health.HealthCheckResponse.FromString,
        )
        assert check(health.HealthCheckRequest()).status == health.SERVING
        assert check(health.HealthCheckRequest("inference.GRPCInferenceService")).status == health.SERVING
        with pytest.raises(grpc.RpcError) as unknown:
            check(health.HealthCheckRequest("nope.Service"))
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_grpc_probe_passes_while_the_server_is_serving(iris_server):
    async def probe(service: str = "") -> str | None:
        spec = ProbeSpec(kind="liveness", action="grpc", port=iris_server.grpc_port, service=service)
        async with httpx.AsyncClient() as client:
            return await check(spec, client)

    assert asyncio.run(probe()) is None
    said = asyncio.run(probe("nope.Service"))
    assert (
        said
        == f"gRPC health 127.0.0.1:{iris_server.grpc_port} nope.Service: NOT_FOUND: no service 'nope.Service' here"
    )


def test_health_messages_read_as_protobuf_writes_them():
    request = health.HealthCheckRequest("inference.GRPCInferenceService")
    assert health.HealthCheckRequest.FromString(request.SerializeToString()) == request
    # Unknown fields (a varint 9, a fixed64) are skipped; a cut message is refused.
    assert (
        health.HealthCheckResponse.FromString(b"\x10\x09\x19" + bytes(8) + b"\x08\x02").status
        == health.NOT_SERVING
    )
    with pytest.raises(DecodeError):
        health.HealthCheckRequest.FromString(b"\x0a\x05ab")


def test_typed_contents_in_and_out(iris_stub):
    response = iris_stub.ModelInfer(iris_request(id="r1"))
    assert response.id == "r1"
    assert response.outputs[0].datatype == "INT64"
    assert list(response.outputs[0].contents.int64_contents) == [1, 1]
    assert not response.raw_output_contents


def test_an_answer_to_a_request_without_an_id_has_a_fresh_uuid_over_grpc_and_rest(iris_stub, iris_server):
    """As KServe's runtimes answer (`payload.id if payload.id else generate_uuid()`), whichever protocol."""
    over_grpc = [iris_stub.ModelInfer(iris_request()).id for _ in range(2)]
    body = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": IRIS_ROWS}]}
    url = f"http://127.0.0.1:{iris_server.http_port}/v2/models/iris/infer"
    over_rest = [httpx.post(url, json=document).json()["id"] for document in (body, {**body, "id": ""})]
    for answered in (*over_grpc, *over_rest):
        assert str(uuid.UUID(answered)) == answered
    assert len(set(over_grpc + over_rest)) == 4


def test_raw_inputs_give_raw_outputs(iris_stub):
    request = pb.ModelInferRequest(
        model_name="iris",
        inputs=[Tensor(name="input-0", datatype="FP32", shape=[2, 4])],
        raw_input_contents=[iris_array().tobytes()],
    )
    response = iris_stub.ModelInfer(request)
    assert np.frombuffer(response.raw_output_contents[0], dtype="<i8").tolist() == [1, 1]
    assert response.outputs[0].parameters["binary_data_size"].int64_param == 16


def test_invalid_requests(iris_stub):
    cases = [
        (
            pb.ModelInferRequest(
                model_name="iris",
                inputs=[
                    Tensor(name="a", datatype="FP32", shape=[1]),
                    Tensor(name="b", datatype="FP32", shape=[1]),
                ],
                raw_input_contents=[b"\0" * 4],
            ),
            "does not match the number of raw input contents",
        ),
        (
            pb.ModelInferRequest(
                model_name="iris",
                inputs=[
                    Tensor(
                        name="a",
                        datatype="FP32",
                        shape=[1],
                        contents=pb.InferTensorContents(fp32_contents=[1]),
                    )
                ],
                raw_input_contents=[b"\0" * 4],
            ),
            "contents must not be set",
        ),
        (
            pb.ModelInferRequest(model_name="iris", inputs=[Tensor(name="a", datatype="FOO", shape=[1])]),
            "unknown datatype",
        ),
        (
            pb.ModelInferRequest(
                model_name="iris",
                inputs=[
                    Tensor(
                        name="a",
                        datatype="FP32",
                        shape=[3, 4],
                        contents=pb.InferTensorContents(fp32_contents=[1, 2]),
                    )
                ],
            ),
            "shape [3, 4]",
        ),
        (
            pb.ModelInferRequest(
                model_name="iris",
                inputs=[
                    Tensor(
                        name="a",
                        datatype="FP32",
                        shape=[1, 3],
                        contents=pb.InferTensorContents(fp32_contents=[1, 2, 3]),
                    )
                ],
            ),
            "features",
        ),
        (pb.ModelInferRequest(model_name="iris"), "no inputs"),
        (
            pb.ModelInferRequest(
                model_name="iris",
                inputs=[
                    Tensor(
                        name="a",
                        datatype="FP32",
                        shape=[1],
                        contents=pb.InferTensorContents(fp32_contents=[1]),
                    ),
                    Tensor(
                        name="a",
                        datatype="FP32",
                        shape=[1],
                        contents=pb.InferTensorContents(fp32_contents=[2]),
                    ),
                ],
            ),
            "input 'a' is given twice",
        ),
    ]
    for request, fragment in cases:
        with pytest.raises(grpc.RpcError) as caught:
            iris_stub.ModelInfer(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, fragment
        assert fragment in caught.value.details()


def test_unknown_and_unready_models(iris_stub, models_stub):
    with pytest.raises(grpc.RpcError) as caught:
        iris_stub.ModelInfer(pb.ModelInferRequest(model_name="nope"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        iris_stub.ModelReady(pb.ModelReadyRequest(name="nope"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND

    assert models_stub.ModelReady(pb.ModelReadyRequest(name="broken")).ready is False
    assert models_stub.ServerReady(pb.ServerReadyRequest()).ready is False
    request = pb.ModelInferRequest(model_name="broken", inputs=[Tensor(name="a", datatype="FP32", shape=[1])])
    deadline = time.monotonic() + 30
    while True:  # the model may still be loading (its failure not known yet): "not ready" until then
        with pytest.raises(grpc.RpcError) as caught:
            models_stub.ModelInfer(request)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        if "weights are corrupt" in caught.value.details() or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert "weights are corrupt" in caught.value.details()


def test_fp16_and_bytes_and_parameters(models_stub):
    half = np.array([1.5, -2.0], dtype="<f2")
    request = pb.ModelInferRequest(
        model_name="echo",
        inputs=[Tensor(name="h", datatype="FP16", shape=[2]), Tensor(name="s", datatype="BYTES", shape=[2])],
        raw_input_contents=[half.tobytes(), b"\x01\0\0\0a\x02\0\0\0bc"],
    )
    request.parameters["ratio"].double_param = 0.5
    request.parameters["big"].uint64_param = 2**64 - 1
    response = models_stub.ModelInfer(request)
    assert np.frombuffer(response.raw_output_contents[0], dtype="<f2").tolist() == [1.5, -2.0]
    assert response.raw_output_contents[1] == b"\x01\0\0\0a\x02\0\0\0bc"
    assert response.parameters["ratio"].double_param == 0.5
    assert response.parameters["big"].uint64_param == 2**64 - 1

    brain = np.array([1.5, -2.0, 256], dtype=ml_dtypes.bfloat16)
    request = pb.ModelInferRequest(
        model_name="echo",
        inputs=[Tensor(name="b", datatype="BF16", shape=[3])],
        raw_input_contents=[brain.tobytes()],
    )
    response = models_stub.ModelInfer(request)
    assert response.outputs[0].datatype == "BF16"
    assert np.frombuffer(response.raw_output_contents[0], dtype=ml_dtypes.bfloat16).tolist() == [
        1.5,
        -2.0,
        256,
    ]

    typed = pb.ModelInferRequest(
        model_name="echo",
        inputs=[
            Tensor(
                name="s",
                datatype="BYTES",
                shape=[2],
                contents=pb.InferTensorContents(bytes_contents=[b"x", b"yz"]),
            ),
            Tensor(
                name="b",
                datatype="BOOL",
                shape=[2],
                contents=pb.InferTensorContents(bool_contents=[True, False]),
            ),
        ],
    )
    response = models_stub.ModelInfer(typed)
    assert list(response.outputs[0].contents.bytes_contents) == [b"x", b"yz"]
    assert list(response.outputs[1].contents.bool_contents) == [True, False]


def test_repository_rpcs(models_stub):
    index = {m.name: m for m in models_stub.RepositoryIndex(pb.RepositoryIndexRequest()).models}
    assert index["echo"].state == "READY"
    assert "weights are corrupt" in index["broken"].reason
    with pytest.raises(grpc.RpcError) as caught:
        models_stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="broken"))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    response = models_stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="sleepy"))
    assert (response.model_name, response.isUnloaded) == ("sleepy", True)
    with pytest.raises(grpc.RpcError) as caught:
        models_stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="sleepy"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_tritonclient_grpc(iris_server):
    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{iris_server.grpc_port}")
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("iris")
    tensor = triton_grpc.InferInput("input-0", [2, 4], "FP32")
    tensor.set_data_from_numpy(iris_array())
    result = client.infer("iris", [tensor], outputs=[triton_grpc.InferRequestedOutput("output-0")])
    assert result.as_numpy("output-0").tolist() == [1, 1]
    assert client.get_model_metadata("iris").name == "iris"
    with pytest.raises(InferenceServerException, match="does not exist"):
        client.infer("nope", [tensor])


def test_kserves_message_limit_flags_set_each_direction(sklearn_dir):
    """KServe's runtime args (`--grpc_max_receive_message_length`, `--grpc_max_send_message_length`) reach
    `modelplane serve` as they are on `modelplane up`: one limits the requests, the other the answers."""
    server = serve(
        "--model-dir",
        str(sklearn_dir),
        "--model-name",
        "iris",
        "--grpc_max_receive_message_length=4096",
        "--grpc_max_send_message_length=2048",
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stub = InferenceStub(channel)
            too_large = iris_request(id="x" * 5000)
            with pytest.raises(grpc.RpcError) as caught:
                stub.ModelInfer(too_large)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert caught.value.details() == (
                f"the request message is {too_large.ByteSize()} bytes, above the limit of 4096"
            )
            with pytest.raises(grpc.RpcError) as caught:  # taken, but its answer repeats the id
                stub.ModelInfer(iris_request(id="x" * 3000))
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert caught.value.details().startswith("the response message is ")
            assert caught.value.details().endswith(" bytes, above the limit of 2048")
            assert stub.ModelInfer(iris_request()).model_name == "iris"
    finally:
        server.stop()
