"""tritonclient's calls, made the same way over REST and gRPC, get the same answer from one server."""

from __future__ import annotations

import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from tests.server.conftest import iris_array

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
