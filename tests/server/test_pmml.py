"""The pmml runtime: hand-written PMML models (pmml_models.py) served by a real `modelplane serve`, spoken
to in V1, in V2 with tritonclient.http and over gRPC with tritonclient.grpc, with the requests and answers
of KServe's pmmlserver."""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from modelplane.local.replicas.memory_watch import descendants
from modelplane.runtimes.detect import detect_runtime
from tests.server.pmml_models import IRIS_FIELDS, iris_tree, price_regression, write_model
from tests.server.processes import serve

JAVA = shutil.which("java") or (os.environ.get("JAVA_HOME") and Path(os.environ["JAVA_HOME"], "bin", "java"))
needs_java = pytest.mark.skipif(
    not JAVA, reason="the pmml runtime needs Java: apt-get install default-jre-headless"
)

SETOSA = {
    "Species": "setosa",
    "Probability_setosa": 1.0,
    "Probability_versicolor": 0.0,
    "Probability_virginica": 0.0,
    "Node_Id": "2",
}
VIRGINICA = {
    "Species": "virginica",
    "Probability_setosa": 0.0,
    "Probability_versicolor": 1 / 46,
    "Probability_virginica": 45 / 46,
    "Node_Id": "5",
}
VERSICOLOR = {
    "Species": "versicolor",
    "Probability_setosa": 0.0,
    "Probability_versicolor": 49 / 54,
    "Probability_virginica": 5 / 54,
    "Node_Id": "4",
}
# petal_width 1.65 is the tree's split: as FP32 it is 1.6499999761581421, below it, unless the value is
# read as the decimal the client sent.
ON_THE_SPLIT = [6.0, 3.0, 5.0, 1.65]


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pmml")
    write_model(root / "iris", iris_tree())
    write_model(root / "price", price_regression())
    return root


@pytest.fixture(scope="module")
def server(repository):
    """One server for both models: the folder is a repository, each subfolder a model, found by its
    `.pmml` file (no --runtime)."""
    server = serve("--model-dir", str(repository), "--nthread", "2")
    yield server
    server.stop()


def predict(server, model: str, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/models/{model}:predict", json=body, timeout=30)


def infer(server, model: str, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}/v2/models/{model}/infer", json=body, timeout=30)


def jvms(pid: int) -> list[int]:
    """The Py4J gateways (JVMs) under a process."""
    found = []
    for child in descendants(pid):
        try:
            if b"py4j.GatewayServer" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except OSError:
            pass
    return found


def wait_for(predicate, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(what)


def test_pmml_files_are_detected(repository):
    assert detect_runtime(repository / "iris") == "pmml"
    assert detect_runtime(repository / "iris" / "model.pmml") == "pmml"


@needs_java
def test_v1_answers_as_kserve_s_pmmlserver(server):
    """KServe's e2e request and answer: one object per row, keyed by target and output field."""
    response = predict(server, "iris", {"instances": [[5.1, 3.5, 1.4, 0.2]]})
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [SETOSA]}


@needs_java
def test_v1_rows_in_field_order_or_objects_keyed_by_field(server):
    body = {
        "instances": [
            [5.1, 3.5, 1.4, 0.2],
            dict(zip(IRIS_FIELDS, [6.3, 3.3, 6.0, 2.5], strict=True)),
            [6.8, 2.8, 4.8, 1.4],
        ]
    }
    assert predict(server, "iris", body).json() == {"predictions": [SETOSA, VIRGINICA, VERSICOLOR]}
    # A field left out, or null, is a missing value; the model says what that means (colour: no term).
    body = {
        "instances": [[2, "red"], {"size": 1.0, "colour": "blue"}, {"size": 3}, [3, None], ["2.5", "green"]]
    }
    prices = [row["price"] for row in predict(server, "price", body).json()["predictions"]]
    assert prices == [8.5, 4.5, 7.5, 7.5, 6.5]


@needs_java
def test_v2_json_answers_as_kserve_s_pmmlserver(server):
    """KServe's V2 request (pmml-input-v2.json) and its outputs: one per target and output field."""
    body = {
        "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [[5.1, 3.5, 1.4, 0.2]]}]
    }
    response = infer(server, "iris", body)
    assert response.status_code == 200, response.text
    outputs = [
        {key: output[key] for key in ("name", "shape", "datatype", "data")}
        for output in response.json()["outputs"]
    ]
    assert outputs == [
        {"name": "Species", "shape": [1], "datatype": "BYTES", "data": ["setosa"]},
        {"name": "Probability_setosa", "shape": [1], "datatype": "FP64", "data": [1.0]},
        {"name": "Probability_versicolor", "shape": [1], "datatype": "FP64", "data": [0.0]},
        {"name": "Probability_virginica", "shape": [1], "datatype": "FP64", "data": [0.0]},
        {"name": "Node_Id", "shape": [1], "datatype": "BYTES", "data": ["2"]},
    ]


@needs_java
def test_v2_rest_with_tritonclient(server):
    client = triton_http.InferenceServerClient(f"127.0.0.1:{server.http_port}")
    rows = triton_http.InferInput("input-0", [3, 4], "FP32")
    rows.set_data_from_numpy(
        np.array([[5.1, 3.5, 1.4, 0.2], [6.3, 3.3, 6.0, 2.5], ON_THE_SPLIT], dtype=np.float32)
    )
    result = client.infer("iris", [rows])
    assert result.as_numpy("Species").tolist() == [b"setosa", b"virginica", b"virginica"]
    assert result.as_numpy("Probability_setosa").tolist() == [1.0, 0.0, 0.0]
    assert result.as_numpy("Node_Id").tolist() == [b"2", b"5", b"5"]
    only = client.infer("iris", [rows], outputs=[triton_http.InferRequestedOutput("Species")])
    assert [output["name"] for output in only.get_response()["outputs"]] == ["Species"]

    # One input per field, named after it, of any datatype that fits the field.
    size = triton_http.InferInput("size", [3], "FP64")
    size.set_data_from_numpy(np.array([2.0, 1.0, 3.0]))
    colour = triton_http.InferInput("colour", [3, 1], "BYTES")
    colour.set_data_from_numpy(np.array([[b"red"], [b"blue"], [b"green"]], dtype=np.object_))
    result = client.infer("price", [size, colour])
    assert result.as_numpy("price").tolist() == [8.5, 4.5, 7.5]
    assert result.get_response()["outputs"][0]["datatype"] == "FP64"

    metadata = client.get_model_metadata("iris")
    assert metadata["inputs"] == [{"name": name, "datatype": "FP64", "shape": [-1]} for name in IRIS_FIELDS]
    assert [(output["name"], output["datatype"]) for output in metadata["outputs"]] == [
        ("Species", "BYTES"),
        ("Probability_setosa", "FP64"),
        ("Probability_versicolor", "FP64"),
        ("Probability_virginica", "FP64"),
        ("Node_Id", "BYTES"),
    ]
    colour_metadata = client.get_model_metadata("price")["inputs"][1]
    assert colour_metadata == {"name": "colour", "datatype": "BYTES", "shape": [-1]}


@needs_java
def test_grpc_with_tritonclient(server):
    """KServe's gRPC e2e request (pmml_input_v2_grpc.json) and the outputs it checks."""
    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    assert client.is_model_ready("iris") and client.is_model_ready("price")
    rows = triton_grpc.InferInput("input-0", [1, 4], "FP32")
    rows.set_data_from_numpy(np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32))
    response = client.infer("iris", [rows]).get_response()
    assert [output.name for output in response.outputs] == list(SETOSA)
    result = client.infer("iris", [rows])
    assert result.as_numpy("Species").tolist() == [b"setosa"]
    assert [result.as_numpy(name).tolist() for name in list(SETOSA)[1:4]] == [[1.0], [0.0], [0.0]]

    colour = triton_grpc.InferInput("colour", [1], "BYTES")
    colour.set_data_from_numpy(np.array([b"purple"], dtype=np.object_))
    size = triton_grpc.InferInput("size", [1], "INT64")
    size.set_data_from_numpy(np.array([2], dtype=np.int64))
    with pytest.raises(InferenceServerException) as caught:
        client.infer("price", [size, colour])
    assert caught.value.status() == str(grpc.StatusCode.INVALID_ARGUMENT)
    assert 'row 0: Field "colour" cannot accept invalid value "purple"' in caught.value.message()


@needs_java
def test_fp32_values_are_the_decimals_the_client_sent(server):
    on_the_split = {"name": "input-0", "shape": [1, 4], "data": ON_THE_SPLIT}
    for datatype in ("FP32", "FP64"):
        response = infer(server, "iris", {"inputs": [{**on_the_split, "datatype": datatype}]})
        assert response.json()["outputs"][0]["data"] == ["virginica"], datatype
    assert predict(server, "iris", {"instances": [ON_THE_SPLIT]}).json()["predictions"] == [VIRGINICA]


@needs_java
def test_many_rows_go_in_one_call_and_a_bad_one_is_named(server):
    rows = [[5.1, 3.5, 1.4, 0.2], [6.8, 2.8, 4.8, 1.4], [6.3, 3.3, 6.0, 2.5]] * 50
    predictions = predict(server, "iris", {"instances": rows}).json()["predictions"]
    assert predictions == [SETOSA, VERSICOLOR, VIRGINICA] * 50
    rows[7] = [5.1, 3.5, "long", 0.2]
    response = predict(server, "iris", {"instances": rows})
    assert response.status_code == 400
    assert response.json() == {"error": 'instance 7: Field "petal_length" cannot accept invalid value "long"'}


@needs_java
def test_requests_that_arrive_together_each_get_their_own_answer(server):
    """Concurrent requests may share one evaluation; a bad one among them fails alone."""
    good = [{"instances": [[5.1, 3.5, 1.4, 0.2]] * n} for n in range(1, 13)]
    bad = {"instances": [[2, "purple"]]}

    def send(index: int) -> httpx.Response:
        if index == 6:
            return predict(server, "price", bad)
        return predict(server, "iris", good[index])

    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(send, range(12)))
    for index, response in enumerate(responses):
        if index == 6:
            assert response.status_code == 400
            assert "purple" in response.json()["error"]
        else:
            assert response.json() == {"predictions": [SETOSA] * (index + 1)}


@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        ("iris", {"instances": [[5.1, 3.5, 1.4]]}, "instance 0 has 3 values; model iris takes 4 values (sepal_length, sepal_width, petal_length, petal_width)"),
        ("iris", {"instances": [[5.1, 3.5, 1.4, 0.2], [5.1, 3.5, 1.4, 0.2, 9]]}, "instance 1 has 5 values; model iris takes 4 values"),
        ("iris", {"instances": [5.1, 3.5, 1.4, 0.2]}, "instance 0 must be a list of 4 values (sepal_length, sepal_width, petal_length, petal_width) or an object keyed by field name, got float"),
        ("iris", {"instances": [{"petal_lenght": 1.4}]}, "instance 0 names 'petal_lenght', which model iris does not take; its fields are sepal_length, sepal_width, petal_length, petal_width"),
        ("iris", {"instances": [[5.1, 3.5, [1.4], 0.2]]}, "instance 0: field 'petal_length' got a list; a value is a number, a string, a boolean or null"),
        ("iris", {"instances": [[5.1, 3.5, "abc", 0.2]]}, 'instance 0: Field "petal_length" cannot accept invalid value "abc"'),
        ("iris", {"rows": []}, 'the request has no "instances"'),
        ("price", {"instances": [[2, "purple"]]}, 'instance 0: Field "colour" cannot accept invalid value "purple"'),
        ("price", {"instances": [{"colour": "red"}]}, 'instance 0: Field "size" cannot accept missing value'),
    ],
)  # fmt: skip
@needs_java
def test_bad_v1_requests_are_400s_that_say_what_is_wrong(server, model, body, message):
    response = predict(server, model, body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def _tensor(name: str, shape: list[int], data: list, datatype: str = "FP32") -> dict:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


@pytest.mark.parametrize(
    ("model", "inputs", "message"),
    [
        ("iris", [_tensor("input-0", [1, 3], [5.1, 3.5, 1.4])], "input 'input-0' has shape [1, 3]; model iris takes rows of 4 values (sepal_length, sepal_width, petal_length, petal_width): a [rows, 4] tensor"),
        ("iris", [_tensor("input-0", [4], [5.1, 3.5, 1.4, 0.2])], "input 'input-0' has shape [4]; model iris takes rows of 4 values"),
        ("iris", [_tensor("a", [1, 4], [5.1, 3.5, 1.4, 0.2]), _tensor("b", [1], [1])], "model iris takes one tensor of rows of 4 values (sepal_length, sepal_width, petal_length, petal_width), or one input per field named after it; got inputs 'a', 'b'"),
        ("iris", [_tensor("input-0", [1, 4], ["5.1", "3.5", "x", "0.2"], "BYTES")], 'row 0: Field "petal_length" cannot accept invalid value "x"'),
        ("price", [_tensor("size", [2], [1, 2]), _tensor("colour", [1], ["red"], "BYTES")], "the inputs hold different numbers of rows (size: 2, colour: 1)"),
        ("price", [_tensor("size", [1, 2], [1, 2])], "input 'size' has shape [1, 2]; a field's input is one value per row: [rows] or [rows, 1]"),
        ("price", [_tensor("size", [1], [1]), _tensor("colour", [1], ["pink"], "BYTES")], 'row 0: Field "colour" cannot accept invalid value "pink"'),
    ],
)  # fmt: skip
@needs_java
def test_bad_v2_requests_are_400s_that_say_what_is_wrong(server, model, inputs, message):
    response = infer(server, model, {"inputs": inputs})
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


@needs_java
def test_a_file_that_is_not_pmml_fails_to_load_and_says_why(server, repository):
    write_model(repository / "broken", "<PMML/>")
    response = httpx.post(f"{server.url}/v2/repository/models/broken/load", timeout=60)
    assert response.status_code == 503
    assert "model.pmml is not a PMML model JPMML can evaluate" in response.json()["error"]
    assert predict(server, "iris", {"instances": [[5.1, 3.5, 1.4, 0.2]]}).status_code == 200


@needs_java
def test_one_jvm_serves_every_model_of_a_process_on_nthread_processors(server):
    (jvm,) = jvms(server.process.pid)
    assert b"-XX:ActiveProcessorCount=2" in Path(f"/proc/{jvm}/cmdline").read_bytes().split(b"\0")


@needs_java
def test_each_worker_has_its_own_jvm_and_none_outlives_the_server(repository):
    workers = serve("--model-dir", str(repository / "iris"), "--model-name", "iris", "--workers", "2")
    try:
        # Fresh connections land on either worker: twenty ready answers in a row mean both have loaded.
        def all_workers_ready() -> bool:
            return all(httpx.get(workers.url + "/v2/health/ready").status_code == 200 for _ in range(20))

        wait_for(all_workers_ready, "both workers to load the model", timeout=60)
        started = jvms(workers.process.pid)
        assert len(started) == 2
        for _ in range(10):
            with httpx.Client() as client:  # a new connection each time, spread over the workers
                response = client.post(
                    f"{workers.url}/v1/models/iris:predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]}
                )
                assert response.json() == {"predictions": [SETOSA]}
    finally:
        assert workers.stop() == 0
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in started), "the JVMs to end")


def test_without_java_the_model_fails_to_load_naming_what_to_install(repository):
    no_java = serve(
        "--model-dir",
        str(repository / "iris"),
        env={"PATH": "/nonexistent", "JAVA_HOME": ""},
        ready_path="/v2/health/live",
    )
    try:

        def load_error():
            index = httpx.post(f"{no_java.url}/v2/repository/index").json()
            return index[0].get("reason")

        reason = wait_for(load_error, "the load to fail")
        assert "no `java` was found" in reason
        assert "apt-get install default-jre-headless" in reason
        response = predict(no_java, "model", {"instances": [[5.1, 3.5, 1.4, 0.2]]})
        assert response.status_code == 503
        assert "default-jre-headless" in response.json()["error"]
    finally:
        no_java.stop()
