"""tritonclient's calls, made the same way over REST and gRPC, get the same answer from one server."""

from __future__ import annotations

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from modelplane.protocol.grpc import inference_pb2 as pb
from modelplane.protocol.grpc.service import InferenceStub
from tests.server.conftest import iris_array
from tests.server.processes import serve

CLIENTS = [pytest.param(triton_http, id="rest"), pytest.param(triton_grpc, id="grpc")]


def client_of(module, server):
    port = server.http_port if module is triton_http else server.grpc_port
    return module.InferenceServerClient(f"127.0.0.1:{port}")


def iris_input(module):
    tensor = module.InferInput("input-0", [2, 4], "FP32")
    tensor.set_data_from_numpy(iris_array())
    return tensor


def client_error(call) -> tuple[str, str]:
    with pytest.raises(InferenceServerException) as caught:
        call()
    return caught.value.status(), caught.value.message()


@pytest.mark.parametrize("module", CLIENTS)
def test_an_output_asked_for_twice_is_a_client_error(iris_server, module):
    client = client_of(module, iris_server)
    outputs = [
        module.InferRequestedOutput("output-0"),
        module.InferRequestedOutput("output-0", class_count=1),
    ]
    status, message = client_error(lambda: client.infer("iris", [iris_input(module)], outputs=outputs))
    assert status in ("400", "StatusCode.INVALID_ARGUMENT")
    assert message == "requested output 'output-0' is given twice"


@pytest.fixture(scope="module")
def mistyped_server():
    server = serve("--model-class", "tests/server/mistyped_outputs.py:MistypedOutputs", "--model-name", "m")
    yield server
    server.stop()


def case_input(module, case: str):
    tensor = module.InferInput("case", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([case.encode()], dtype=np.object_))
    return tensor


def grpc_typed_answer(server, case: str) -> pb.ModelInferResponse:
    """The answer to a request sent with typed contents, which tritonclient never sends (and whose typed
    answer its `as_numpy` does not read)."""
    request = pb.ModelInferRequest(model_name="m")
    request.inputs.add(name="case", datatype="BYTES", shape=[1]).contents.bytes_contents.append(case.encode())
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        return InferenceStub(channel).ModelInfer(request)


@pytest.mark.parametrize(
    ("case", "datatype", "values", "written", "typed_field"),
    [
        ("fp32_of_float64", "FP32", np.array([0.1, 2.5], np.float32), [0.1, 2.5], "fp32_contents"),
        ("int32_of_floats", "INT32", np.array([1, -2], np.int32), [1, -2], "int_contents"),
        ("bool_of_integers", "BOOL", np.array([False, True]), [False, True], "bool_contents"),
    ],
)
def test_an_output_travels_in_its_declared_datatype_every_way(
    mistyped_server, case, datatype, values, written, typed_field
):
    rest = client_of(triton_http, mistyped_server)
    for binary in (False, True):
        outputs = [triton_http.InferRequestedOutput("y", binary_data=binary)]
        result = rest.infer("m", [case_input(triton_http, case)], outputs=outputs)
        assert result.get_output("y")["datatype"] == datatype
        assert result.as_numpy("y").tolist() == values.tolist()
    assert (
        client_of(triton_grpc, mistyped_server)
        .infer("m", [case_input(triton_grpc, case)])
        .as_numpy("y")
        .tolist()
        == values.tolist()
    )
    # JSON as it is written, before a client casts it: `false`, not `0`.
    body = {"inputs": [{"name": "case", "shape": [1], "datatype": "BYTES", "data": [case]}]}
    answer = httpx.post(f"{mistyped_server.url}/v2/models/m/infer", json=body).json()
    assert answer["outputs"][0]["data"] == written
    typed = grpc_typed_answer(mistyped_server, case).outputs[0]
    assert list(getattr(typed.contents, typed_field)) == values.tolist()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("values_short_of_the_shape", "model 'm' answered output 'y' with 2 values for shape [3]"),
        # A list, which JSON would have carried as it is, and binary data refused as the client's input.
        ("list_short_of_the_shape", "model 'm' answered output 'y' with 3 values for shape [2, 2]"),
        ("not_a_datatype", "model 'm' answered output 'y' with datatype 'FLOAT', which is not one of BOOL"),
    ],
)
@pytest.mark.parametrize("module", CLIENTS)
def test_an_output_no_client_could_read_is_the_models_error(mistyped_server, module, case, message):
    client = client_of(module, mistyped_server)
    status, error = client_error(lambda: client.infer("m", [case_input(module, case)]))
    assert status in ("500", "StatusCode.INTERNAL")
    assert error.startswith(message)
