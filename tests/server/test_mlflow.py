"""MLflow models (mlflow_models.py) served by `modelplane serve`, answering as MLServer's mlflow runtime:
V2 over REST (httpx) and gRPC (tritonclient), V1, and MLflow's own scoring routes; and those routes fuzzed with hypothesis (a client's mistake is a 4xx and
the server serves on), on the same server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.processes import REPO_ROOT, serve
from tests.server.test_fuzz_rest import dumps, json_values, v1_bodies, v2_bodies

pytest.importorskip("mlflow")

IRIS_COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
ROWS = [[6.8, 2.8, 4.8, 1.4], [5.1, 3.5, 1.4, 0.2]]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    subprocess.run([sys.executable, "-m", "tests.server.mlflow_models", str(root)], cwd=REPO_ROOT, check=True)
    return root


@pytest.fixture(scope="module")
def server(models):
    server = serve("--model-dir", str(models), ready_timeout=120)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def iris_alone(models):
    server = serve("--model-dir", str(models / "iris"), "--model-name", "iris", ready_timeout=120)
    yield server
    server.stop()


def infer(server, model: str, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}/v2/models/{model}/infer", json=body, timeout=30)


def columns(rows: list[list[float]]) -> list[dict]:
    return [
        {"name": name, "shape": [len(rows)], "datatype": "FP64", "data": [row[i] for row in rows]}
        for i, name in enumerate(IRIS_COLUMNS)
    ]


def test_a_column_signature_gives_the_metadata_and_reads_the_inputs_as_a_table(server):
    metadata = httpx.get(f"{server.url}/v2/models/iris").json()
    assert metadata["platform"] == "mlflow"
    assert metadata["inputs"] == [
        {"name": name, "datatype": "FP64", "shape": [-1, 1], "parameters": {"content_type": "np"}}
        for name in IRIS_COLUMNS
    ]
    assert metadata["outputs"] == [
        {"name": "output-0", "datatype": "INT64", "shape": [-1], "parameters": {"content_type": "np"}}
    ]
    answer = infer(server, "iris", {"inputs": columns(ROWS)})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["parameters"] == {"content_type": "np"}
    (output,) = body["outputs"]
    assert (output["name"], output["shape"], output["datatype"]) == ("output-1", [2, 1], "INT64")
    assert output["data"] == [1, 0]


def test_the_same_model_over_v1_takes_rows_and_records(server):
    url = f"{server.url}/v1/models/iris:predict"
    assert httpx.post(url, json={"instances": ROWS}).json() == {"predictions": [1, 0]}
    records = [dict(zip(IRIS_COLUMNS, row, strict=True)) for row in ROWS]
    assert httpx.post(url, json={"instances": records}).json() == {"predictions": [1, 0]}
    short = httpx.post(url, json={"instances": [[6.8, 2.8, 4.8]]})
    assert short.status_code == 400
    assert "its rows are the columns sepal length (cm)" in short.json()["error"]


def test_an_input_the_signature_does_not_have_is_a_400_saying_what_is_missing(server):
    answer = infer(
        server, "iris", {"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1.0]}]}
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error.startswith("the input does not fit model iris: Model is missing inputs")
    assert "Failed to enforce schema of data" not in error  # not MLflow's whole repetition of the data


def test_named_tensors_are_a_dict_and_a_dict_answer_is_an_output_per_key(server):
    inputs = [
        {"name": "a", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},
        {"name": "b", "shape": [2], "datatype": "FP64", "data": [3.0, 4.0]},
    ]
    body = infer(server, "adder", {"inputs": inputs}).json()
    assert body["parameters"] == {"content_type": "dict"}
    assert {o["name"]: o["data"] for o in body["outputs"]} == {"sum": [4.0, 6.0], "product": [3.0, 8.0]}


def test_the_signatures_params_are_read_from_the_request_and_the_others_named_as_ignored(server):
    inputs = [
        {"name": "a", "shape": [1], "datatype": "FP64", "data": [1.0]},
        {"name": "b", "shape": [1], "datatype": "FP64", "data": [2.0]},
    ]
    body = infer(server, "adder", {"inputs": inputs, "parameters": {"scale": 10.0, "other": 1}}).json()
    assert {o["name"]: o["data"] for o in body["outputs"]}["sum"] == [30.0]
    assert (
        "parameter 'other' of the request: model adder does not read it"
        in body["parameters"]["ignored_parameters"]
    )


def test_strings_in_and_a_table_out(server):
    inputs = [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["hi", "there"]}]
    body = infer(server, "shouter", {"inputs": inputs}).json()
    assert body["parameters"] == {"content_type": "pd"}
    upper, length = body["outputs"]
    assert (upper["name"], upper["datatype"], upper["data"]) == ("upper", "BYTES", ["HI", "THERE"])
    assert upper["parameters"] == {"content_type": "str"} and upper["shape"] == [2, 1]
    assert (length["name"], length["data"]) == ("length", [2, 5])
    v1 = httpx.post(f"{server.url}/v1/models/shouter:predict", json={"instances": [{"text": "a"}]})
    assert v1.json() == {"predictions": [{"upper": "A", "length": 1}]}


def test_a_model_without_a_signature_is_given_its_one_input_as_an_array(server):
    body = infer(
        server,
        "plain",
        {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": sum(ROWS, [])}]},
    ).json()
    assert body["outputs"][0]["data"] == [1, 0]
    assert httpx.get(f"{server.url}/v2/models/plain").json()["inputs"] == []


def test_grpc_answers_as_rest_does(server):
    import tritonclient.grpc as triton_grpc

    client = triton_grpc.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    tensors = []
    for i, name in enumerate(IRIS_COLUMNS):
        tensor = triton_grpc.InferInput(name, [2], "FP64")
        tensor.set_data_from_numpy(np.array([row[i] for row in ROWS], dtype=np.float64))
        tensors.append(tensor)
    assert client.infer("iris", tensors).as_numpy("output-1").tolist() == [[1], [0]]


def test_mlflows_scoring_routes_answer_as_mlflows_server_does(iris_alone):
    url = f"{iris_alone.url}/invocations"
    assert httpx.get(f"{iris_alone.url}/ping").status_code == 200
    split = {"dataframe_split": {"columns": IRIS_COLUMNS, "data": ROWS}}
    assert httpx.post(url, json=split).json() == {"predictions": [1, 0]}
    records = [dict(zip(IRIS_COLUMNS, row, strict=True)) for row in ROWS]
    assert httpx.post(url, json={"dataframe_records": records}).json() == {"predictions": [1, 0]}
    csv = ",".join(IRIS_COLUMNS) + "\n" + "\n".join(",".join(map(str, row)) for row in ROWS) + "\n"
    answer = httpx.post(url, content=csv, headers={"content-type": "text/csv"})
    assert answer.json() == {"predictions": [1, 0]}
    missing = httpx.post(url, json={"dataframe_records": [{IRIS_COLUMNS[0]: 6.8}]})
    assert missing.status_code == 400
    assert missing.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "Model is missing inputs" in missing.json()["message"]
    plain = httpx.post(url, content=b"6.8", headers={"content-type": "text/plain"})
    assert plain.status_code == 415
    assert httpx.get(url).status_code == 405


def test_a_server_of_several_mlflow_models_says_which_route_to_call_instead(server):
    answer = httpx.post(f"{server.url}/invocations", json={"inputs": [[1.0]]})
    assert answer.status_code == 400
    assert "holds several (adder, iris, plain, shouter): call /v2/models/{name}/infer instead" in answer.text


def test_mlservers_layout_a_model_settings_json_naming_the_mlflow_runtime_and_its_uri(models, tmp_path):
    """As MLServer's examples lay a model out: model-settings.json beside the MLflow model's folder."""
    folder = tmp_path / "wine"
    shutil.copytree(models / "iris", folder / "model")
    settings = {
        "name": "wine",
        "implementation": "mlserver_mlflow.MLflowRuntime",
        "parameters": {"uri": "./model", "version": "v1"},
    }
    (folder / "model-settings.json").write_text(json.dumps(settings))
    server = serve("--model-dir", str(tmp_path), ready_timeout=120)
    try:
        assert httpx.get(f"{server.url}/v2/models/wine").json()["versions"] == ["v1"]
        answer = httpx.post(f"{server.url}/v2/models/wine/versions/v1/infer", json={"inputs": columns(ROWS)})
        assert answer.json()["outputs"][0]["data"] == [1, 0]
    finally:
        server.stop()


FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
scoring_bodies = st.one_of(
    st.binary(max_size=100),
    json_values.map(dumps),
    st.fixed_dictionaries(
        {},
        optional={
            key: json_values
            | st.just({"columns": IRIS_COLUMNS, "data": [[1.0, 2.0, 3.0, 4.0]]})
            | st.just([dict.fromkeys(IRIS_COLUMNS, 1.0)])
            for key in ("dataframe_split", "dataframe_records", "instances", "inputs", "params")
        },
    ).map(dumps),
    st.lists(st.lists(st.sampled_from(["1.0", "a", "", '"x"', "1e999"]), max_size=5), max_size=3).map(
        lambda rows: "\n".join([",".join(IRIS_COLUMNS)] + [",".join(row) for row in rows]).encode()
    ),
)
content_types = st.sampled_from(
    ["application/json", "text/csv", "application/x-parquet", "application/json; format=pandas-split",
     "text/plain", "", "application/json; charset=latin-1", "text/csv; charset=utf-8"]
)  # fmt: skip


@FUZZ
@given(body=scoring_bodies, content_type=content_types)
def test_any_invocation_is_answered_without_a_server_error(iris_alone, body, content_type):
    response = httpx.post(
        f"{iris_alone.url}/invocations", content=body, headers={"content-type": content_type}, timeout=30
    )
    assert response.status_code < 500, response.text


@FUZZ
@given(body=st.one_of(v1_bodies.map(dumps), v2_bodies.map(dumps), st.binary(max_size=100)))
def test_any_v1_or_v2_request_is_answered_without_a_server_error(iris_alone, body):
    for path in ("/v1/models/iris:predict", "/v2/models/iris/infer"):
        response = httpx.post(iris_alone.url + path, content=body, timeout=30)
        assert response.status_code < 500, response.text
    assert httpx.get(f"{iris_alone.url}/ping", timeout=30).status_code == 200
