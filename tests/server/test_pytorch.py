"""TorchScript and torch.export programs served by a real `modelplane serve`, spoken to over V1, V2
REST (tritonclient.http) and gRPC (tritonclient.grpc)."""

from __future__ import annotations

import time
import warnings

import httpx
import ml_dtypes
import numpy as np
import pytest
import torch
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from torch import nn

from tests.server.processes import serve


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Scaled(nn.Module):
    """Two named inputs and two named outputs."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor, scale: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.linear(x) * scale, "total": x.sum(dim=1)}


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    root = tmp_path_factory.mktemp("programs")
    for name in ("mlp", "identity", "scaled", "half"):
        (root / name).mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, and still served
        torch.jit.trace(mlp(), torch.zeros(1, 4)).save(str(root / "mlp" / "model.pt"))
        torch.jit.script(Identity()).save(str(root / "identity" / "model.pth"))
    torch.manual_seed(1)
    scaled = Scaled().eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    exported = torch.export.export(
        scaled, (torch.zeros(2, 4), torch.tensor(1.0)), dynamic_shapes=({0: batch}, None)
    )
    torch.export.save(exported, str(root / "scaled" / "model.pt2"))
    half = torch.export.export(Identity(), (torch.zeros(2, dtype=torch.bfloat16),))
    torch.export.save(half, str(root / "half" / "model.pt2"))
    return root, scaled


@pytest.fixture(scope="module")
def server(programs):
    root, _ = programs
    process = serve("--model-dir", str(root), "--nthread", "1")
    yield process
    process.stop()


@pytest.mark.parametrize("rows", [[[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]], [[7, 3, 5, 1]]])
def test_v1_instances_are_the_program_s_argument(server, rows):
    response = httpx.post(f"{server.url}/v1/models/mlp:predict", json={"instances": rows})
    assert response.status_code == 200, response.text
    with torch.no_grad():
        expected = mlp()(torch.tensor(rows, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(response.json()["predictions"], expected, rtol=1e-5)


def test_v2_named_inputs_and_outputs_over_rest_and_grpc(server, programs):
    _, scaled = programs
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    scale = np.array(2.5, dtype=np.float32)
    with torch.no_grad():
        expected = scaled(torch.from_numpy(x), torch.tensor(2.5))
    for module, address in ((triton_http, server.url[7:]), (triton_grpc, f"127.0.0.1:{server.grpc_port}")):
        client = module.InferenceServerClient(address)
        # Named in the other order: matched by name.
        inputs = [module.InferInput("scale", [], "FP32"), module.InferInput("x", [5, 4], "FP32")]
        inputs[0].set_data_from_numpy(scale)
        inputs[1].set_data_from_numpy(x)
        result = client.infer("scaled", inputs)
        np.testing.assert_allclose(result.as_numpy("logits"), expected["logits"].numpy(), rtol=1e-5)
        np.testing.assert_allclose(result.as_numpy("total"), expected["total"].numpy(), rtol=1e-5)


def test_exported_programs_declare_their_inputs(server):
    metadata = httpx.get(f"{server.url}/v2/models/scaled").json()
    assert metadata["inputs"] == [
        {"name": "x", "datatype": "FP32", "shape": [-1, 4]},
        {"name": "scale", "datatype": "FP32", "shape": []},
    ]


@pytest.mark.parametrize(
    "datatype, array",
    [
        ("BOOL", np.array([True, False])),
        ("UINT8", np.array([0, 255], dtype=np.uint8)),
        ("INT8", np.array([-128, 127], dtype=np.int8)),
        ("INT16", np.array([-3, 3], dtype=np.int16)),
        ("INT32", np.array([-(2**31), 2**31 - 1], dtype=np.int32)),
        ("INT64", np.array([-(2**63), 2**63 - 1], dtype=np.int64)),
        ("UINT16", np.array([0, 65535], dtype=np.uint16)),
        ("UINT32", np.array([0, 2**32 - 1], dtype=np.uint32)),
        ("UINT64", np.array([0, 2**64 - 1], dtype=np.uint64)),
        ("FP16", np.array([1.5, -65504], dtype=np.float16)),
        ("FP32", np.array([1.5, -2.25], dtype=np.float32)),
        ("FP64", np.array([1e300, -2.25], dtype=np.float64)),
    ],
)
def test_every_datatype_round_trips(server, datatype, array):
    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    tensor = triton_grpc.InferInput("x", list(array.shape), datatype)
    tensor.set_data_from_numpy(array)
    result = client.infer("identity", [tensor])
    assert result.get_output("output-0").datatype == datatype
    assert result.as_numpy("output-0").tolist() == array.tolist()


def test_bfloat16_in_and_out(server):
    values = np.array([1.5, -2.0], dtype=ml_dtypes.bfloat16)
    header = (
        b'{"parameters": {"binary_data_output": true}, '
        b'"inputs": [{"name": "x", "shape": [2], "datatype": "BF16", "parameters": {"binary_data_size": 4}}]}'
    )
    response = httpx.post(
        f"{server.url}/v2/models/half/infer",
        content=header + values.tobytes(),
        headers={"inference-header-content-length": str(len(header))},
    )
    assert response.status_code == 200, response.text
    json_length = int(response.headers["inference-header-content-length"])
    described = httpx.Response(200, content=response.content[:json_length]).json()
    assert described["outputs"][0]["datatype"] == "BF16"
    returned = np.frombuffer(response.content[json_length:], dtype=ml_dtypes.bfloat16)
    assert returned.tolist() == [1.5, -2.0]


@pytest.mark.parametrize(
    "model, body, fragment",
    [
        ("mlp", {"instances": [[1.0, 2.0, 3.0]]}, "does not fit model mlp"),
        ("mlp", {"instances": [["a", "b", "c", "d"]]}, "instances"),
        (
            "scaled",
            {
                "inputs": [
                    {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]},
                    {"name": "scale", "shape": [], "datatype": "FP32", "data": [1]},
                ]
            },
            "takes FP32, got FP64",
        ),
        (
            "scaled",
            {
                "inputs": [
                    {"name": "x", "shape": [1, 5], "datatype": "FP32", "data": [1, 2, 3, 4, 5]},
                    {"name": "scale", "shape": [], "datatype": "FP32", "data": [1]},
                ]
            },
            "takes shape [-1, 4]",
        ),
        (
            "scaled",
            {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]},
            "takes 2 input(s) (x, scale), got 1",
        ),
        (
            "mlp",
            {
                "inputs": [
                    {"name": "input", "shape": [1, 4], "datatype": "BYTES", "data": ["a", "b", "c", "d"]}
                ]
            },
            "takes tensors of numbers, got BYTES",
        ),
        (
            "scaled",
            {
                "inputs": [
                    {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
                    {"name": "x", "shape": [], "datatype": "FP32", "data": [1]},
                ]
            },
            "input 'x' is given twice",
        ),
    ],
)
def test_inputs_the_program_cannot_take_are_400(server, model, body, fragment):
    path = "/v1/models/mlp:predict" if "instances" in body else f"/v2/models/{model}/infer"
    response = httpx.post(server.url + path, json=body)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]


def test_v1_to_a_program_of_two_inputs_says_to_name_them_over_v2(server):
    response = httpx.post(server.url + "/v1/models/scaled:predict", json={"instances": [[1, 2, 3, 4]]})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == (
        "model scaled takes 2 inputs (x, scale), and V1's instances are one: send them over V2, each input "
        "by its name"
    )


def test_a_state_dict_is_not_a_program_and_says_what_is(tmp_path):
    torch.save(mlp().state_dict(), tmp_path / "model.pt")
    process = serve("--model-dir", str(tmp_path), ready_path="/v2/health/live")
    try:
        error = ""
        for _ in range(600):
            response = httpx.get(f"{process.url}/v2/models/model/ready")
            error = response.json().get("error", "")
            if "load" in error or "TorchScript" in error:
                break
            time.sleep(0.1)
        assert response.status_code == 503
        assert "not a TorchScript program" in error and "torch.save" in error, error
        assert "TorchServe .mar" in error
    finally:
        process.stop()
