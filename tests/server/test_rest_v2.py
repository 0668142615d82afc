"""V2 REST against a real server process: JSON, the binary extension, every datatype, errors."""

from __future__ import annotations

import base64
import contextlib
import socket
import struct
import subprocess
import sys

import httpx
import numpy as np
import orjson
import pytest
import tritonclient.http as triton

from tests.server.conftest import IRIS_ROWS, iris_array
from tests.server.processes import serve

IRIS_V2 = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": IRIS_ROWS}]}


def infer(server, model: str, body: dict, **kwargs) -> httpx.Response:
    return httpx.post(f"{server.url}/v2/models/{model}/infer", json=body, **kwargs)


def test_server_and_model_metadata(iris_server):
    assert httpx.get(iris_server.url + "/v2").json()["extensions"] == [
        "model_repository_extension",
        "binary_tensor_data",
        "classification",
    ]
    assert httpx.get(iris_server.url + "/v2/health/live").json() == {"live": True}
    assert httpx.get(iris_server.url + "/v2/health/ready").json() == {"ready": True}
    assert httpx.get(iris_server.url + "/v2/models/iris/ready").json() == {"name": "iris", "ready": True}
    metadata = httpx.get(iris_server.url + "/v2/models/iris").json()
    assert metadata["name"] == "iris"
    assert httpx.get(iris_server.url + "/v2/models/nope").status_code == 404


def test_infer_json(iris_server):
    response = infer(iris_server, "iris", {**IRIS_V2, "id": "req-1"})
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "req-1"
    assert body["model_name"] == "iris"
    assert body["outputs"] == [
        {"name": "output-0", "shape": [2], "datatype": "INT64", "parameters": None, "data": [1, 1]}
    ]


def test_infer_json_without_content_type(iris_server):
    response = httpx.post(iris_server.url + "/v2/models/iris/infer", content=orjson.dumps(IRIS_V2))
    assert response.status_code == 200
    assert response.json()["outputs"][0]["data"] == [1, 1]


def test_tritonclient_binary_both_ways(iris_server):
    client = triton.InferenceServerClient(f"127.0.0.1:{iris_server.http_port}")
    tensor = triton.InferInput("input-0", [2, 4], "FP32")
    tensor.set_data_from_numpy(iris_array(), binary_data=True)
    result = client.infer(
        "iris", [tensor], outputs=[triton.InferRequestedOutput("output-0", binary_data=True)]
    )
    assert result.as_numpy("output-0").tolist() == [1, 1]
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("iris")


def test_binary_data_output_makes_every_output_binary(iris_server):
    response = infer(iris_server, "iris", {**IRIS_V2, "parameters": {"binary_data_output": True}})
    json_length = int(response.headers["inference-header-content-length"])
    header = orjson.loads(response.content[:json_length])
    assert header["outputs"][0]["parameters"] == {"binary_data_size": 16}
    assert np.frombuffer(response.content[json_length:], dtype="<i8").tolist() == [1, 1]


def test_per_output_binary_flag_overrides_the_request_flag(iris_server):
    body = {
        **IRIS_V2,
        "parameters": {"binary_data_output": True},
        "outputs": [{"name": "output-0", "parameters": {"binary_data": False}}],
    }
    response = infer(iris_server, "iris", body)
    assert "inference-header-content-length" not in response.headers
    assert response.json()["outputs"][0]["data"] == [1, 1]


def test_unknown_requested_output_is_400(iris_server):
    response = infer(iris_server, "iris", {**IRIS_V2, "outputs": [{"name": "nope"}]})
    assert response.status_code == 400
    assert response.json() == {"error": "Unexpected inference output 'nope' for model 'iris'"}


@pytest.mark.parametrize(
    "datatype, values",
    [
        ("BOOL", [True, False, True, True]),
        ("UINT8", [0, 1, 254, 255]),
        ("UINT16", [0, 1, 65534, 65535]),
        ("UINT32", [0, 1, 2, 4294967295]),
        ("UINT64", [0, 1, 2, 18446744073709551615]),
        ("INT8", [-128, -1, 0, 127]),
        ("INT16", [-32768, -1, 0, 32767]),
        ("INT32", [-2147483648, -1, 0, 2147483647]),
        ("INT64", [-9223372036854775808, -1, 0, 9223372036854775807]),
        ("FP32", [-1.5, 0.0, 0.25, 3.5]),
        ("FP64", [-1.5, 0.0, 1e300, 3.5]),
        ("BYTES", ["a", "bc", "", "déjà"]),
    ],
)
def test_every_datatype_round_trips_as_json_and_binary(test_models_server, datatype, values):
    body = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": datatype, "data": values}]}
    response = infer(test_models_server, "echo", body)
    assert response.status_code == 200, response.text
    output = response.json()["outputs"][0]
    assert (output["datatype"], output["shape"], output["data"]) == (datatype, [2, 2], values)

    client = triton.InferenceServerClient(f"127.0.0.1:{test_models_server.http_port}")
    tensor = triton.InferInput("x", [2, 2], datatype)
    array = np.array(values, dtype=np.object_ if datatype == "BYTES" else triton_dtype(datatype)).reshape(
        2, 2
    )
    if datatype == "BYTES":
        array = np.array([v.encode() for v in values], dtype=np.object_).reshape(2, 2)
    tensor.set_data_from_numpy(array, binary_data=True)
    result = client.infer("echo", [tensor], outputs=[triton.InferRequestedOutput("x", binary_data=True)])
    assert result.as_numpy("x").tolist() == array.tolist()


def triton_dtype(datatype: str):
    from tritonclient.utils import triton_to_np_dtype

    return triton_to_np_dtype(datatype)


@pytest.mark.parametrize("datatype", ["FP16", "BF16"])
def test_half_precision_travels_binary_only(test_models_server, datatype):
    # tritonclient sends and reads BF16 from float32 arrays (numpy has no bfloat16 of its own).
    array = np.array([[1.5, -2.0], [0.5, 256]], dtype=np.float16 if datatype == "FP16" else np.float32)
    client = triton.InferenceServerClient(f"127.0.0.1:{test_models_server.http_port}")
    tensor = triton.InferInput("half", [2, 2], datatype)
    tensor.set_data_from_numpy(array, binary_data=True)
    result = client.infer("echo", [tensor], outputs=[triton.InferRequestedOutput("half", binary_data=True)])
    assert result.as_numpy("half").tolist() == array.tolist()
    assert result.get_output("half")["datatype"] == datatype

    as_json = {"inputs": [{"name": "half", "shape": [1], "datatype": datatype, "data": [1.0]}]}
    response = infer(test_models_server, "echo", as_json)
    assert response.status_code == 400
    assert datatype in response.json()["error"]

    # Half precision in binary, asked back as JSON: the output cannot be written as JSON.
    header = orjson.dumps(
        {
            "inputs": [
                {"name": "half", "shape": [1], "datatype": datatype, "parameters": {"binary_data_size": 2}}
            ],
            "outputs": [{"name": "half", "parameters": {"binary_data": False}}],
        }
    )
    response = httpx.post(
        test_models_server.url + "/v2/models/echo/infer",
        content=header + np.array([1.0], dtype="<f2").tobytes(),
        headers={"inference-header-content-length": str(len(header))},
    )
    assert response.status_code == 400
    assert datatype in response.json()["error"]


def bytes_not_text() -> tuple[bytes, dict]:
    """A BYTES tensor of one element, 0xff, which is not UTF-8, in the binary extension."""
    inputs = [{"name": "x", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 5}}]
    return binary_request(inputs, b"\x01\x00\x00\x00\xff")


def test_bytes_that_are_not_text_asked_back_as_json_are_a_client_error(test_models_server):
    body, headers = bytes_not_text()
    response = httpx.post(test_models_server.url + "/v2/models/echo/infer", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == (
        "output 'x' holds bytes that are not UTF-8 text, which JSON cannot carry; ask for it with binary_data: true"
    )


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            [{"name": "a", "shape": [], "datatype": "FP32", "data": [1.0]}],
            None,  # a scalar is a column of one row
        ),
        (
            [
                {"name": "a", "shape": [1], "datatype": "FP32", "data": [1.0]},
                {"name": "b", "shape": [2], "datatype": "FP32", "data": [1.0, 2.0]},
            ],
            "the columns of a \"pd\" request must be as long as each other, got {'a': 1, 'b': 2}",
        ),
    ],
)
def test_pd_requests_with_odd_columns(iris_server, inputs, message):
    response = infer(iris_server, "iris", {"parameters": {"content_type": "pd"}, "inputs": inputs})
    assert response.status_code == 400
    if message is not None:
        assert response.json()["error"] == message


def test_a_pd_column_of_bytes_that_are_not_text_is_a_client_error(iris_server):
    header = orjson.dumps(
        {
            "parameters": {"content_type": "pd"},
            "inputs": [
                {"name": "x", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 5}}
            ],
        }
    )
    response = httpx.post(
        iris_server.url + "/v2/models/iris/infer",
        content=header + b"\x01\x00\x00\x00\xff",
        headers={"inference-header-content-length": str(len(header))},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "input 'x': a BYTES column of a pd request must be UTF-8 text"


def test_parameters_are_echoed(test_models_server):
    body = {
        "parameters": {"s": "x", "b": True, "i": 3, "f": 1.5},
        "inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [1]}],
    }
    assert infer(test_models_server, "echo", body).json()["parameters"] == body["parameters"]


def binary_request(inputs: list[dict], raw: bytes, json_length: int | None = None) -> tuple[bytes, dict]:
    header = orjson.dumps({"inputs": inputs})
    length = len(header) if json_length is None else json_length
    return header + raw, {"inference-header-content-length": str(length)}


def test_bytes_tensor_in_binary(test_models_server):
    raw = b"".join(struct.pack("<I", len(s)) + s for s in (b"ab", b"", b"xyz"))
    body, headers = binary_request(
        [{"name": "s", "shape": [3], "datatype": "BYTES", "parameters": {"binary_data_size": len(raw)}}], raw
    )
    response = httpx.post(test_models_server.url + "/v2/models/echo/infer", content=body, headers=headers)
    assert response.json()["outputs"][0]["data"] == ["ab", "", "xyz"]


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "JSON object"),
        (b'{"inputs": []}', "non-empty list"),
        (b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FOO", "data": [1, 2]}]}', "unknown datatype"),
        (b'{"inputs": [{"name": "x", "shape": [2], "datatype": "BF16", "data": [1, 2]}]}', "binary tensor"),
        (
            b'{"inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}',
            "shape [3, 4]",
        ),
        (b'{"inputs": [{"name": "x", "shape": "2", "datatype": "FP32", "data": [1, 2]}]}', "shape must be"),
        (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]}', "no 'data'"),
        (b'{"inputs": [{"shape": [1], "datatype": "FP32", "data": [1]}]}', "'name'"),
        (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": ["a"]}]}', "does not fit"),
        (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "UINT8", "data": [-1]}]}', "does not fit"),
        # Values are not cast to the datatype: a string, a fraction for an integer, a number for BOOL.
        (
            b'{"inputs": [{"name": "x", "shape": [2], "datatype": "BOOL", "data": ["false", 0]}]}',
            'got "false"',
        ),
        (
            b'{"inputs": [{"name": "x", "shape": [1], "datatype": "BOOL", "data": [1]}]}',
            "takes true or false",
        ),
        (b'{"inputs": [{"name": "x", "shape": [2], "datatype": "INT32", "data": [1, 1.9]}]}', "got 1.9"),
        # Booleans among numbers are not read as 1 and 0.
        (b'{"inputs": [{"name": "x", "shape": [3], "datatype": "INT32", "data": [true, 5, 7]}]}', "got true"),
        (
            b'{"inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [true, 2.5, 3]}]}',
            "got true",
        ),
        # null is NaN for the floating types only (below).
        (b'{"inputs": [{"name": "x", "shape": [2], "datatype": "INT32", "data": [null, 1]}]}', "got null"),
        (b'{"inputs": [{"name": "x", "shape": [2], "datatype": "BOOL", "data": [null, true]}]}', "got null"),
        (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "INT8", "data": [300]}]}', "300 is out of"),
        (
            b'{"inputs": [{"name": "x", "shape": [1], "datatype": "INT64", "data": [9223372036854775808]}]}',
            "out of",
        ),
        (
            b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [[1], [2, 3]]}]}',
            "does not fit",
        ),
        (
            b'{"parameters": {"a": {"b": 1}}, "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}',
            "parameter 'a'",
        ),
    ],
)
def test_client_faults_are_400(iris_server, body, fragment):
    response = httpx.post(
        iris_server.url + "/v2/models/iris/infer", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (
            {"parameters": {"binary_data_output": "false"}},
            "request: parameter 'binary_data_output' must be true or false",
        ),
        (
            {"parameters": {"binary_data_output": 1}},
            "parameter 'binary_data_output' must be true or false, got 1",
        ),
        (
            {"outputs": [{"name": "output-0", "parameters": {"binary_data": "false"}}]},
            "output 'output-0': parameter 'binary_data' must be true or false, got \"false\"",
        ),
    ],
)
def test_binary_flags_that_are_not_booleans_are_400(iris_server, extra, fragment):
    response = infer(iris_server, "iris", {**IRIS_V2, **extra})
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]


def test_binary_flags_given_as_false_are_json(iris_server):
    body = {**IRIS_V2, "parameters": {"binary_data_output": False}}
    body["outputs"] = [{"name": "output-0", "parameters": {"binary_data": False}}]
    response = infer(iris_server, "iris", body)
    assert "inference-header-content-length" not in response.headers
    assert response.json()["outputs"][0]["data"] == [1, 1]


def test_wrong_feature_count_is_400(iris_server):
    body = {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}
    response = infer(iris_server, "iris", body)
    assert response.status_code == 400
    assert "features" in response.json()["error"]


@pytest.mark.parametrize(
    "inputs, raw, json_length, fragment",
    [
        (
            [{"name": "x", "shape": [2], "datatype": "FP32", "parameters": {"binary_data_size": 8}}],
            b"\0" * 4,
            None,
            "past the end",
        ),
        (
            [{"name": "x", "shape": [2], "datatype": "FP32", "parameters": {"binary_data_size": 4}}],
            b"\0" * 4,
            None,
            "does not match shape",
        ),
        (
            [{"name": "x", "shape": [1], "datatype": "FP32", "parameters": {"binary_data_size": 4}}],
            b"\0" * 8,
            None,
            "add up to 4",
        ),
        (
            [{"name": "x", "shape": [1], "datatype": "FP32", "parameters": {"binary_data_size": 4}}],
            b"\0" * 4,
            10_000,
            "inference-header-content-length",
        ),
        (
            [{"name": "x", "shape": [1], "datatype": "FP32", "parameters": {"binary_data_size": -1}}],
            b"",
            None,
            "non-negative",
        ),
        (
            [{"name": "s", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 6}}],
            struct.pack("<I", 9) + b"ab",
            None,
            "truncated",
        ),
    ],
)
def test_binary_sizes_that_do_not_add_up_are_400(iris_server, inputs, raw, json_length, fragment):
    body, headers = binary_request(inputs, raw, json_length)
    response = httpx.post(iris_server.url + "/v2/models/iris/infer", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]


def test_binary_input_without_the_length_header_is_400(iris_server):
    body, _ = binary_request(
        [{"name": "x", "shape": [1], "datatype": "FP32", "parameters": {"binary_data_size": 4}}], b"\0" * 4
    )
    response = httpx.post(iris_server.url + "/v2/models/iris/infer", content=body)
    assert response.status_code == 400


def test_not_ready_models(test_models_server):
    url = test_models_server.url
    assert httpx.get(url + "/v2/models/broken/ready").status_code == 503
    assert infer(test_models_server, "broken", IRIS_V2).status_code == 503
    ready = httpx.get(url + "/v2/health/ready")
    assert ready.status_code == 503
    assert "broken" in ready.json()["error"]


def test_versioned_routes(tmp_path, sklearn_dir):
    from tests.server.processes import serve

    server = serve(
        "--model-dir", str(sklearn_dir), "--model-name", "iris", "--model-version", "3", grpc=False
    )
    try:
        assert httpx.get(server.url + "/v2/models/iris").json()["versions"] == ["3"]
        assert httpx.get(server.url + "/v2/models/iris/versions/3/ready").json()["ready"] is True
        response = httpx.post(server.url + "/v2/models/iris/versions/3/infer", json=IRIS_V2)
        assert response.json()["model_version"] == "3"
        missing = httpx.post(server.url + "/v2/models/iris/versions/2/infer", json=IRIS_V2)
        assert missing.status_code == 404
        assert "no version 2" in missing.json()["error"]
    finally:
        server.stop()


def test_repository_index_load_and_unload(test_models_server):
    url = test_models_server.url
    index = {entry["name"]: entry for entry in httpx.post(url + "/v2/repository/index").json()}
    assert index["echo"]["state"] == "READY"
    assert index["broken"]["state"] == "UNAVAILABLE"
    assert "weights are corrupt" in index["broken"]["reason"]

    response = httpx.post(url + "/v2/repository/models/broken/load")
    assert response.status_code == 503
    assert "weights are corrupt" in response.json()["error"]

    assert httpx.post(url + "/v2/repository/models/datetime/unload").json() == {
        "name": "datetime",
        "unload": True,
    }
    assert httpx.get(url + "/v2/models/datetime/ready").status_code == 404
    assert httpx.post(url + "/v2/repository/models/datetime/unload").status_code == 404
    assert httpx.post(url + "/v2/repository/models/nope/load").status_code == 404
    index = {entry["name"]: entry for entry in httpx.post(url + "/v2/repository/index").json()}
    assert index["datetime"] == {"name": "datetime", "state": "UNAVAILABLE", "reason": "unloaded"}

    # A model built in code, with no folder to build it from, is loaded again as it was.
    assert httpx.post(url + "/v2/repository/models/datetime/load").json() == {
        "name": "datetime",
        "load": True,
    }
    assert httpx.get(url + "/v2/models/datetime/ready").status_code == 200


def test_repository_index_lists_only_ready_models_when_asked(test_models_server):
    url = test_models_server.url + "/v2/repository/index"
    everything = {entry["name"]: entry["state"] for entry in httpx.post(url).json()}
    assert everything["broken"] == "UNAVAILABLE"
    assert {entry["name"]: entry["state"] for entry in httpx.post(url, json={}).json()} == everything
    assert {
        entry["name"]: entry["state"] for entry in httpx.post(url, json={"ready": False}).json()
    } == everything
    ready = httpx.post(url, json={"ready": True}).json()
    assert ready and all(entry["state"] == "READY" for entry in ready)
    assert {entry["name"] for entry in ready} == {
        name for name, state in everything.items() if state == "READY"
    }


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b"[]", "JSON object"),
        (b'{"ready": "true"}', "'ready' must be true or false"),
        (b"{", "not valid JSON"),
    ],
)
def test_a_repository_index_request_that_is_not_an_object_with_a_boolean_ready_is_400(
    test_models_server, body, fragment
):
    response = httpx.post(test_models_server.url + "/v2/repository/index", content=body)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]


def test_binary_cloudevent(iris_server):
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "36077800-0c23-4f38-a0b4-01f4369f670a",
        "ce-source": "https://example.com",
        "ce-type": "com.example.request",
        "content-type": "application/json",
    }
    response = httpx.post(
        iris_server.url + "/v1/models/iris:predict", json={"instances": IRIS_ROWS}, headers=headers
    )
    assert response.json() == {"predictions": [1, 1]}
    assert response.headers["ce-type"] == "io.kserve.inference.response"
    assert response.headers["ce-source"] == "io.kserve.inference.iris"
    assert response.headers["ce-specversion"] == "1.0"

    bad = httpx.post(iris_server.url + "/v1/models/iris:predict", content=b"{oops", headers=headers)
    assert bad.status_code == 400
    assert "Failed to decode or parse binary json cloudevent" in bad.json()["error"]


def test_structured_cloudevent_on_v2(iris_server):
    event = {
        "specversion": "1.0",
        "id": "1",
        "source": "test",
        "type": "com.example.request",
        "datacontenttype": "application/json",
        "data": IRIS_V2,
    }
    response = httpx.post(
        iris_server.url + "/v2/models/iris/infer",
        content=orjson.dumps(event),
        headers={"content-type": "application/cloudevents+json"},
    )
    assert response.headers["content-type"] == "application/cloudevents+json"
    reply = response.json()
    assert reply["type"] == "io.kserve.inference.response"
    assert reply["data"]["outputs"][0]["data"] == [1, 1]


def test_binary_outputs_in_a_cloudevent_keep_their_framing(iris_server):
    binary = {**IRIS_V2, "parameters": {"binary_data_output": True}}
    attributes = {"specversion": "1.0", "id": "1", "source": "test", "type": "com.example.request"}

    def outputs(content: bytes, json_length: int) -> list:
        assert orjson.loads(content[:json_length])["outputs"][0]["parameters"] == {"binary_data_size": 16}
        return np.frombuffer(content[json_length:], dtype="<i8").tolist()

    # Binary mode: the event's data is the body, with its own content type and JSON length.
    headers = {f"ce-{key}": value for key, value in attributes.items()} | {"content-type": "application/json"}
    response = httpx.post(iris_server.url + "/v2/models/iris/infer", json=binary, headers=headers)
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["ce-type"] == "io.kserve.inference.response"
    assert outputs(response.content, int(response.headers["inference-header-content-length"])) == [1, 1]

    # Structured mode: the body is JSON, and the data, not JSON, is base64.
    event = {**attributes, "datacontenttype": "application/json", "data": binary}
    response = httpx.post(
        iris_server.url + "/v2/models/iris/infer",
        content=orjson.dumps(event),
        headers={"content-type": "application/cloudevents+json"},
    )
    reply = response.json()
    assert reply["datacontenttype"] == "application/octet-stream"
    data = base64.b64decode(reply["data_base64"])
    assert outputs(data, int(response.headers["inference-header-content-length"])) == [1, 1]


@pytest.mark.parametrize("encoded", [123, None, [], {}, True])
def test_a_structured_cloudevent_whose_data_base64_is_not_a_string_is_refused(iris_server, encoded):
    event = {"specversion": "1.0", "id": "1", "source": "t", "type": "t", "data_base64": encoded}
    response = httpx.post(
        iris_server.url + "/v1/models/iris:predict",
        content=orjson.dumps(event),
        headers={"content-type": "application/cloudevents+json"},
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("CloudEvent data_base64 must be a string, got ")


def _raw_exchange(port: int, request: bytes) -> bytes:
    """Send raw bytes on one connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_body_over_the_size_limit_is_413_and_closes(iris_server):
    # The declared length alone is refused, before any of the body is sent.
    answer = _raw_exchange(
        iris_server.http_port,
        b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n",
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"connection: close" in head.lower()
    assert "exceeds" in orjson.loads(body)["error"]


def test_the_body_limit_is_a_flag(sklearn_dir):
    server = serve("--model-dir", str(sklearn_dir), "--model-name", "iris", "--max-body-size", "300")
    try:
        url = f"{server.url}/v2/models/iris/infer"
        small = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [6.8, 2.8, 4.8, 1.4]}]}
        assert httpx.post(url, json=small).status_code == 200
        large = {**small, "parameters": {"note": "x" * 400}}
        response = httpx.post(url, json=large)
        assert response.status_code == 413
        assert response.json()["error"] == "the request body exceeds 300 bytes"
    finally:
        server.stop()
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelplane",
            "serve",
            "--model-dir",
            str(sklearn_dir),
            "--max-body-size",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "--max-body-size must be at least 1 byte" in refused.stderr


@pytest.mark.parametrize(
    "framing, fragment",
    [
        (b"Transfer-Encoding: \r\n", "Empty Transfer-Encoding"),
        (b"Transfer-Encoding: gzip\r\n", "only 'chunked'"),
        (b"Transfer-Encoding: gzip, chunked\r\n", "only 'chunked'"),
        (b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", "Content-Length"),
        (b"Content-Length: abc\r\n", "Content-Length"),
        (b"Content-Length: 3\r\nContent-Length: 4\r\n", "Duplicate Content-Length"),
    ],
)
def test_framing_a_client_gets_wrong_is_400_and_closes(iris_server, framing, fragment):
    answer = _raw_exchange(
        iris_server.http_port,
        b"POST /v1/models/iris:predict HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n0\r\n\r\n",
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"connection: close" in head.lower()
    assert fragment in orjson.loads(body)["error"]


def test_what_follows_a_closing_request_is_not_read(iris_server):
    """After `Connection: close` the server reads no further request (a GET's body sent without a
    length, say): the request is answered, and the connection closes."""
    answer = _raw_exchange(
        iris_server.http_port,
        b'GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n{"not": "a request"}',
    )
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.count(b"HTTP/1.1 ") == 1


def test_a_malformed_request_after_good_ones_is_refused_after_their_answers(iris_server):
    live = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = _raw_exchange(iris_server.http_port, live + live + b"NOT HTTP AT ALL\r\n\r\n")
    assert answer.count(b"HTTP/1.1 200 ") == 2
    assert answer.rindex(b"HTTP/1.1 400 ") > answer.rindex(b"HTTP/1.1 200 ")
    assert b"malformed HTTP request" in answer


def test_an_absolute_form_target_is_served_as_its_path(iris_server):
    answer = _raw_exchange(
        iris_server.http_port,
        b"GET http://iris.example/v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b'{"live":true}')


def test_query_string_and_percent_encoded_path(iris_server):
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": IRIS_ROWS[0]}]}
    response = httpx.post(f"{iris_server.url}/v2/models/%69ris/infer?trace=1", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["model_name"] == "iris"


def test_pipelined_requests_are_answered_in_order(iris_server):
    ready = b"GET /v2/models/iris/ready HTTP/1.1\r\nHost: x\r\n\r\n"
    missing = b"GET /v2/models/nope/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = _raw_exchange(iris_server.http_port, ready + missing)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.count(b"HTTP/1.1 ") == 2
    assert b"HTTP/1.1 404 " in answer.split(b"HTTP/1.1 200 ", 1)[1]


def test_the_413_arrives_though_the_body_is_still_coming(iris_server):
    """The server reads no more of a refused body, yet the client that keeps sending it gets the 413, not
    a reset: the server closes lingering, dropping the rest."""
    with socket.create_connection(("127.0.0.1", iris_server.http_port), timeout=10) as sock:
        sock.sendall(
            b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n"
        )
        sock.setblocking(False)
        sent = 0
        with contextlib.suppress(BlockingIOError):
            while sent < 1024 * 1024:  # less than the server drops before it cuts the connection
                sent += sock.send(b"x" * 65536)
        sock.setblocking(True)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ")


@pytest.mark.parametrize(
    "datatype, data",
    [
        ("INT32", [True, 5, 7]),
        ("INT64", [False, 9]),
        ("UINT8", [[1, 2], [3, True]]),
        ("FP32", [True, 2.5, 3]),
        ("FP64", [[1.5, False], [0, 1]]),
    ],
)
def test_json_booleans_among_numbers_are_refused(datatype, data):
    from modelplane.protocol.errors import InvalidInput
    from modelplane.protocol.v2 import array_from_json

    shape = [len(data), len(data[0])] if isinstance(data[0], list) else [len(data)]
    with pytest.raises(InvalidInput, match="it takes (integers|numbers), got (true|false)"):
        array_from_json(data, datatype, shape, "input 'x'")


def test_json_zeros_and_ones_are_numbers():
    from modelplane.protocol.v2 import array_from_json

    assert array_from_json([[0, 1], [1, 0]], "INT32", [2, 2], "x").tolist() == [[0, 1], [1, 0]]
    assert array_from_json([0.0, 1, 2.5], "FP32", [3], "x").tolist() == [0.0, 1.0, 2.5]
    assert array_from_json([True, False], "BOOL", [2], "x").tolist() == [True, False]


@pytest.mark.parametrize("datatype, dtype", [("FP32", "<f4"), ("FP64", "<f8")])
def test_null_in_a_floating_tensor_is_nan(test_models_server, datatype, dtype):
    # KServe's InferenceRESTClient writes its JSON with orjson, which writes NaN (and infinity) as null;
    # KServe's server reads null back as NaN, and modelplane writes NaN as null in its own answers.
    body = (
        b'{"id":"nan-1","model_name":"echo","inputs":[{"name":"x","shape":[2,2],"datatype":"'
        + datatype.encode()
        + b'","data":[null,1.5,2.5,null]}],"parameters":{"binary_data_output":true}}'
    )
    response = httpx.post(
        test_models_server.url + "/v2/models/echo/infer",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    json_length = int(response.headers["inference-header-content-length"])
    header = orjson.loads(response.content[:json_length])
    assert header["id"] == "nan-1"
    assert header["outputs"][0]["shape"] == [2, 2]
    values = np.frombuffer(response.content[json_length:], dtype=dtype)
    assert np.isnan(values[[0, 3]]).all() and values[1:3].tolist() == [1.5, 2.5]
    # As JSON, the answer writes NaN back as null, which reads in again.
    answer = httpx.post(
        test_models_server.url + "/v2/models/echo/infer", content=body.replace(b"true}}", b"false}}")
    )
    assert answer.json()["outputs"][0]["data"] == [None, 1.5, 2.5, None]


@pytest.mark.parametrize("datatype, dtype", [("FP32", np.float32), ("FP64", np.float64)])
def test_nan_and_infinity_literals_are_read_as_kserve_reads_them(test_models_server, datatype, dtype):
    # tritonclient writes its JSON requests with Python's json.dumps, which writes NaN and infinity as
    # the literals NaN, Infinity and -Infinity (so does `requests`' json=); KServe's server reads them.
    client = triton.InferenceServerClient(f"127.0.0.1:{test_models_server.http_port}")
    tensor = triton.InferInput("x", [2, 2], datatype)
    sent = np.array([[np.nan, np.inf], [-np.inf, 1.5]], dtype=dtype)
    tensor.set_data_from_numpy(sent, binary_data=False)
    result = client.infer("echo", [tensor], outputs=[triton.InferRequestedOutput("x", binary_data=True)])
    np.testing.assert_array_equal(result.as_numpy("x"), sent)


def test_nan_among_integers_is_refused_by_name(test_models_server):
    body = b'{"inputs": [{"name": "x", "shape": [2], "datatype": "INT32", "data": [NaN, 1]}]}'
    response = httpx.post(test_models_server.url + "/v2/models/echo/infer", content=body)
    assert response.status_code == 400
    assert (
        response.json()["error"] == "input 'x': data does not fit datatype INT32: it takes integers, got NaN"
    )


@pytest.mark.parametrize(
    "datatype, value, shown",
    [
        ("UINT64", b"18446744073709551616", "1.8446744073709552e+19"),  # 2**64
        ("INT64", b"-9223372036854775809", "-9.223372036854776e+18"),  # -2**63 - 1
        ("INT32", b"99999999999999999999999999", "1e+26"),
    ],
)
def test_an_integer_beyond_64_bits_is_out_of_range_not_a_fraction(test_models_server, datatype, value, shown):
    # The JSON parser reads it as a float; it was sent as an integer all the same.
    body = b'{"inputs": [{"name": "x", "shape": [2], "datatype": "%s", "data": [1, %s]}]}' % (
        datatype.encode(),
        value,
    )
    response = httpx.post(test_models_server.url + "/v2/models/echo/infer", content=body)
    assert response.status_code == 400
    assert response.json()["error"] == (
        f"input 'x': data does not fit datatype {datatype}: {shown} is out of its range"
    )


def test_a_utf8_byte_order_mark_before_the_json_is_skipped(test_models_server):
    body = b"\xef\xbb\xbf" + orjson.dumps(
        {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [2.5]}]}
    )
    response = httpx.post(test_models_server.url + "/v2/models/echo/infer", content=body)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == [2.5]


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "\\ud800", "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [NaN]}]}',
        b'{"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": ["\\udc00"]}], "parameters": {"a": NaN}}',
    ],
)
def test_a_lone_surrogate_is_not_valid_json_beside_a_nan_either(test_models_server, body):
    response = httpx.post(test_models_server.url + "/v2/models/echo/infer", content=body)
    assert response.status_code == 400
    assert response.json()["error"].startswith("the request body is not valid JSON: ")


@pytest.mark.parametrize(
    "nested",
    [b"[" * 5000 + b"]" * 5000, b'{"a":' * 5000 + b"1" + b"}" * 5000],
    ids=["arrays", "objects"],
)
def test_json_nested_too_deep_is_not_valid_json(test_models_server, nested):
    # orjson refuses it past 1024 levels; Python's json, which reads what orjson refused, must too.
    body = b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}], "id": %s}' % nested
    response = httpx.post(test_models_server.url + "/v2/models/echo/infer", content=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith("the request body is not valid JSON: ")
