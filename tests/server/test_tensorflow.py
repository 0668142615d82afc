"""The TensorFlow runtime: SavedModels the tests build (tensorflow_models.py), served by a real
`modelplane serve`, spoken to in TF Serving's REST format (V1), in V2 with tritonclient.http and over gRPC
with tritonclient.grpc."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from modelplane.runtimes.detect import detect_runtime
from tests.server.processes import REPO_ROOT, serve
from tests.server.tensorflow_models import EXAMPLE_WEIGHTS, WEIGHTS, write_models

ROWS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]
SCORES = np.array(ROWS, dtype=np.float32) @ WEIGHTS


def b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    root = tmp_path_factory.mktemp("tensorflow")
    write_models(root)
    return root


@pytest.fixture(scope="module")
def server(repository):
    """One server for every test model: the folder is a repository, each subfolder a model."""
    server = serve("--model-dir", str(repository), "--nthread", "2")
    yield server
    server.stop()


def predict(server, model: str, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/models/{model}:predict", json=body)


def infer(server, model: str, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}/v2/models/{model}/infer", json=body)


def test_saved_model_folders_are_detected(repository):
    assert detect_runtime(repository / "dense") == "tensorflow"  # numbered versions
    assert detect_runtime(repository / "pair") == "tensorflow"  # saved_model.pb at the top
    assert detect_runtime(repository / "pair" / "saved_model.pb") == "tensorflow"
    assert detect_runtime(repository) is None  # a repository of models


def test_the_highest_version_is_served(server):
    response = predict(server, "dense", {"instances": ROWS})
    assert response.status_code == 200, response.text
    assert np.allclose(response.json()["predictions"], 2 * SCORES, rtol=1e-5)
    metadata = httpx.get(server.url + "/v2/models/dense").json()
    assert metadata["versions"] == ["2"]
    assert metadata["platform"] == "tensorflow_savedmodel"
    assert metadata["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    assert metadata["outputs"] == [{"name": "scores", "datatype": "FP32", "shape": [-1, 3]}]
    body = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": ROWS}]}
    assert httpx.post(server.url + "/v2/models/dense/versions/2/infer", json=body).status_code == 200
    assert httpx.post(server.url + "/v2/models/dense/versions/1/infer", json=body).status_code == 404
    # Versions are numbers, as TF Serving and Triton read them: 002 is 2.
    assert httpx.post(server.url + "/v2/models/dense/versions/002/infer", json=body).status_code == 200
    assert predict(server, "dense/versions/02", {"instances": ROWS}).status_code == 200
    assert httpx.get(server.url + "/v1/models/dense/versions/0002").status_code == 200
    assert "skipping version 3" in server.log()


def test_v1_status_and_metadata_as_tf_serving_answers_them(server):
    status = httpx.get(server.url + "/v1/models/dense")
    assert status.status_code == 200, status.text
    assert status.json() == {
        "name": "dense",
        "ready": True,  # KServe's fields, beside TF Serving's
        "model_version_status": [
            {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ],
    }
    metadata = httpx.get(server.url + "/v1/models/dense/metadata")
    assert metadata.status_code == 200, metadata.text
    document = metadata.json()
    assert document["model_spec"] == {"name": "dense", "signature_name": "", "version": "2"}
    signatures = document["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "label"} <= signatures.keys()
    default = signatures["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    assert default["inputs"]["x"]["dtype"] == "DT_FLOAT"
    assert default["inputs"]["x"]["tensor_shape"] == {
        "dim": [{"size": "-1", "name": ""}, {"size": "4", "name": ""}],
        "unknown_rank": False,
    }
    assert signatures["label"]["outputs"]["label"]["dtype"] == "DT_INT64"
    assert httpx.get(server.url + "/v1/models/missing/metadata").status_code == 404
    assert httpx.post(server.url + "/v1/models/dense/metadata").status_code == 405


def test_v1_paths_naming_a_version_or_label_as_tf_serving_takes_them(server):
    url = server.url + "/v1/models/dense"
    served = httpx.post(url + "/versions/2:predict", json={"instances": ROWS})
    assert served.status_code == 200, served.text
    assert np.allclose(served.json()["predictions"], 2 * SCORES, rtol=1e-5)
    assert httpx.get(url + "/versions/2").json()["model_version_status"][0]["version"] == "2"
    assert httpx.get(url + "/versions/2/metadata").json()["model_spec"]["version"] == "2"

    older = httpx.post(url + "/versions/1:predict", json={"instances": ROWS})
    assert older.status_code == 404
    assert older.json() == {"error": "Model dense has no version 1 (it serves version 2)."}
    assert httpx.get(url + "/versions/1").status_code == 404
    assert httpx.get(url + "/versions/1/metadata").status_code == 404
    for path in ("/labels/stable:predict", "/labels/stable", "/labels/stable/metadata"):
        method = "POST" if path.endswith(":predict") else "GET"
        labelled = httpx.request(method, url + path, json={"instances": ROWS})
        assert labelled.status_code == 404, path
        assert "no version label 'stable'" in labelled.json()["error"]
    missing = httpx.post(server.url + "/v1/models/missing/versions/1:predict", json={"instances": ROWS})
    assert missing.json() == {"error": "Model with name missing does not exist."}
    assert httpx.post(url + "/versions/2/extra:predict", json={"instances": ROWS}).status_code == 404


def softmax(logits: np.ndarray) -> np.ndarray:
    exponents = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exponents / exponents.sum(axis=1, keepdims=True)


# Two examples: the context's k (1) is the first's; the second sets its own, which wins.
CLASSIFY_BODY = {"context": {"k": 1}, "examples": [{"x": [1.0, 2.0]}, {"x": [0.5, -1.0], "k": 0}]}
CLASSIFY_SCORES = softmax(np.array([[1.0, 2.0], [0.5, -1.0]], np.float32) @ EXAMPLE_WEIGHTS + [[1], [0]])


@pytest.mark.parametrize("model", ["examples", "examples_tf2"])
def test_classify_answers_each_examples_classes_and_scores(server, model):
    response = httpx.post(f"{server.url}/v1/models/{model}:classify", json=CLASSIFY_BODY)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [[label for label, _ in row] for row in results] == [["neg", "pos"], ["neg", "pos"]]
    assert np.allclose([[score for _, score in row] for row in results], CLASSIFY_SCORES, rtol=1e-5)
    # Scores are float32, written as short as they read back (0.2, not 0.20000000298023224).
    assert all(len(repr(score)) <= 12 for row in results for _, score in row)


@pytest.mark.parametrize("model", ["examples", "examples_tf2"])
def test_regress_answers_a_value_per_example(server, model):
    body = {
        "signature_name": "regress",
        "context": {"tag": "abc"},
        "examples": [
            {"x": [1.0, 2.0], "k": 2},
            {"x": [1.5, 1.5], "tag": b64(b"hi")},
            {"x": [-1.0, 1.0], "tag": ""},
        ],
    }
    response = httpx.post(f"{server.url}/v1/models/{model}:regress", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"results": [8.0, 5.0, 0.0]}  # sum(x) + k + len(tag)
    # Whole numbers make an int64 feature, which the signature's float feature x refuses.
    body["examples"] = [{"x": [-1, 1]}]
    refused = httpx.post(f"{server.url}/v1/models/{model}:regress", json=body)
    assert refused.status_code == 400
    assert f"signature 'regress' of model {model} refused the input" in refused.json()["error"]


def test_classify_without_classes_and_with_a_version(server):
    url = f"{server.url}/v1/models/examples"
    body = {**CLASSIFY_BODY, "signature_name": "scores_only"}
    results = httpx.post(url + "/versions/1:classify", json=body).json()["results"]
    assert [[label for label, _ in row] for row in results] == [["", ""], ["", ""]]  # as TF Serving
    assert np.allclose([[score for _, score in row] for row in results], CLASSIFY_SCORES, rtol=1e-5)
    assert httpx.post(url + "/versions/2:classify", json=body).status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "error"),
    [
        (
            "examples:classify",
            {"context": {}},
            "When method is classify, key 'examples' is expected and was not found",
        ),
        ("examples:regress", {"examples": {}}, "Expecting 'examples' value to be an list/array"),
        ("examples:classify", {"examples": []}, "'examples' value is an empty array"),
        ("examples:classify", {"examples": [[1.0]]}, "Example must be JSON object but got JSON Array"),
        (
            "examples:classify",
            {"context": "k", "examples": [{}]},
            "Example must be JSON object but got JSON String",
        ),
        (
            "examples:classify",
            {"examples": [{"x": [1, 2.5]}]},
            "Unexpected element type in feature: x expecting type: int64",
        ),
        (
            "examples:classify",
            {"examples": [{"x": None}]},
            "Feature: x has element with unexpected JSON type: Null",
        ),
        (
            "examples:classify",
            {"examples": [{"x": [[1.0]]}]},
            "Feature: x has element with unexpected JSON type: Array",
        ),
        (
            "examples:classify",
            {"examples": [{"x": 2**63}]},
            "Feature: x has uint64_t element. Only int64_t is supported.",
        ),
        ("examples:classify", {"examples": [{"tag": {"b64": "%%"}}]}, "Unable to base64 decode"),
        (
            "examples:classify",
            {"signature_name": 1, "examples": [{}]},
            "'signature_name' key must be a string value.",
        ),
        (
            "examples:classify",
            {"signature_name": "nope", "examples": [{}]},
            "No signature was found with the name: nope",
        ),
        (
            "examples:classify",
            {"examples": [{}], "instances": []},
            "unknown key(s) 'instances' in the request",
        ),
        ("examples:regress", {"examples": [{}]}, "Expected one output Tensor."),
        ("dense:classify", {"examples": [{}]}, "No classification inputs found in SignatureDef: inputs {"),
        (
            "examples_tf2:classify",
            {"signature_name": "regress", "examples": [{}]},
            'Expected classification signature outputs to contain at least one of "classes" or "scores". '
            "Signature was: inputs {",
        ),
        (
            "examples:classify",
            {"examples": [{"k": 1}]},
            "refused the input: Name: <unknown>, Feature: x (data type: float) is required",
        ),
    ],
)
def test_classify_and_regress_refuse_what_tf_serving_refuses_in_its_words(server, path, body, error):
    response = httpx.post(f"{server.url}/v1/models/{path}", json=body)
    assert response.status_code == 400, response.text
    assert error in response.json()["error"]


def test_a_reload_serves_the_newest_version(server, repository):
    # Numbered as numbers: 10 is newer than 9 (as text, "9" would be).
    shutil.copytree(repository / "dense" / "1", repository / "reloaded" / "9")
    assert httpx.post(server.url + "/v2/repository/models/reloaded/load", timeout=60).status_code == 200
    assert httpx.get(server.url + "/v2/models/reloaded").json()["versions"] == ["9"]
    assert np.allclose(predict(server, "reloaded", {"inputs": ROWS}).json()["outputs"], SCORES, rtol=1e-5)
    shutil.copytree(repository / "dense" / "2", repository / "reloaded" / "10")
    assert httpx.post(server.url + "/v2/repository/models/reloaded/load", timeout=60).status_code == 200
    assert httpx.get(server.url + "/v2/models/reloaded").json()["versions"] == ["10"]
    assert np.allclose(predict(server, "reloaded", {"inputs": ROWS}).json()["outputs"], 2 * SCORES, rtol=1e-5)
    assert predict(server, "reloaded/versions/010", {"inputs": ROWS}).status_code == 200
    assert predict(server, "reloaded/versions/9", {"inputs": ROWS}).status_code == 404


def test_v1_row_format(server):
    assert predict(
        server, "pair", {"instances": [{"a": [1, 2, 3], "b": 10}, {"a": [0, 0, 1], "b": -1}]}
    ).json() == {
        "predictions": [
            {"doubled": [2.0, 4.0, 6.0], "total": 16.0},
            {"doubled": [0.0, 0.0, 2.0], "total": 0.0},
        ]
    }
    labels = predict(server, "dense", {"signature_name": "label", "instances": ROWS}).json()
    assert labels == {"predictions": SCORES.argmax(axis=1).tolist()}


def test_v1_bodies_are_json_whatever_their_content_type_as_tf_serving_reads_them(server):
    body = b'{"instances": [{"a": [1, 2, 3], "b": 10}]}'  # a browser's fetch() sends text/plain
    response = httpx.post(
        f"{server.url}/v1/models/pair:predict", content=body, headers={"content-type": "text/plain"}
    )
    assert response.json() == {"predictions": [{"doubled": [2.0, 4.0, 6.0], "total": 16.0}]}
    garbled = httpx.post(
        f"{server.url}/v1/models/pair:predict", content=b"\x00", headers={"content-type": "image/png"}
    )
    assert garbled.status_code == 400
    assert "the request body (image/png) is not JSON" in garbled.json()["error"]


def test_v1_columnar_format(server):
    outputs = predict(server, "dense", {"inputs": ROWS}).json()["outputs"]
    assert np.allclose(outputs, 2 * SCORES, rtol=1e-5)
    assert predict(server, "dense", {"inputs": {"x": ROWS}}).json()["outputs"] == outputs
    assert predict(server, "pair", {"inputs": {"a": [[1, 2, 3]], "b": [10]}}).json() == {
        "outputs": {"doubled": [[2.0, 4.0, 6.0]], "total": [16.0]}
    }


def test_outputs_without_rows_answer_columns_only(server):
    assert predict(server, "text", {"signature_name": "count", "inputs": ["a", "b"]}).json() == {"outputs": 2}
    response = predict(server, "text", {"signature_name": "count", "instances": ["a", "b"]})
    assert response.status_code == 400
    assert "output 'count' is a scalar" in response.json()["error"]


def test_b64_strings_in_and_bytes_outputs_as_b64(server):
    accented = "héllo".encode()
    rows = predict(server, "text", {"instances": [b64(accented), "abc"]}).json()
    assert rows == {
        "predictions": [
            {"length": len(accented), "upper_bytes": b64(b"H\xc3\xa9LLO")},
            {"length": 3, "upper_bytes": b64(b"ABC")},
        ]
    }
    columns = predict(server, "text", {"inputs": {"text": [b64(b"\x00\xff"), "x"]}}).json()
    assert columns == {"outputs": {"length": [2, 1], "upper_bytes": [b64(b"\x00\xff"), b64(b"X")]}}


@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        (
            "dense",
            {"instances": [[1, 2, 3]]},
            "input 'x' has shape [1, 3] but signature 'serving_default' takes [-1, 4]",
        ),
        ("dense", {"instances": [["a", 1, 2, 3]]}, "input 'x' is float32: it takes numbers, got strings"),
        ("dense", {"instances": [[1, 2, 3, 4], [1, 2, 3]]}, "not all of the same length"),
        ("dense", {"instances": [[True, False, True, False]]}, "it takes numbers, got true/false"),
        ("dense", {"instances": [[1.5, False, True, 2]]}, "it takes numbers, got true/false"),
        ("pair", {"instances": [{"a": [True, 2, 3], "b": 1}]}, "it takes numbers, got true/false"),
        (
            "pair",
            {"inputs": {"a": [[1, 2, 3], [4, 5, 6]], "b": [True, 2]}},
            "input 'b' is int64: it takes whole numbers, got true/false",
        ),
        (
            "dense",
            {"signature_name": "nope", "instances": ROWS},
            "no signature 'nope'; its signatures are: label, serving_default",
        ),
        ("dense", {"signature_name": 3, "instances": ROWS}, "'signature_name' must be a string"),
        ("dense", {"instances": ROWS, "inputs": ROWS}, "not both"),
        ("dense", {"instances": ROWS, "outputs": ["scores"]}, "unknown key(s) 'outputs'"),
        ("dense", {"instances": []}, '"instances" is empty'),
        ("dense", {"signature_name": "label"}, 'neither "instances" nor "inputs"'),
        ("pair", {"instances": [{"a": [1, 2, 3]}]}, "instances[0] lacks 'b'"),
        ("pair", {"instances": [[1, 2, 3]]}, "a plain list, but the signature takes several inputs (a, b)"),
        (
            "pair",
            {"inputs": {"a": [[1, 2, 3]], "b": [1.5]}},
            "input 'b' is int64: it takes whole numbers, got decimal",
        ),
        ("pair", {"inputs": {"a": [[1, 2, 3]], "b": [2**63]}}, "outside int64's range"),
        ("pair", {"inputs": {"a": [[1, 2, 3]], "b": [1], "c": [1]}}, "has unknown 'c'"),
        ("pair", {"inputs": [[1, 2, 3]]}, "a single tensor, but the signature takes several inputs"),
        (
            "pair",
            {"inputs": {"a": [[1, 2, 3], [4, 5, 6]], "b": [1, 2, 3]}},
            "refused the input: Incompatible shapes",
        ),
        ("text", {"instances": [{"b64": "not base64!"}]}, "not base64"),
        ("text", {"instances": [1]}, 'it takes strings or {"b64": ...} objects, got 1'),
    ],
)
def test_bad_v1_requests_are_400s_that_say_what_is_wrong(server, model, body, message):
    response = predict(server, model, body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_v2_rest_with_tritonclient(server):
    client = triton_http.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    a = triton_http.InferInput("a", [2, 3], "FP32")
    a.set_data_from_numpy(np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32), binary_data=True)
    b = triton_http.InferInput("b", [2], "INT64")
    b.set_data_from_numpy(np.array([10, 20], dtype=np.int64), binary_data=False)
    result = client.infer("pair", [a, b])
    assert result.as_numpy("total").tolist() == [16.0, 35.0]
    assert result.as_numpy("doubled").tolist() == [[2, 4, 6], [8, 10, 12]]
    only_total = client.infer("pair", [a, b], outputs=[triton_http.InferRequestedOutput("total")])
    assert [output["name"] for output in only_total.get_response()["outputs"]] == ["total"]
    metadata = client.get_model_metadata("pair")
    assert metadata["inputs"] == [
        {"name": "a", "datatype": "FP32", "shape": [-1, 3]},
        {"name": "b", "datatype": "INT64", "shape": [-1]},
    ]
    assert [output["name"] for output in metadata["outputs"]] == ["doubled", "total"]

    text = triton_http.InferInput("text", [2], "BYTES")
    text.set_data_from_numpy(np.array([b"ab", "héllo".encode()], dtype=np.object_))
    result = client.infer("text", [text])
    assert result.as_numpy("length").tolist() == [2, 6]
    assert result.as_numpy("upper_bytes").tolist() == [b"AB", b"H\xc3\xa9LLO"]
    assert {output["datatype"] for output in result.get_response()["outputs"]} == {"INT32", "BYTES"}

    x = triton_http.InferInput("features", [2, 4], "FP32")  # a lone input is matched whatever its name
    x.set_data_from_numpy(np.array(ROWS, dtype=np.float32))
    labels = client.infer("dense", [x], parameters={"signature_name": "label"})
    assert labels.as_numpy("label").tolist() == SCORES.argmax(axis=1).tolist()


@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        ("dense", {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]}, "input 'x' is FP64 but signature 'serving_default' takes FP32 (float32)"),
        ("dense", {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}, "input 'x' has shape [1, 3] but signature 'serving_default' takes [-1, 4]"),
        ("dense", {"parameters": {"signature_name": "nope"}, "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}, "no signature 'nope'"),
        ("dense", {"parameters": {"signature_name": 1}, "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}, "signature_name parameter must be a string"),
        ("pair", {"inputs": [{"name": "a", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}, "needs input(s) 'b'; its inputs are: a, b"),
        ("pair", {"inputs": [{"name": "a", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}, {"name": "c", "shape": [1], "datatype": "INT64", "data": [1]}]}, "has no input named 'c'"),
        ("text", {"inputs": [{"name": "text", "shape": [1], "datatype": "INT32", "data": [1]}]}, "takes BYTES (string)"),
    ],
)  # fmt: skip
def test_bad_v2_requests_are_400s_that_say_what_is_wrong(server, model, body, message):
    response = infer(server, model, body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_grpc_with_tritonclient(server):
    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    assert client.is_model_ready("dense") and client.is_model_ready("pair") and client.is_model_ready("text")
    x = triton_grpc.InferInput("x", [2, 4], "FP32")
    x.set_data_from_numpy(np.array(ROWS, dtype=np.float32))
    assert np.allclose(client.infer("dense", [x]).as_numpy("scores"), 2 * SCORES, rtol=1e-5)
    labels = client.infer("dense", [x], parameters={"signature_name": "label"})
    assert labels.as_numpy("label").tolist() == SCORES.argmax(axis=1).tolist()
    text = triton_grpc.InferInput("text", [1], "BYTES")
    text.set_data_from_numpy(np.array([b"\x00\xffz"], dtype=np.object_))
    result = client.infer("text", [text])
    assert result.as_numpy("upper_bytes").tolist() == [b"\x00\xffZ"]
    assert result.as_numpy("length").tolist() == [3]
    metadata = client.get_model_metadata("dense")
    assert (metadata.platform, list(metadata.versions)) == ("tensorflow_savedmodel", ["2"])
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [("x", "FP32", [-1, 4])]

    wrong = triton_grpc.InferInput("x", [2, 4], "FP64")
    wrong.set_data_from_numpy(np.array(ROWS, dtype=np.float64))
    with pytest.raises(InferenceServerException) as caught:
        client.infer("dense", [wrong])
    assert caught.value.status() == str(grpc.StatusCode.INVALID_ARGUMENT)
    assert "input 'x' is FP64 but signature 'serving_default' takes FP32" in caught.value.message()
    with pytest.raises(InferenceServerException) as caught:
        client.infer("dense", [x], parameters={"signature_name": "nope"})
    assert caught.value.status() == str(grpc.StatusCode.INVALID_ARGUMENT)
    assert "no signature 'nope'" in caught.value.message()


def test_tensorflows_start_up_notices_stay_out_of_the_log(server):
    log = server.log()
    assert "model dense: SavedModel" in log
    assert "oneDNN" not in log and "absl::InitializeLog" not in log


def test_threads_follow_nthread_and_the_import_is_quiet():
    code = (
        "from modelplane.runtimes.tensorflow import import_tensorflow\n"
        "threading = import_tensorflow(3).config.threading\n"
        "print(threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads())\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=REPO_ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "3"]
    assert "oneDNN" not in result.stderr and "absl" not in result.stderr


def test_a_folder_without_a_saved_model_is_a_model_that_failed_to_load(tmp_path):
    (tmp_path / "1").mkdir()
    server = serve(
        "--model-dir", str(tmp_path), "--runtime", "tensorflow", grpc=False, ready_path="/v2/health/live"
    )
    try:
        response = httpx.get(server.url + "/v2/models/model/ready")
        for _ in range(100):
            if "no SavedModel" in response.text:
                break
            response = httpx.get(server.url + "/v2/models/model/ready")
        assert response.status_code == 503
        assert "no SavedModel in" in response.json()["error"]
    finally:
        server.stop()


def test_the_example_model_as_its_runtime_serves_it(tmp_path, example_models):
    """examples/tensorflow-iris.yaml's model, built by examples/build_models.py and served with the
    arguments of the modelplane-tensorflowserver runtime."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    example_models(tmp_path)
    folder = tmp_path / "tensorflow-iris"
    assert detect_runtime(folder) == "tensorflow"
    server = serve("--model-dir", str(folder), "--model-name", "tensorflow-iris", "--runtime=tensorflow")
    try:
        response = predict(server, "tensorflow-iris", {"instances": ROWS})
        assert response.status_code == 200, response.text
        probabilities = np.array(response.json()["predictions"])
        assert probabilities.argmax(axis=1).tolist() == [1, 1]
        regression = LogisticRegression(max_iter=1000).fit(*load_iris(return_X_y=True))
        assert np.allclose(probabilities, regression.predict_proba(ROWS), atol=1e-5)
        body = {"inputs": [{"name": "features", "shape": [2, 4], "datatype": "FP32", "data": ROWS}]}
        output = infer(server, "tensorflow-iris", body).json()["outputs"][0]
        assert (output["name"], output["shape"]) == ("output_0", [2, 3])
    finally:
        server.stop()


def test_json_numbers_become_bfloat16_for_a_bfloat16_input():
    import ml_dtypes

    from modelplane.protocol.errors import InvalidInput
    from modelplane.runtimes.tensorflow_json import tensor_from_json
    from modelplane.runtimes.tensorflow_signature import TensorInfo

    info = TensorInfo("bf", "bfloat16", [-1])
    array = tensor_from_json([1.5, 2], info, "input 'bf'")
    assert array.dtype == ml_dtypes.bfloat16 and array.tolist() == [1.5, 2.0]
    with pytest.raises(InvalidInput, match="it takes numbers"):
        tensor_from_json(["a"], info, "input 'bf'")


@pytest.mark.parametrize(
    ("dtype", "value"),
    [("float32", [True, 2, 3]), ("float32", [[1.5, False, 1]]), ("int64", [1, False]), ("int32", True)],
)
def test_json_booleans_among_numbers_are_refused(dtype, value):
    from modelplane.protocol.errors import InvalidInput
    from modelplane.runtimes.tensorflow_json import tensor_from_json
    from modelplane.runtimes.tensorflow_signature import TensorInfo

    info = TensorInfo("x", dtype, None)
    with pytest.raises(InvalidInput, match="got true/false"):
        tensor_from_json(value, info, "input 'x'")


def test_json_zeros_and_ones_stay_numbers_and_booleans_stay_booleans():
    from modelplane.runtimes.tensorflow_json import tensor_from_json
    from modelplane.runtimes.tensorflow_signature import TensorInfo

    assert tensor_from_json([0, 1, 2.5], TensorInfo("x", "float32", [-1]), "x").tolist() == [0, 1, 2.5]
    assert tensor_from_json([True, False], TensorInfo("x", "bool", [-1]), "x").tolist() == [True, False]
